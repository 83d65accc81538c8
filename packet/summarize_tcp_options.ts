/**
 * TCP options as tcpdump prints them for `summarize`: the table of
 * fixed-size options, SACK, TCP-AO, fast open cookies and MPTCP subtypes.
 * Internal to the packet module; not exported from `mod.ts`.
 *
 * @module
 */

import { formatIPv4At, formatIPv6At } from "./address.ts";
import { read16, read32 } from "./bytes.ts";
import type { TcpLayer } from "./parse.ts";

// Options of a fixed size (after kind and length) that tcpdump decodes.
const TCP_FIXED_OPTIONS: Record<number, readonly [name: string, size: number]> = {
  2: ["mss", 2],
  3: ["wscale", 1],
  4: ["sackOK", 0],
  6: ["echo", 4], // RFC 1072
  7: ["echoreply", 4],
  8: ["TS", 8],
  11: ["cc", 4], // RFC 1644
  12: ["ccnew", 4],
  13: ["", 4], // CC.ECHO: tcpdump's table has an empty name for it
  19: ["md5", 16], // RFC 2385
  20: ["scps", 2],
  28: ["uto", 2], // RFC 5482
};

/** A TCP fast open cookie or cookie request, as tcpdump prints it. */
function describeFastOpen(bytes: Uint8Array, start: number, length: number): string {
  if (length === 0) return " cookiereq";
  if (length % 2 !== 0 || length < 4 || length > 16) return " (invalid)";
  return ` cookie ${hex(bytes, start, length)}`;
}

function hex(bytes: Uint8Array, start: number, length: number): string {
  let text = "";
  for (let i = start; i < start + length; i++) text += bytes[i].toString(16).padStart(2, "0");
  return text;
}

const MPTCP_SUBTYPES = [
  "capable",
  "join",
  "dss",
  "add-addr",
  "rem-addr",
  "prio",
  "fail",
  "fast-close",
  "unknown",
];

const MPTCP_ADDRESS_VERSIONS: Record<number, string> = {
  6: "v0-ip6",
  4: "v0-ip4",
  1: "v1-echo",
  0: "v1",
};

const SYN = 0x02;
const ACK = 0x10;

function read64(bytes: Uint8Array, offset: number): bigint {
  return (BigInt(read32(bytes, offset)) << 32n) | BigInt(read32(bytes, offset + 4));
}

/**
 * An MPTCP option (RFC 8684) at `at`, `length` bytes long, after its name,
 * as tcpdump's mptcp_print says it; `valid` is false where tcpdump gives up
 * on it (after printing what `text` holds) and calls the options bad.
 */
function describeMptcp(
  bytes: Uint8Array,
  at: number,
  length: number,
  flags: number,
): { text: string; valid: boolean } {
  if (length < 3) return { text: "", valid: false };
  const subtype = Math.min(bytes[at + 2] >> 4, 8);
  let text = ` ${length} ${MPTCP_SUBTYPES[subtype]}`;
  const fail = () => ({ text, valid: false });
  const synAck = flags & (SYN | ACK);
  switch (subtype) {
    case 0: { // MP_CAPABLE
      const onSyn = (length === 12 || length === 4) && (flags & SYN) !== 0;
      const onAck = (length === 20 || length === 22) && synAck === ACK;
      if (!onSyn && !onAck) return fail();
      const version = bytes[at + 2] & 0x0f;
      if (version > 1) return { text: `${text} Unknown Version (${version})`, valid: true };
      text += ` v${version}`;
      if (bytes[at + 3] & 0x80) text += " csum";
      if (length === 12 || length >= 20) {
        text += ` {0x${read64(bytes, at + 4).toString(16)}`;
        if (length >= 20) text += `,0x${read64(bytes, at + 12).toString(16)}`;
        text += "}";
      }
      break;
    }
    case 1: { // MP_JOIN
      const valid = (length === 12 && (flags & SYN) !== 0) ||
        (length === 16 && synAck === (SYN | ACK)) || (length === 24 && (flags & ACK) !== 0);
      if (!valid) return fail();
      if (length !== 24) {
        if (bytes[at + 2] & 1) text += " backup";
        text += ` id ${bytes[at + 3]}`;
      }
      if (length === 12) {
        text += ` token 0x${read32(bytes, at + 4).toString(16)} nonce 0x${
          read32(bytes, at + 8).toString(16)
        }`;
      } else if (length === 16) {
        text += ` hmac 0x${read64(bytes, at + 4).toString(16)} nonce 0x${
          read32(bytes, at + 12).toString(16)
        }`;
      } else {
        text += ` hmac 0x${hex(bytes, at + 4, 20)}`;
      }
      break;
    }
    case 2: { // DSS
      if (length < 4 || flags & SYN) return fail();
      const dss = bytes[at + 3];
      if (dss & 0x10) text += " fin";
      let cursor = at + 4;
      const end = at + length;
      // A 4- or 8-byte number, as the flag `wide` says.
      const number = (wide: number): boolean => {
        const size = wide ? 8 : 4;
        if (end - cursor < size) return false;
        text += wide ? read64(bytes, cursor).toString() : read32(bytes, cursor).toString();
        cursor += size;
        return true;
      };
      if (dss & 0x01) {
        text += " ack ";
        if (!number(dss & 0x02)) return fail();
      }
      if (dss & 0x04) {
        text += " seq ";
        if (!number(dss & 0x08)) return fail();
        if (end - cursor < 4) return fail();
        text += ` subseq ${read32(bytes, cursor)}`;
        cursor += 4;
        if (end - cursor < 2) return fail();
        text += ` len ${read16(bytes, cursor)}`;
        cursor += 2;
        if (end - cursor >= 2) {
          text += ` csum 0x${read16(bytes, cursor).toString(16)}`;
          cursor += 2;
        }
      }
      if (cursor !== end) return fail();
      break;
    }
    case 3: { // ADD_ADDR
      const v4 = [8, 10, 16, 18].includes(length);
      if (!v4 && ![20, 22, 28, 30].includes(length)) return fail();
      text += ` ${MPTCP_ADDRESS_VERSIONS[bytes[at + 2] & 0x0f] ?? "[bad version/echo]"}`;
      text += ` id ${bytes[at + 3]}`;
      const size = v4 ? 4 : 16;
      text += ` ${v4 ? formatIPv4At(bytes, at + 4) : formatIPv6At(bytes, at + 4)}`;
      const withPort = length === 10 || length === 18 || length === 22 || length === 30;
      if (withPort) text += `:${read16(bytes, at + 4 + size)}`;
      if (length >= 16 && length !== 20 && length !== 22) {
        text += ` hmac 0x${read64(bytes, at + 4 + size + (withPort ? 2 : 0)).toString(16)}`;
      }
      break;
    }
    case 4: // REMOVE_ADDR
      if (length < 4) return fail();
      text += " id";
      for (let i = at + 3; i < at + length; i++) text += ` ${bytes[i]}`;
      break;
    case 5: // MP_PRIO
      if (length !== 3 && length !== 4) return fail();
      text += bytes[at + 2] & 1 ? " backup" : " non-backup";
      if (length === 4) text += ` id ${bytes[at + 3]}`;
      break;
    case 6: // MP_FAIL
    case 7: // MP_FASTCLOSE
      if (length !== 12) return fail();
      text += subtype === 6
        ? ` seq ${read64(bytes, at + 4)}`
        : ` key 0x${read64(bytes, at + 4).toString(16)}`;
      break;
  }
  return { text, valid: true };
}

/**
 * The TCP options as tcpdump prints them, `mss 1460,sackOK,...]`, or up
 * to `[bad opt]` where an option's length cannot be followed (and then
 * tcpdump ends the line there).
 */
export function describeTcpOptions(
  bytes: Uint8Array,
  tcp: TcpLayer,
): { text: string; endsLine: boolean } {
  let text = "";
  let cursor = tcp.offset + 20;
  const end = tcp.offset + tcp.headerLength;
  // tcpdump ends the whole line where it cannot follow the options, with a
  // closing bracket only after a first option.
  const bad = (first: boolean) => ({ text: `${text}[bad opt]${first ? "" : "]"}`, endsLine: true });
  while (cursor < end) {
    const first = text === "";
    if (!first) text += ",";
    const kind = bytes[cursor];
    if (kind === 0) return { text: `${text}eol]`, endsLine: false }; // tcpdump stops at end-of-list
    if (kind === 1) {
      text += "nop";
      cursor++;
      continue;
    }
    // tcpdump reads a length byte past the header if the capture has one.
    if (cursor + 1 >= bytes.length) return { text: `${text} [|tcp]`, endsLine: true };
    const length = bytes[cursor + 1];
    if (length < 2 || cursor + length > end) return bad(first);
    const data = cursor + 2;
    const fixed = TCP_FIXED_OPTIONS[kind];
    if (fixed !== undefined) {
      const [name, size] = fixed;
      text += name;
      // Like tcpdump, read what the kind defines (even past a short length,
      // within the header) and step over that, not over what the length
      // says: the surplus bytes of an overlong option are read as options.
      if (end - data < size) return bad(first);
      if (kind === 19) {
        // tcpdump (built with libcrypto) has no -M secret to check it with.
        text += ` shared secret not supplied with -M, can't check - ${hex(bytes, data, size)}`;
      } else if (kind === 20) text += ` cap ${hex(bytes, data, 1)} id ${bytes[data + 1]}`;
      else if (kind === 28) {
        const value = read16(bytes, data);
        // The low bit says minutes (RFC 5482 section 3).
        text += ` 0x${value.toString(16)} ${value & 1 ? (value >> 1) * 60 : value >> 1}`;
      } else if (size === 1) text += ` ${bytes[data]}`;
      else if (size === 2) text += ` ${read16(bytes, data)}`;
      else if (size === 4) text += ` ${read32(bytes, data)}`;
      else if (size === 8) text += ` val ${read32(bytes, data)} ecr ${read32(bytes, data + 4)}`;
      if (length !== 2 + size) text += `[len ${length}]`;
      cursor = data + size;
      continue;
    }
    const dataLength = length - 2;
    if (kind === 5) {
      if (dataLength % 8 !== 0 || dataLength === 0) {
        text += "sack invalid sack";
      } else {
        text += `sack ${dataLength / 8} `;
        for (let block = data; block < data + dataLength; block += 8) {
          text += `{${read32(bytes, block)}:${read32(bytes, block + 4)}}`;
        }
      }
    } else if (kind === 30) {
      text += "mptcp";
      const mptcp = describeMptcp(bytes, cursor, length, bytes[tcp.offset + 13]);
      text += mptcp.text;
      if (!mptcp.valid) return bad(first);
    } else if (kind === 29) {
      text += "tcp-ao";
      text += dataLength < 2
        ? " (invalid)"
        : ` keyid ${bytes[data]} rnextkeyid ${bytes[data + 1]}` +
          (dataLength > 2 ? ` mac 0x${hex(bytes, data + 2, dataLength - 2)}` : "");
    } else if (kind === 34) {
      text += `tfo ${describeFastOpen(bytes, data, dataLength)}`;
    } else if (kind === 254 && dataLength >= 2) {
      // RFC 6994 experiments: a 16-bit magic number, 0xf989 for fast open.
      const magic = read16(bytes, data);
      text += magic === 0xf989
        ? `exp-tfo${describeFastOpen(bytes, data + 2, dataLength - 2)}`
        : `exp-${magic.toString(16).padStart(4, "0")}`;
    } else {
      text += `unknown-${kind}`;
      if (dataLength > 0) text += ` 0x${hex(bytes, data, dataLength)}`;
    }
    cursor += length;
  }
  return { text: `${text}]`, endsLine: false };
}
