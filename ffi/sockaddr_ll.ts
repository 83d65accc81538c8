/**
 * `struct sockaddr_ll` from `<linux/if_packet.h>`, the address of an
 * `AF_PACKET` socket, and the constants a capture beside a device's owner uses.
 *
 * @module
 */
import { AF_PACKET } from "./constants.ts";

/** `sizeof(struct sockaddr_ll)`. */
export const sizeof_sockaddr_ll = 20;

/** `ETH_P_ALL`: every protocol, as `socket()` and `bind()` take it (host order here). */
export const ETH_P_ALL = 0x0003;

/** `sll_pkttype` of a packet the host sends out of the device. */
export const PACKET_OUTGOING = 4;

/**
 * `SIOCGSTAMPNS`: the kernel's receive time of the last packet read from a
 * socket, as a `struct timespec` (two 64-bit fields on 64-bit Linux).
 */
export const SIOCGSTAMPNS = 0x8907;

/** The fields of a `struct sockaddr_ll` that `recvfrom` fills. */
export interface SockaddrLl {
  /** `sll_protocol`, the EtherType (converted to host order). */
  protocol: number;
  /** `sll_ifindex`. */
  ifindex: number;
  /** `sll_hatype`, an `ARPHRD_` value. */
  hatype: number;
  /** `sll_pkttype`: `PACKET_HOST` 0 … `PACKET_OUTGOING` 4. */
  pkttype: number;
  /** `sll_addr` cut to `sll_halen` bytes. */
  addr: Uint8Array;
}

/**
 * A `struct sockaddr_ll` for `bind()`: family `AF_PACKET`, `protocol` (an
 * EtherType in host order, stored big-endian) and the interface index.
 */
export function sockaddr_ll(protocol: number, ifindex: number): Uint8Array<ArrayBuffer> {
  const address = new Uint8Array(sizeof_sockaddr_ll);
  const view = new DataView(address.buffer);
  // u16 sll_family; be16 sll_protocol; i32 sll_ifindex; u16 sll_hatype;
  // u8 sll_pkttype; u8 sll_halen; u8 sll_addr[8]
  view.setUint16(0, AF_PACKET, true);
  view.setUint16(2, protocol, false);
  view.setInt32(4, ifindex, true);
  return address;
}

/** Decodes a `struct sockaddr_ll` filled by `recvfrom`. */
export function decode_sockaddr_ll(address: Uint8Array): SockaddrLl {
  const view = new DataView(address.buffer, address.byteOffset, sizeof_sockaddr_ll);
  const halen = Math.min(view.getUint8(11), 8);
  return {
    protocol: view.getUint16(2, false),
    ifindex: view.getInt32(4, true),
    hatype: view.getUint16(8, true),
    pkttype: view.getUint8(10),
    addr: address.slice(12, 12 + halen),
  };
}
