/**
 * {@linkcode UdpAddress}: a hostname and port, and its conversion to and
 * from the `sockaddr` a socket call takes, without a lookup (UDP sockets
 * here take IP addresses, never names to resolve).
 *
 * @module
 */
import { AF_INET, AF_INET6 } from "../ffi/constants.ts";
import {
  sockaddr_address_offset,
  sockaddr_family,
  sockaddr_in6_is_v4_mapped,
  sockaddr_port,
  write_sockaddr_in,
  write_sockaddr_in6,
} from "../ffi/sockaddr_in.ts";
import { formatIPv4At, formatIPv6At, parseIPv4, parseIPv6 } from "../packet/address.ts";
import { describe, validateInteger } from "../src/validate.ts";

/**
 * A UDP endpoint: an IPv4 or IPv6 address in text form and a port, the
 * shape of `Deno.NetAddr` without its `transport`.
 *
 * @example Addressing a datagram
 * ```ts
 * import type { UdpAddress } from "@tuntap/tuntap/udp";
 *
 * const peer: UdpAddress = { hostname: "192.0.2.1", port: 4789 };
 * ```
 */
export interface UdpAddress {
  /** An IPv4 address (`"192.0.2.1"`) or IPv6 address (`"2001:db8::1"`), no brackets. */
  hostname: string;
  /** The port, 0 to 65535. */
  port: number;
}

/** A parsed hostname: 4 bytes (IPv4) or 16 (IPv6). */
export interface ParsedHost {
  family: 4 | 6;
  bytes: Uint8Array;
}

/** The family of an address in text form: only IPv6 addresses hold a colon. */
export function familyOf(hostname: string): 4 | 6 {
  return hostname.includes(":") ? 6 : 4;
}

/**
 * Parses an IP address for a socket call; TypeError for a name or a
 * malformed address (nothing is resolved), RangeError for a part out of range.
 */
export function parseHost(hostname: unknown, what: string): ParsedHost {
  if (typeof hostname !== "string") {
    throw new TypeError(`${what} must be a string, got ${describe(hostname)}`);
  }
  try {
    return familyOf(hostname) === 6
      ? { family: 6, bytes: parseIPv6(hostname) }
      : { family: 4, bytes: parseIPv4(hostname) };
  } catch (error) {
    const kind = error instanceof RangeError ? RangeError : TypeError;
    throw new kind(
      `${what} must be an IPv4 or IPv6 address (names are not resolved), got ` +
        `${JSON.stringify(hostname)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Checks a port: a whole number from `min` to 65535. */
export function validatePort(port: unknown, what: string, min = 0): number {
  return validateInteger(port, what, min, 65535);
}

/** `192.0.2.1:4789` or `[2001:db8::1]:4789`, for messages. */
export function formatAddress(address: UdpAddress): string {
  return familyOf(address.hostname) === 6
    ? `[${address.hostname}]:${address.port}`
    : `${address.hostname}:${address.port}`;
}

/**
 * Writes the `sockaddr` for `host`/`port` at `offset` for a socket of
 * `socketFamily` (4 or 6); its length. An IPv4 host on an IPv6 socket is
 * written IPv4-mapped; the caller refuses an IPv6 host on an IPv4 socket.
 */
export function writeSockaddr(
  target: Uint8Array,
  offset: number,
  socketFamily: 4 | 6,
  host: ParsedHost,
  port: number,
): number {
  return socketFamily === 4
    ? write_sockaddr_in(target, offset, host.bytes, port)
    : write_sockaddr_in6(target, offset, host.bytes, port);
}

/**
 * Reads the address at `offset` into `into` (or a new object). An
 * IPv4-mapped IPv6 address comes back as the IPv4 address it maps, so a
 * dual-stack socket reports IPv4 peers as an IPv4 socket does.
 */
export class SockaddrDecoder {
  // Most traffic comes from a few peers: keep the text of the last address
  // so that decoding it again compares 16 bytes instead of making a string.
  readonly #last = new Uint8Array(16);
  #lastLength = 0;
  #lastText = "";

  /** Fills `into` (or a new address) from the `sockaddr` at `offset`. */
  decode(source: Uint8Array, offset: number, into?: UdpAddress): UdpAddress {
    const family = sockaddr_family(source, offset);
    let start = sockaddr_address_offset(source, offset);
    let length = family === AF_INET ? 4 : 16;
    if (family === AF_INET6 && sockaddr_in6_is_v4_mapped(source, offset)) {
      start += 12;
      length = 4;
    }
    const hostname = this.#text(source, start, length);
    const port = sockaddr_port(source, offset);
    if (into === undefined) return { hostname, port };
    into.hostname = hostname;
    into.port = port;
    return into;
  }

  #text(source: Uint8Array, start: number, length: number): string {
    const last = this.#last;
    if (length === this.#lastLength) {
      let same = true;
      for (let i = 0; i < length; i++) {
        if (last[i] !== source[start + i]) {
          same = false;
          break;
        }
      }
      if (same) return this.#lastText;
    }
    for (let i = 0; i < length; i++) last[i] = source[start + i];
    this.#lastLength = length;
    this.#lastText = length === 4 ? formatIPv4At(source, start) : formatIPv6At(source, start);
    return this.#lastText;
  }
}
