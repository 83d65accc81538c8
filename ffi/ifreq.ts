/**
 * `struct ifreq` from `<linux/if.h>`: a 16-byte name followed by a 24-byte
 * union, of which tuntap uses `ifr_flags` (short), the int members
 * (`ifr_mtu`, `ifr_ifindex`, `ifr_qlen`) and `ifr_hwaddr` (struct sockaddr).
 *
 * @module
 */
import { IFNAMSIZ } from "./constants.ts";

/** `sizeof(struct ifreq)` on 64-bit Linux. */
export const sizeof_ifreq = 40;
const UNION = IFNAMSIZ;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A zeroed `struct ifreq` with `ifr_name` set (the caller checked the length). */
export function ifreq(name = ""): Uint8Array {
  const ifr = new Uint8Array(sizeof_ifreq);
  encoder.encodeInto(name, ifr.subarray(0, IFNAMSIZ - 1));
  return ifr;
}

/** `ifr_name`, up to its NUL. */
export function ifr_name(ifr: Uint8Array): string {
  const end = ifr.subarray(0, IFNAMSIZ).indexOf(0);
  return decoder.decode(ifr.subarray(0, end < 0 ? IFNAMSIZ : end));
}

function view(ifr: Uint8Array): DataView {
  return new DataView(ifr.buffer, ifr.byteOffset, ifr.byteLength);
}

/** `ifr_flags`, an unsigned short in host byte order. */
export function ifr_flags(ifr: Uint8Array): number {
  return view(ifr).getUint16(UNION, true);
}

/** Sets `ifr_flags`. */
export function set_ifr_flags(ifr: Uint8Array, flags: number): Uint8Array {
  view(ifr).setUint16(UNION, flags, true);
  return ifr;
}

/** The int members of the union: `ifr_mtu`, `ifr_ifindex`, `ifr_qlen`. */
export function ifr_int(ifr: Uint8Array): number {
  return view(ifr).getInt32(UNION, true);
}

/** Sets the int member of the union. */
export function set_ifr_int(ifr: Uint8Array, value: number): Uint8Array {
  view(ifr).setInt32(UNION, value, true);
  return ifr;
}

/** `ifr_hwaddr`: its `sa_family` and the 6 bytes of an Ethernet address. */
export function ifr_hwaddr(
  ifr: Uint8Array,
): { family: number; mac: Uint8Array } {
  return {
    family: view(ifr).getUint16(UNION, true),
    mac: ifr.slice(UNION + 2, UNION + 8),
  };
}

/** Sets `ifr_hwaddr` to an Ethernet address of the given family. */
export function set_ifr_hwaddr(
  ifr: Uint8Array,
  family: number,
  mac: Uint8Array,
): Uint8Array {
  view(ifr).setUint16(UNION, family, true);
  ifr.set(mac, UNION + 2);
  return ifr;
}
