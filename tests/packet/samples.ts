/**
 * Sample packets and byte helpers shared by the packet tests.
 *
 * @module
 */

import { buildUdp } from "../../packet/mod.ts";

/** The bytes that hex text spells, two digits a byte. */
export function fromHex(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(text.match(/../g)!.map((pair) => parseInt(pair, 16)));
}

/** Bytes as hex text: compared as text, a mismatch shows where it is. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A UDP datagram from port 1 to port 2, for tests about the IP layer around it. */
export function udpDatagram(
  source: string,
  destination: string,
  payload?: Uint8Array,
): Uint8Array<ArrayBuffer> {
  return buildUdp({ source, destination, sourcePort: 1, destinationPort: 2, payload });
}

/**
 * The packet of issue 13: `::1` to `::2`, a Fragment header (offset 8,
 * next header 60, identification 1), then the hex `data`.
 */
export function laterIPv6Fragment(data: string): Uint8Array<ArrayBuffer> {
  return fromHex(
    "6000000000102c40" + "00".repeat(15) + "01" + "00".repeat(15) + "02" +
      "3c00000800000001" + data,
  );
}

/**
 * A fresh copy of a real IPv4 header (UDP, 192.168.0.1 to 192.168.0.199,
 * total length 0x73) with its checksum 0xb861 in place: the worked example
 * of the IPv4 header checksum on Wikipedia.
 */
export function exampleIPv4Header(): Uint8Array<ArrayBuffer> {
  return fromHex("45000073000040004011b861c0a80001c0a800c7");
}
