/**
 * Text forms of IPv4, IPv6 and MAC addresses, parsed to and formatted from
 * network-order bytes.
 *
 * Error convention: an argument of the wrong JavaScript type, or text that
 * does not have the shape of an address, throws a `TypeError` (as `new URL`
 * does); a number out of range (an octet above 255, a prefix above the
 * address width, a byte array of the wrong length) throws a `RangeError`.
 * Every message quotes the input and names the part that is wrong.
 *
 * @module
 */

/** An address with its routing prefix, as returned by {@linkcode parseCidr}. */
export interface Cidr {
  /** The address in network byte order: 4 bytes for IPv4, 16 for IPv6. */
  address: Uint8Array<ArrayBuffer>;
  /** How many leading bits form the network part. */
  prefixLength: number;
  /** The address family. */
  family: 4 | 6;
}

function requireString(text: unknown, what: string): asserts text is string {
  if (typeof text !== "string") {
    throw new TypeError(`${what} must be a string, got ${typeof text}`);
  }
}

function requireBytes(bytes: unknown, what: string): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${what} must be a Uint8Array`);
  }
}

const DECIMAL = /^[0-9]+$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const HEX_BYTE = /^[0-9a-fA-F]{2}$/;

/**
 * Writes the dotted quad `part` of `whole` into `out` at `offset`, so that
 * the IPv6 parser can reuse it for embedded IPv4 and report errors against
 * the full text the caller gave.
 */
function parseDottedQuadInto(
  part: string,
  whole: string,
  family: string,
  out: Uint8Array,
  offset: number,
): void {
  const octets = part.split(".");
  if (octets.length !== 4) {
    throw new TypeError(
      `Invalid ${family} address "${whole}": ${
        part === whole ? "it" : `"${part}"`
      } has ${octets.length} dot-separated parts, expected 4`,
    );
  }
  for (let i = 0; i < 4; i++) {
    const octet = octets[i];
    if (!DECIMAL.test(octet)) {
      throw new TypeError(
        `Invalid ${family} address "${whole}": "${octet}" is not a decimal number`,
      );
    }
    // A leading zero means octal to inet_aton but decimal to other parsers;
    // refusing it avoids silently picking the wrong address.
    if (octet.length > 1 && octet[0] === "0") {
      throw new TypeError(
        `Invalid ${family} address "${whole}": "${octet}" has a leading zero`,
      );
    }
    const value = octet.length > 3 ? Infinity : Number(octet);
    if (value > 255) {
      throw new RangeError(
        `Invalid ${family} address "${whole}": "${octet}" is greater than 255`,
      );
    }
    out[offset + i] = value;
  }
}

/**
 * Parses a dotted-quad IPv4 address such as `192.0.2.1`.
 *
 * Only the strict four-part decimal form is accepted: no leading zeros, no
 * shortened `127.1` forms, no surrounding whitespace.
 *
 * @example Parse an IPv4 address
 * ```ts
 * import { parseIPv4 } from "@tuntap/tuntap/packet";
 *
 * const bytes = parseIPv4("192.0.2.1"); // Uint8Array [192, 0, 2, 1]
 * ```
 *
 * @param text The address text.
 * @returns The 4 address bytes in network order.
 * @throws {TypeError} If `text` is not a string or not a dotted quad.
 * @throws {RangeError} If a part is greater than 255.
 */
export function parseIPv4(text: string): Uint8Array<ArrayBuffer> {
  requireString(text, "IPv4 address");
  const out = new Uint8Array(4);
  parseDottedQuadInto(text, text, "IPv4", out, 0);
  return out;
}

/**
 * Parses an IPv6 address in any RFC 4291 text form: full, `::`-compressed,
 * or with a trailing embedded dotted IPv4 address such as
 * `::ffff:192.0.2.1`. Zone ids (`fe80::1%eth0`) are refused because the
 * bytes have nowhere to carry them.
 *
 * @example Parse an IPv6 address
 * ```ts
 * import { parseIPv6 } from "@tuntap/tuntap/packet";
 *
 * const bytes = parseIPv6("2001:db8::1"); // 16 bytes, last one 1
 * ```
 *
 * @param text The address text.
 * @returns The 16 address bytes in network order.
 * @throws {TypeError} If `text` is not a string or not an IPv6 address.
 * @throws {RangeError} If an embedded IPv4 part is greater than 255.
 */
export function parseIPv6(text: string): Uint8Array<ArrayBuffer> {
  requireString(text, "IPv6 address");
  const fail = (reason: string): never => {
    throw new TypeError(`Invalid IPv6 address "${text}": ${reason}`);
  };
  const zone = text.indexOf("%");
  if (zone !== -1) {
    fail(`zone ids ("${text.slice(zone)}") are not supported`);
  }
  if (text === "") fail("it is empty");
  const gap = text.indexOf("::");
  if (gap !== -1 && text.indexOf("::", gap + 1) !== -1) {
    fail(`"::" may appear only once`);
  }
  const head = gap === -1 ? text : text.slice(0, gap);
  const tail = gap === -1 ? "" : text.slice(gap + 2);
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === "" ? [] : tail.split(":");

  // Groups are decoded into 16-bit words first; the `::` gap is filled
  // by copying the tail words to the end of the address.
  const words: number[] = [];
  const decode = (groups: string[], last: boolean): void => {
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i];
      if (group === "") fail("it has an empty group between colons");
      if (group.includes(".")) {
        if (!last || i !== groups.length - 1) {
          fail(`embedded IPv4 "${group}" must be the last part`);
        }
        const quad = new Uint8Array(4);
        parseDottedQuadInto(group, text, "IPv6", quad, 0);
        words.push((quad[0] << 8) | quad[1], (quad[2] << 8) | quad[3]);
      } else if (HEX_GROUP.test(group)) {
        words.push(parseInt(group, 16));
      } else if (group.length > 4 && /^[0-9a-fA-F]+$/.test(group)) {
        fail(`"${group}" has more than 4 hexadecimal digits`);
      } else {
        fail(`"${group}" is not a hexadecimal group`);
      }
    }
  };
  decode(headGroups, gap === -1);
  const headWords = words.length;
  decode(tailGroups, true);
  const tailWords = words.length - headWords;

  if (gap === -1 && words.length !== 8) {
    fail(`it has ${words.length} groups, expected 8`);
  }
  if (gap !== -1 && words.length > 7) {
    fail(`it has ${words.length} groups besides "::", at most 7 fit`);
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < headWords; i++) {
    out[2 * i] = words[i] >> 8;
    out[2 * i + 1] = words[i] & 0xff;
  }
  const tailStart = 8 - tailWords;
  for (let i = 0; i < tailWords; i++) {
    const word = words[headWords + i];
    out[2 * (tailStart + i)] = word >> 8;
    out[2 * (tailStart + i) + 1] = word & 0xff;
  }
  return out;
}

/**
 * Parses an IPv4 or IPv6 address, choosing the family by the presence of a
 * colon.
 *
 * @example Parse an address of either family
 * ```ts
 * import { parseIp } from "@tuntap/tuntap/packet";
 *
 * parseIp("192.0.2.1").length; // 4
 * parseIp("2001:db8::1").length; // 16
 * ```
 *
 * @param text The address text.
 * @returns 4 bytes for IPv4, 16 bytes for IPv6, in network order.
 * @throws {TypeError} If `text` is not a string or not an address.
 * @throws {RangeError} If a number in it is out of range.
 */
export function parseIp(text: string): Uint8Array<ArrayBuffer> {
  requireString(text, "IP address");
  return text.includes(":") ? parseIPv6(text) : parseIPv4(text);
}

/**
 * Formats the IPv4 address stored at `offset` in `bytes` as a dotted quad.
 * Exists so that the packet parser can format addresses in place, without
 * a subarray per address; the caller guarantees the 4 bytes are present.
 *
 * @param bytes Buffer holding the address.
 * @param offset Index of the first address byte.
 * @returns The dotted quad.
 */
export function formatIPv4At(bytes: Uint8Array, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/**
 * Formats the IPv6 address stored at `offset` in `bytes` in the RFC 5952
 * canonical form. Exists for the same in-place reason as
 * {@linkcode formatIPv4At}; the caller guarantees the 16 bytes are present.
 *
 * @param bytes Buffer holding the address.
 * @param offset Index of the first address byte.
 * @returns The canonical text form.
 */
export function formatIPv6At(bytes: Uint8Array, offset: number): string {
  // RFC 5952 section 5: IPv4-mapped addresses keep their dotted tail, since
  // that is how people recognise them.
  let mapped = bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) mapped = bytes[offset + i] === 0;
  if (mapped) return `::ffff:${formatIPv4At(bytes, offset + 12)}`;

  // Longest run of zero words, the first one on a tie, never a lone word
  // (RFC 5952 sections 4.2.1 to 4.2.3).
  let bestStart = -1;
  let bestLength = 1;
  let runStart = -1;
  for (let i = 0; i <= 8; i++) {
    const zero = i < 8 && bytes[offset + 2 * i] === 0 &&
      bytes[offset + 2 * i + 1] === 0;
    if (zero) {
      if (runStart === -1) runStart = i;
    } else if (runStart !== -1) {
      if (i - runStart > bestLength) {
        bestStart = runStart;
        bestLength = i - runStart;
      }
      runStart = -1;
    }
  }
  let text = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += "::";
      i += bestLength - 1;
      continue;
    }
    if (text !== "" && !text.endsWith(":")) text += ":";
    text += ((bytes[offset + 2 * i] << 8) | bytes[offset + 2 * i + 1])
      .toString(16);
  }
  return text;
}

/**
 * Formats an address: 4 bytes as a dotted quad, 16 bytes in the RFC 5952
 * canonical form (lowercase, the longest run of two or more zero groups
 * compressed to `::`, IPv4-mapped addresses as `::ffff:192.0.2.1`).
 *
 * @example Format addresses
 * ```ts
 * import { formatIp, parseIp } from "@tuntap/tuntap/packet";
 *
 * formatIp(new Uint8Array([192, 0, 2, 1])); // "192.0.2.1"
 * formatIp(parseIp("2001:DB8:0:0:0:0:0:1")); // "2001:db8::1"
 * ```
 *
 * @param bytes 4 or 16 address bytes in network order.
 * @returns The text form.
 * @throws {TypeError} If `bytes` is not a Uint8Array.
 * @throws {RangeError} If `bytes` is neither 4 nor 16 bytes long.
 */
export function formatIp(bytes: Uint8Array): string {
  requireBytes(bytes, "IP address");
  if (bytes.length === 4) return formatIPv4At(bytes, 0);
  if (bytes.length === 16) return formatIPv6At(bytes, 0);
  throw new RangeError(
    `IP address must be 4 or 16 bytes long, got ${bytes.length}`,
  );
}

/**
 * Parses `address/prefix` notation. Without a `/prefix` the text names a
 * single host: the prefix is 32 for IPv4 and 128 for IPv6. The host bits
 * are kept as written, because an interface address such as
 * `192.0.2.1/24` needs both the host and its network.
 *
 * @example Parse an interface address
 * ```ts
 * import { parseCidr } from "@tuntap/tuntap/packet";
 *
 * const { address, prefixLength, family } = parseCidr("2001:db8::1/64");
 * // address: 16 bytes, prefixLength: 64, family: 6
 * ```
 *
 * @param text The `address[/prefix]` text.
 * @returns The address bytes, the prefix length and the family.
 * @throws {TypeError} If `text` is not a string or is malformed.
 * @throws {RangeError} If the prefix is wider than the address.
 */
export function parseCidr(text: string): Cidr {
  requireString(text, "CIDR");
  const slash = text.indexOf("/");
  const address = parseIp(slash === -1 ? text : text.slice(0, slash));
  const family = address.length === 4 ? 4 : 6;
  const width = address.length * 8;
  if (slash === -1) return { address, prefixLength: width, family };
  const prefix = text.slice(slash + 1);
  if (!DECIMAL.test(prefix) || (prefix.length > 1 && prefix[0] === "0")) {
    throw new TypeError(
      `Invalid prefix length in "${text}": "${prefix}" is not a decimal number without leading zeros`,
    );
  }
  const prefixLength = prefix.length > 3 ? Infinity : Number(prefix);
  if (prefixLength > width) {
    throw new RangeError(
      `Invalid prefix length in "${text}": ${prefix} is greater than ${width}`,
    );
  }
  return { address, prefixLength, family };
}

/**
 * Parses a MAC address of six two-digit hexadecimal groups separated by
 * colons or hyphens (one kind throughout), in either case.
 *
 * @example Parse a MAC address
 * ```ts
 * import { parseMac } from "@tuntap/tuntap/packet";
 *
 * parseMac("02-00-5E-10-00-01"); // Uint8Array [2, 0, 94, 16, 0, 1]
 * ```
 *
 * @param text The address text.
 * @returns The 6 address bytes.
 * @throws {TypeError} If `text` is not a string or not a MAC address.
 */
export function parseMac(text: string): Uint8Array<ArrayBuffer> {
  requireString(text, "MAC address");
  const separator = text.includes("-") ? "-" : ":";
  const groups = text.split(separator);
  if (groups.length !== 6) {
    throw new TypeError(
      `Invalid MAC address "${text}": expected 6 groups separated by ":" or "-", found ${groups.length}`,
    );
  }
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) {
    if (!HEX_BYTE.test(groups[i])) {
      throw new TypeError(
        `Invalid MAC address "${text}": "${groups[i]}" is not two hexadecimal digits`,
      );
    }
    out[i] = parseInt(groups[i], 16);
  }
  return out;
}

const HEX = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);

/**
 * Formats the MAC address stored at `offset` in `bytes`, for the same
 * in-place reason as {@linkcode formatIPv4At}; the caller guarantees the 6
 * bytes are present.
 *
 * @param bytes Buffer holding the address.
 * @param offset Index of the first address byte.
 * @returns The lowercase colon-separated form.
 */
export function formatMacAt(bytes: Uint8Array, offset: number): string {
  return `${HEX[bytes[offset]]}:${HEX[bytes[offset + 1]]}:${HEX[bytes[offset + 2]]}:${
    HEX[bytes[offset + 3]]
  }:${HEX[bytes[offset + 4]]}:${HEX[bytes[offset + 5]]}`;
}

/**
 * Formats 6 bytes as a lowercase colon-separated MAC address.
 *
 * @example Format a MAC address
 * ```ts
 * import { formatMac } from "@tuntap/tuntap/packet";
 *
 * formatMac(new Uint8Array([2, 0, 0x5e, 0x10, 0, 1])); // "02:00:5e:10:00:01"
 * ```
 *
 * @param bytes The 6 address bytes.
 * @returns The text form, such as `02:00:5e:10:00:01`.
 * @throws {TypeError} If `bytes` is not a Uint8Array.
 * @throws {RangeError} If `bytes` is not 6 bytes long.
 */
export function formatMac(bytes: Uint8Array): string {
  requireBytes(bytes, "MAC address");
  if (bytes.length !== 6) {
    throw new RangeError(
      `MAC address must be 6 bytes long, got ${bytes.length}`,
    );
  }
  return formatMacAt(bytes, 0);
}
