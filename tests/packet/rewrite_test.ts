import fc from "fast-check";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  buildIcmpEcho,
  buildIPv4,
  buildTcp,
  buildUdp,
  clampMss,
  decrementTtl,
  formatIp,
  internetChecksum,
  parseIp,
  parsePacket,
  pseudoHeaderSum,
  rewriteAddress,
  rewritePort,
  transportChecksum,
} from "../../packet/mod.ts";
import { addressPair, ipv4Bytes, ipv6Bytes, port, uint32 } from "./arbitraries.ts";
import { laterIPv6Fragment, toHex } from "./samples.ts";

const NUM_RUNS = 200;

function read16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 8) | bytes[offset + 1];
}

function write16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 8;
  bytes[offset + 1] = value;
}

// ---------------------------------------------------------------------------
// The reference: where things are and every checksum computed from scratch.

/** Where a test packet's parts are, found independently of packet/rewrite.ts. */
interface Layout {
  v4: boolean;
  end: number;
  /** Offset of the transport header; -1 in a later fragment. */
  transport: number;
  protocol: number;
  /** Where the pseudo-header destination is (the header's, or a source route's last address). */
  finalDestination: number;
}

function layout(packet: Uint8Array): Layout {
  if (packet[0] >> 4 === 4) {
    const headerLength = (packet[0] & 0x0f) * 4;
    let finalDestination = 16;
    for (let i = 20; i < headerLength;) {
      if (packet[i] === 0) break;
      if (packet[i] === 1) {
        i++;
        continue;
      }
      const length = packet[i + 1];
      if ((packet[i] === 0x83 || packet[i] === 0x89) && packet[i + 2] + 3 <= length) {
        finalDestination = i + length - 4;
      }
      i += length;
    }
    const later = (read16(packet, 6) & 0x1fff) !== 0;
    return {
      v4: true,
      end: read16(packet, 2),
      transport: later ? -1 : headerLength,
      protocol: packet[9],
      finalDestination,
    };
  }
  const end = 40 + read16(packet, 4);
  let next = packet[6];
  let at = 40;
  let finalDestination = 24;
  for (;;) {
    if (next === 0 || next === 43 || next === 60) {
      const length = (packet[at + 1] + 1) * 8;
      if (next === 43 && packet[at + 3] > 0) finalDestination = at + length - 16;
      next = packet[at];
      at += length;
    } else if (next === 44) {
      if ((read16(packet, at + 2) & 0xfff8) !== 0) {
        return { v4: false, end, transport: -1, protocol: packet[at], finalDestination };
      }
      next = packet[at];
      at += 8;
    } else {
      return { v4: false, end, transport: at, protocol: next, finalDestination };
    }
  }
}

function checksumField(at: Layout): number {
  if (at.transport === -1) return -1;
  if (at.protocol === 6) return at.transport + 16;
  if (at.protocol === 17) return at.transport + 6;
  if ((at.protocol === 1 && at.v4) || (at.protocol === 58 && !at.v4)) return at.transport + 2;
  return -1;
}

/** Fills every checksum of `packet` by full computation (a zero UDP checksum stays zero). */
function recompute(packet: Uint8Array): Uint8Array {
  const at = layout(packet);
  if (at.v4) {
    const headerLength = (packet[0] & 0x0f) * 4;
    write16(packet, 10, 0);
    write16(packet, 10, internetChecksum(packet.subarray(0, headerLength)));
  }
  const field = checksumField(at);
  if (field === -1) return packet;
  if (at.protocol === 17 && read16(packet, field) === 0) return packet;
  write16(packet, field, 0);
  const segment = packet.subarray(at.transport, at.end);
  let checksum: number;
  if (at.protocol === 1) {
    checksum = internetChecksum(segment);
  } else {
    const size = at.v4 ? 4 : 16;
    const source = at.v4 ? 12 : 8;
    checksum = transportChecksum({
      source: packet.subarray(source, source + size),
      destination: packet.subarray(at.finalDestination, at.finalDestination + size),
      protocol: at.protocol,
      segment,
    });
    if (at.protocol === 17 && checksum === 0) checksum = 0xffff;
  }
  write16(packet, field, checksum);
  return packet;
}

// ---------------------------------------------------------------------------
// Test packets: builder output reshaped with IPv4 options, fragments and
// IPv6 extension headers, then checksummed by the reference.

type Kind = "udp" | "tcp" | "echo-request" | "echo-reply";
type V4Options = "none" | "nop" | "lsrr-pending" | "lsrr-done";
type Extension = "hop-by-hop" | "destination" | "routing-done" | "routing-pending";
type Fragment = "none" | "first" | "later";

interface Spec {
  kind: Kind;
  source: Uint8Array;
  destination: Uint8Array;
  sourcePort: number;
  destinationPort: number;
  sequence: number;
  payload: Uint8Array;
  syn?: boolean;
  tcpOptions?: Uint8Array;
  v4Options?: V4Options;
  extensions?: Extension[];
  fragment?: Fragment;
  zeroUdp?: boolean;
}

const ROUTE_V4 = [198, 51, 100, 9];
const ROUTE_V6 = parseIp("2001:db8:ffff::9");

function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function basePacket(spec: Spec): Uint8Array {
  const ip = { source: spec.source, destination: spec.destination };
  switch (spec.kind) {
    case "udp":
      return buildUdp({
        ...ip,
        sourcePort: spec.sourcePort,
        destinationPort: spec.destinationPort,
        payload: spec.payload,
      });
    case "tcp":
      return buildTcp({
        ...ip,
        sourcePort: spec.sourcePort,
        destinationPort: spec.destinationPort,
        sequence: spec.sequence,
        flags: spec.syn ? { syn: true } : { ack: true },
        payload: spec.payload,
      });
    default:
      return buildIcmpEcho({
        ...ip,
        identifier: spec.sourcePort,
        sequence: spec.sequence & 0xffff,
        payload: spec.payload,
        reply: spec.kind === "echo-reply",
      });
  }
}

function v4OptionBytes(options: V4Options): number[] {
  switch (options) {
    case "none":
      return [];
    case "nop":
      return [1, 1, 1, 1];
    // A loose source route with one address, padded by a NOP; the pointer
    // (4) names that address, or (8) is past it when the route is done.
    case "lsrr-pending":
      return [1, 0x83, 7, 4, ...ROUTE_V4];
    case "lsrr-done":
      return [1, 0x83, 7, 8, ...ROUTE_V4];
  }
}

function extensionBytes(extension: Extension | "fragment-first" | "fragment-later"): number[] {
  switch (extension) {
    case "hop-by-hop":
    case "destination":
      return [0, 0, 1, 4, 0, 0, 0, 0]; // a PadN option fills it
    case "routing-done":
    case "routing-pending": // type 0, one address, segments left 1 or 0
      return [0, 2, 0, extension === "routing-pending" ? 1 : 0, 0, 0, 0, 0, ...ROUTE_V6];
    case "fragment-first":
      return [0, 0, 0, 1, 0, 0, 0x12, 0x34];
    case "fragment-later":
      return [0, 0, 0x05, 0xa8, 0, 0, 0x12, 0x34];
  }
}

const EXTENSION_NUMBER = {
  "hop-by-hop": 0,
  "destination": 60,
  "routing-done": 43,
  "routing-pending": 43,
  "fragment-first": 44,
  "fragment-later": 44,
} as const;

/** A test packet with all checksums right. */
function makePacket(spec: Spec): Uint8Array {
  let packet = basePacket(spec);
  if (spec.tcpOptions) {
    const t = packet[0] >> 4 === 4 ? 20 : 40;
    packet = concat(packet.subarray(0, t + 20), spec.tcpOptions, packet.subarray(t + 20));
    packet[t + 12] = ((20 + spec.tcpOptions.length) / 4) << 4;
  }
  const fragment = spec.fragment ?? "none";
  if (packet[0] >> 4 === 4) {
    const options = v4OptionBytes(spec.v4Options ?? "none");
    packet = concat(packet.subarray(0, 20), options, packet.subarray(20));
    packet[0] = 0x45 + options.length / 4;
    write16(packet, 2, packet.length);
    if (fragment === "first") write16(packet, 6, 0x2000);
    if (fragment === "later") write16(packet, 6, 0x2000 | 181);
  } else {
    const chain: (Extension | "fragment-first" | "fragment-later")[] = [
      ...(spec.extensions ?? []),
    ];
    if (fragment !== "none") chain.push(`fragment-${fragment}`);
    let next = packet[6];
    const headers: number[][] = [];
    for (let i = chain.length - 1; i >= 0; i--) {
      const bytes = extensionBytes(chain[i]);
      bytes[0] = next;
      next = EXTENSION_NUMBER[chain[i]];
      headers.unshift(bytes);
    }
    packet = concat(packet.subarray(0, 40), ...headers, packet.subarray(40));
    packet[6] = next;
    write16(packet, 4, packet.length - 40);
  }
  const at = layout(packet);
  if (spec.zeroUdp && at.protocol === 17 && at.transport !== -1) {
    write16(packet, at.transport + 6, 0);
  }
  return recompute(packet);
}

/**
 * Makes `after` (and `before`, which differs from it only where a rewrite
 * writes) have checksums that compute to zero: RFC 1624's 0x0000/0xffff
 * edge. A word no rewrite touches (the IPv4 identification; the TCP or
 * echo sequence, or the first UDP data word) takes the value that does it.
 */
function forceZeroChecksums(before: Uint8Array, after: Uint8Array): void {
  const at = layout(after);
  const free: [number, number][] = [];
  if (at.v4) free.push([4, 10]);
  const field = checksumField(at);
  if (field !== -1 && !(at.protocol === 17 && read16(after, field) === 0)) {
    const word = at.protocol === 6
      ? at.transport + 4
      : at.protocol === 17
      ? at.transport + 8
      : at.transport + 6;
    if (word + 2 <= at.end) free.push([word, field]);
  }
  for (const [word, checksumAt] of free) {
    write16(after, word, 0);
    recompute(after);
    // With the word 0 the checksum is ~S; adding S's complement makes the
    // sum -0, so the checksum becomes 0 (sent as 0xffff by UDP).
    let value = read16(after, checksumAt);
    if (at.protocol === 17 && checksumAt !== 10 && value === 0xffff) value = 0;
    write16(after, word, value);
    write16(before, word, value);
    recompute(after);
    recompute(before);
  }
}

const kind = fc.constantFrom<Kind>("udp", "tcp", "echo-request", "echo-reply");

const shape = fc.record({
  v4Options: fc.constantFrom<V4Options>("none", "nop", "lsrr-pending", "lsrr-done"),
  extensions: fc.array(
    fc.constantFrom<Extension>("hop-by-hop", "destination", "routing-done", "routing-pending"),
    { maxLength: 3 },
  ),
  fragment: fc.constantFrom<Fragment>("none", "none", "first", "later"),
  zeroUdp: fc.boolean(),
});

const spec: fc.Arbitrary<Spec> = fc.record({
  kind,
  pair: addressPair,
  sourcePort: port,
  destinationPort: port,
  sequence: uint32,
  payload: fc.uint8Array({ maxLength: 64 }),
  shape,
}).map(({ pair, shape, ...rest }) => ({
  ...rest,
  ...shape,
  source: pair.sourceBytes,
  destination: pair.destinationBytes,
}));

/** An address of the family, as text or bytes. */
function newAddress(v4: boolean): fc.Arbitrary<string | Uint8Array> {
  const bytes = v4 ? ipv4Bytes : ipv6Bytes;
  return fc.oneof(bytes, bytes.map((b) => formatIp(b)));
}

function bytesOf(address: string | Uint8Array): Uint8Array {
  return typeof address === "string" ? parseIp(address) : address;
}

/**
 * `rewrite` with `change` turns `before` into `after`, and with the `old`
 * values of the fields it changed turns `after` back into `before`.
 */
function assertBothWays<T>(
  rewrite: (packet: Uint8Array, options: { source?: T; destination?: T }) => void,
  before: Uint8Array,
  after: Uint8Array,
  change: { source?: T; destination?: T },
  old: { source: T; destination: T },
): void {
  const forward = before.slice();
  rewrite(forward, change);
  assertEquals(toHex(forward), toHex(after));
  const back = after.slice();
  rewrite(back, {
    source: change.source === undefined ? undefined : old.source,
    destination: change.destination === undefined ? undefined : old.destination,
  });
  assertEquals(toHex(back), toHex(before));
}

// ---------------------------------------------------------------------------
// Properties: every rewrite equals the full recomputation, byte for byte.

Deno.test("rewriteAddress gives the same bytes as a full recomputation, in both directions", () => {
  fc.assert(
    fc.property(
      spec.chain((s) =>
        fc.record({
          spec: fc.constant(s),
          source: fc.option(newAddress(s.source.length === 4), { nil: undefined }),
          destination: fc.option(newAddress(s.source.length === 4), { nil: undefined }),
          edge: fc.boolean(),
        })
      ),
      ({ spec, source, destination, edge }) => {
        const before = makePacket(spec);
        const after = before.slice();
        const v4 = spec.source.length === 4;
        if (source !== undefined) after.set(bytesOf(source), v4 ? 12 : 8);
        if (destination !== undefined) after.set(bytesOf(destination), v4 ? 16 : 24);
        recompute(after);
        if (edge) forceZeroChecksums(before, after);
        const old = {
          source: before.slice(v4 ? 12 : 8, v4 ? 16 : 24),
          destination: before.slice(v4 ? 16 : 24, v4 ? 20 : 40),
        };
        assertBothWays(rewriteAddress, before, after, { source, destination }, old);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("rewritePort gives the same bytes as a full recomputation, in both directions", () => {
  fc.assert(
    fc.property(
      spec,
      fc.option(port, { nil: undefined }),
      fc.option(port, { nil: undefined }),
      fc.boolean(),
      (spec, source, destination, edge) => {
        const echo = spec.kind.startsWith("echo");
        // The echo identifier stands for both ports: give it once.
        if (echo && source !== undefined) destination = undefined;
        const before = makePacket(spec);
        const at = layout(before);
        if (at.transport === -1) {
          const copy = before.slice();
          assertThrows(() => rewritePort(copy, { source, destination }), RangeError);
          assertEquals(copy, before);
          return;
        }
        const after = before.slice();
        const t = at.transport;
        const old = echo
          ? { source: read16(before, t + 4), destination: read16(before, t + 4) }
          : { source: read16(before, t), destination: read16(before, t + 2) };
        if (echo) {
          const identifier = source ?? destination;
          if (identifier !== undefined) write16(after, t + 4, identifier);
        } else {
          if (source !== undefined) write16(after, t, source);
          if (destination !== undefined) write16(after, t + 2, destination);
        }
        recompute(after);
        if (edge) forceZeroChecksums(before, after);
        assertBothWays(rewritePort, before, after, { source, destination }, old);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("decrementTtl gives the same bytes as a full recomputation and returns what is left", () => {
  fc.assert(
    fc.property(spec, fc.integer({ min: 0, max: 255 }), fc.boolean(), (spec, ttl, edge) => {
      const packet = makePacket(spec);
      const v4 = spec.source.length === 4;
      packet[v4 ? 8 : 7] = ttl;
      recompute(packet);
      const expected = packet.slice();
      if (ttl > 1) {
        expected[v4 ? 8 : 7] = ttl - 1;
        recompute(expected);
        if (edge) forceZeroChecksums(packet, expected);
      }
      const left = decrementTtl(packet);
      assertStrictEquals(left, ttl > 1 ? ttl - 1 : 0);
      assertEquals(toHex(packet), toHex(expected));
    }),
    { numRuns: NUM_RUNS },
  );
});

/** One TCP option's bytes. */
const tcpOption = fc.oneof(
  fc.constant([1]),
  fc.integer({ min: 0, max: 0xffff }).map((mss) => [2, 4, mss >> 8, mss & 0xff]),
  fc.integer({ min: 0, max: 14 }).map((shift) => [3, 3, shift]),
  fc.constant([4, 2]),
  fc.tuple(uint32, uint32).map((
    [a, b],
  ) => [
    8,
    10,
    a >>> 24,
    a >>> 16 & 0xff,
    a >>> 8 & 0xff,
    a & 0xff,
    b >>> 24,
    b >>> 16 & 0xff,
    b >>> 8 & 0xff,
    b & 0xff,
  ]),
);

/** Well-formed TCP options padded with EOL to a multiple of 4, at most 40 bytes. */
const tcpOptions = fc.array(tcpOption, { maxLength: 6 }).map((list) => {
  const bytes = list.flat().slice(0, 40);
  // A cut option would be malformed: keep whole ones only.
  let length = 0;
  for (const option of list) {
    if (length + option.length > 40) break;
    length += option.length;
  }
  const padded = new Uint8Array(Math.ceil(length / 4) * 4);
  padded.set(bytes.slice(0, length));
  return padded;
});

/** The first MSS option's value and offset in well-formed options, or undefined. */
function findMss(options: Uint8Array): { value: number; at: number } | undefined {
  for (let i = 0; i < options.length;) {
    if (options[i] === 0) return undefined;
    if (options[i] === 1) {
      i++;
      continue;
    }
    if (options[i] === 2) return { value: read16(options, i + 2), at: i + 2 };
    i += options[i + 1];
  }
  return undefined;
}

Deno.test("clampMss lowers only a larger MSS of a SYN, as a full recomputation would", () => {
  fc.assert(
    fc.property(
      spec.map((s) => ({ ...s, kind: "tcp" as const })),
      tcpOptions,
      fc.boolean(),
      fc.integer({ min: 0, max: 0xffff }),
      (spec, options, syn, mss) => {
        const packet = makePacket({ ...spec, syn, tcpOptions: options });
        const at = layout(packet);
        const found = findMss(options);
        const expected = packet.slice();
        const changes = syn && at.transport !== -1 && found !== undefined && found.value > mss;
        if (changes) {
          write16(expected, at.transport + 20 + found.at, mss);
          recompute(expected);
        }
        assertStrictEquals(clampMss(packet, mss), changes);
        assertEquals(toHex(packet), toHex(expected));
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

// ---------------------------------------------------------------------------
// Packets cut short, as ICMP errors quote them.

Deno.test("a packet cut short is rewritten as the whole one is, but for a checksum field past the cut", () => {
  fc.assert(
    fc.property(
      spec.filter((s) => s.fragment !== "later").chain((s) =>
        fc.record({
          spec: fc.constant(s),
          source: fc.option(newAddress(s.source.length === 4), { nil: undefined }),
          destination: fc.option(newAddress(s.source.length === 4), { nil: undefined }),
          port: fc.option(port, { nil: undefined }),
          cut: fc.nat(),
        })
      ),
      ({ spec, source, destination, port, cut }) => {
        const before = makePacket(spec);
        const at = layout(before);
        const echo = spec.kind.startsWith("echo");
        // What the rewriters need: the ports, or the echo header with its identifier.
        const least = at.transport + (echo ? 8 : 4);
        const length = least + cut % (at.end - least + 1);
        const whole = before.slice();
        rewriteAddress(whole, { source, destination });
        if (port !== undefined) rewritePort(whole, { source: port });
        const quote = before.slice(0, length);
        rewriteAddress(quote, { source, destination });
        if (port !== undefined) rewritePort(quote, { source: port });
        const expected = whole.slice(0, length);
        // A checksum field cut in two is not updated: its first byte stays.
        const field = checksumField(at);
        if (field === length - 1) expected[field] = before[field];
        assertEquals(toHex(quote), toHex(expected));
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("an 8-byte TCP quote gets new addresses and ports; its checksum field, past the quote, is not there to update", () => {
  const segment = buildTcp({
    source: "192.0.2.10",
    destination: "203.0.113.5",
    sourcePort: 40000,
    destinationPort: 443,
    sequence: 7,
    flags: { ack: true },
    payload: new Uint8Array(100),
  });
  // RFC 792: the IP header and the first 8 bytes of the datagram.
  const quote = segment.slice(0, 28);
  rewriteAddress(quote, { source: "198.51.100.1" });
  rewritePort(quote, { source: 61000 });
  assertEquals(formatIp(quote.subarray(12, 16)), "198.51.100.1");
  assertStrictEquals(read16(quote, 20), 61000);
  // The length still says 140 bytes, and the IPv4 header checksum is right.
  assertStrictEquals(read16(quote, 2), 140);
  assertStrictEquals(internetChecksum(quote.subarray(0, 20)), 0);
  assertEquals(toHex(quote.subarray(24)), toHex(segment.subarray(24, 28)));
});

Deno.test("a quoted UDP header of 8 bytes has its checksum updated as the whole datagram's would be", () => {
  const datagram = udp("2001:db8::10", "2001:db8:1::5", Array.from({ length: 200 }, (_, i) => i));
  const whole = datagram.slice();
  rewriteAddress(whole, { destination: "2001:db8::99" });
  rewritePort(whole, { destination: 5353 });
  const quote = datagram.slice(0, 48);
  rewriteAddress(quote, { destination: "2001:db8::99" });
  rewritePort(quote, { destination: 5353 });
  assertEquals(toHex(quote), toHex(whole.subarray(0, 48)));
});

Deno.test("a quote cut before its ports or inside its headers is a RangeError and stays as it was", () => {
  const datagram = udp("192.0.2.10", "203.0.113.5");
  const quote = datagram.slice(0, 22);
  const copy = quote.slice();
  assertThrows(
    () => rewritePort(quote, { source: 1 }),
    RangeError,
    "truncated UDP ports: need 4 bytes, have 2",
  );
  assertEquals(quote, copy);
  // The addresses are there: rewriteAddress takes it, leaving the UDP checksum it cannot reach.
  rewriteAddress(quote, { source: "198.51.100.1" });
  assertStrictEquals(internetChecksum(quote.subarray(0, 20)), 0);
  const echo = buildIcmpEcho({
    source: "192.0.2.10",
    destination: "203.0.113.5",
    identifier: 1,
    sequence: 1,
  }).slice(0, 26);
  assertThrows(() => rewritePort(echo, { source: 2 }), RangeError, "truncated ICMP header");
  // An IPv6 extension header cut short hides the transport header.
  const v6 = makePacket({
    kind: "udp",
    source: parseIp("2001:db8::1"),
    destination: parseIp("2001:db8::2"),
    sourcePort: 1,
    destinationPort: 2,
    sequence: 0,
    payload: new Uint8Array(8),
    extensions: ["hop-by-hop"],
  }).slice(0, 44);
  assertThrows(
    () => rewriteAddress(v6, { source: "2001:db8::9" }),
    RangeError,
    "truncated IPv6 hop-by-hop",
  );
});

// ---------------------------------------------------------------------------
// Partial checksums: the pseudo-header sum a device with checksum offload
// completes.

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * Fills the IPv4 header checksum, and puts in the TCP, UDP or ICMPv6
 * checksum field the folded pseudo-header sum by full computation, as the
 * kernel leaves it with NEEDS_CSUM. An ICMPv4 checksum is left as it is.
 */
function recomputePartial(packet: Uint8Array): Uint8Array {
  const at = layout(packet);
  if (at.v4) {
    write16(packet, 10, 0);
    write16(packet, 10, internetChecksum(packet.subarray(0, (packet[0] & 0x0f) * 4)));
  }
  const field = checksumField(at);
  if (field === -1 || at.protocol === 1) return packet;
  const size = at.v4 ? 4 : 16;
  const source = at.v4 ? 12 : 8;
  write16(
    packet,
    field,
    fold(pseudoHeaderSum({
      source: packet.subarray(source, source + size),
      destination: packet.subarray(at.finalDestination, at.finalDestination + size),
      protocol: at.protocol,
      length: at.end - at.transport,
    })),
  );
  return packet;
}

/** What the device makes of a partial checksum: the complete one (UDP's 0 sent as 0xffff). */
function completePartial(packet: Uint8Array): Uint8Array {
  const at = layout(packet);
  const field = checksumField(at);
  if (field === -1 || at.protocol === 1) return packet;
  const checksum = internetChecksum(packet.subarray(at.transport, at.end));
  write16(packet, field, checksum === 0 && at.protocol === 17 ? 0xffff : checksum);
  return packet;
}

const PARTIAL = { partialChecksum: true };

Deno.test("with partialChecksum, new addresses give the pseudo-header sum of a full recomputation", () => {
  fc.assert(
    fc.property(
      spec.chain((s) =>
        fc.record({
          spec: fc.constant(s),
          source: fc.option(newAddress(s.source.length === 4), { nil: undefined }),
          destination: fc.option(newAddress(s.source.length === 4), { nil: undefined }),
        })
      ),
      ({ spec, source, destination }) => {
        const before = recomputePartial(makePacket(spec));
        const after = before.slice();
        const v4 = spec.source.length === 4;
        if (source !== undefined) after.set(bytesOf(source), v4 ? 12 : 8);
        if (destination !== undefined) after.set(bytesOf(destination), v4 ? 16 : 24);
        recomputePartial(after);
        const packet = before.slice();
        rewriteAddress(packet, { source, destination }, PARTIAL);
        assertEquals(toHex(packet), toHex(after));
        // Completed by the device, it is the packet a full rewrite makes.
        const complete = recompute(after.slice());
        const field = checksumField(layout(complete));
        // (A zero UDP checksum, "none", is not what a device leaves.)
        if (!(spec.kind === "udp" && field !== -1 && read16(complete, field) === 0)) {
          assertEquals(toHex(completePartial(packet)), toHex(complete));
        }
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("with partialChecksum, new ports and a clamped MSS leave the pseudo-header sum alone", () => {
  fc.assert(
    fc.property(
      spec.filter((s) => s.fragment !== "later"),
      fc.option(port, { nil: undefined }),
      fc.option(port, { nil: undefined }),
      tcpOptions,
      fc.integer({ min: 0, max: 0xffff }),
      (spec, source, destination, options, mss) => {
        if (spec.kind.startsWith("echo") && source !== undefined) destination = undefined;
        const tcp = spec.kind === "tcp";
        const before = recomputePartial(
          makePacket({ ...spec, syn: tcp, tcpOptions: tcp ? options : undefined }),
        );
        const packet = before.slice();
        rewritePort(packet, { source, destination }, PARTIAL);
        const clamped = clampMss(packet, mss, PARTIAL);
        const expected = before.slice();
        const at = layout(before);
        const t = at.transport;
        if (spec.kind.startsWith("echo")) {
          const identifier = source ?? destination;
          if (identifier !== undefined) write16(expected, t + 4, identifier);
        } else {
          if (source !== undefined) write16(expected, t, source);
          if (destination !== undefined) write16(expected, t + 2, destination);
        }
        const found = tcp ? findMss(options) : undefined;
        assertStrictEquals(clamped, found !== undefined && found.value > mss);
        if (clamped) write16(expected, t + 20 + found!.at, mss);
        assertEquals(toHex(packet), toHex(expected));
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("partialChecksum must be a boolean, and the options an object", () => {
  const packet = udp("192.0.2.1", "192.0.2.2");
  const copy = packet.slice();
  const wrong = { partialChecksum: 1 } as unknown as { partialChecksum: boolean };
  assertThrows(() => rewriteAddress(packet, { source: "192.0.2.9" }, wrong), TypeError);
  assertThrows(() => rewritePort(packet, { source: 9 }, wrong), TypeError);
  assertThrows(() => clampMss(packet, 1000, wrong), TypeError, "partialChecksum must be a boolean");
  assertThrows(
    () => rewritePort(packet, { source: 9 }, null as unknown as object),
    TypeError,
    "options must be an object",
  );
  assertEquals(packet, copy);
});

// ---------------------------------------------------------------------------
// Named cases for the edges.

function udp(source: string, destination: string, data: number[] = [1, 2, 3]): Uint8Array {
  return buildUdp({
    source,
    destination,
    sourcePort: 40000,
    destinationPort: 5000,
    payload: new Uint8Array(data),
  });
}

Deno.test("a zero UDP checksum stays zero when addresses and ports change (IPv4 and IPv6)", () => {
  for (
    const [source, destination, next] of [
      ["192.0.2.1", "192.0.2.2", "198.51.100.1"],
      ["2001:db8::1", "2001:db8::2", "2001:db8:1::1"],
    ]
  ) {
    const packet = udp(source, destination);
    const t = source.includes(":") ? 40 : 20;
    write16(packet, t + 6, 0);
    rewriteAddress(packet, { source: next });
    rewritePort(packet, { source: 1, destination: 2 });
    assertStrictEquals(read16(packet, t + 6), 0);
    assertEquals(toHex(packet), toHex(recompute(packet.slice())));
  }
});

/** A packet whose checksum computes to zero once `change` is applied, and the expected result. */
function zeroAfter(before: Uint8Array, change: (p: Uint8Array) => void) {
  const after = before.slice();
  change(after);
  recompute(after);
  forceZeroChecksums(before, after);
  return { before, after };
}

Deno.test("a UDP checksum that computes to 0 is written as 0xffff", () => {
  const { before, after } = zeroAfter(
    udp("192.0.2.1", "192.0.2.2"),
    (p) => write16(p, 20, 1234),
  );
  assertStrictEquals(read16(after, 26), 0xffff);
  rewritePort(before, { source: 1234 });
  assertStrictEquals(read16(before, 26), 0xffff);
  assertEquals(toHex(before), toHex(after));
});

Deno.test("a TCP checksum that computes to 0 is written as 0x0000, not 0xffff (RFC 1624 section 3)", () => {
  const syn = buildTcp({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    sourcePort: 40000,
    destinationPort: 80,
    sequence: 1,
    flags: { syn: true },
  });
  const { before, after } = zeroAfter(syn, (p) => p.set(parseIp("2001:db8::77"), 8));
  assertStrictEquals(read16(after, 56), 0);
  rewriteAddress(before, { source: "2001:db8::77" });
  assertStrictEquals(read16(before, 56), 0);
  // And away from it again: a stored 0x0000 is +0, the sum it stands for is -0.
  rewriteAddress(before, { source: "2001:db8::1" });
  assertEquals(toHex(before), toHex(recompute(before.slice())));
});

Deno.test("a non-canonical TCP checksum 0xffff comes out as the canonical 0x0000 (RFC 1624 section 3)", () => {
  const packet = buildTcp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 0xffff,
    destinationPort: 80,
    sequence: 1,
    flags: { ack: true },
  });
  forceZeroChecksums(packet.slice(), packet);
  assertStrictEquals(read16(packet, 36), 0);
  write16(packet, 36, 0xffff); // -0 instead of +0: the same sum to a receiver
  rewritePort(packet, { source: 0 }); // 0xffff to 0: again the same sum
  assertStrictEquals(read16(packet, 36), 0);
  assertEquals(toHex(packet), toHex(recompute(packet.slice())));
});

Deno.test("an IPv4 header checksum that computes to 0 is written as 0x0000", () => {
  const { before, after } = zeroAfter(udp("192.0.2.1", "192.0.2.2"), (p) => p[8]--);
  assertStrictEquals(read16(after, 10), 0);
  assertStrictEquals(decrementTtl(before), 63);
  assertStrictEquals(read16(before, 10), 0);
  assertEquals(toHex(before), toHex(after));
});

Deno.test("an ICMP echo reply rewritten to all-zero data gets checksum 0xffff", () => {
  const reply = buildIcmpEcho({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    identifier: 7,
    sequence: 0,
    reply: true,
    payload: new Uint8Array(4),
  });
  rewritePort(reply, { destination: 0 });
  assertStrictEquals(read16(reply, 22), 0xffff);
  assertEquals(internetChecksum(reply.subarray(20)), 0);
  rewritePort(reply, { source: 9 });
  assertEquals(toHex(reply), toHex(recompute(reply.slice())));
});

Deno.test("a later IPv6 fragment whose next header says destination options changes only in its IP header", () => {
  // The packet of issue 13: after a Fragment header with offset 1 comes data.
  const packet = laterIPv6Fragment("0605000000000000");
  const data = packet.slice(40);
  rewriteAddress(packet, { source: "2001:db8::9", destination: "2001:db8::10" });
  assertEquals(packet.subarray(40), data);
  assertEquals(formatIp(packet.subarray(8, 24)), "2001:db8::9");
  assertThrows(
    () => rewritePort(packet, { source: 1 }),
    RangeError,
    "fragment other than the first",
  );
  assertStrictEquals(clampMss(packet, 536), false);
});

Deno.test("a later IPv4 fragment changes only in its IP header", () => {
  const packet = makePacket({
    kind: "tcp",
    source: parseIp("192.0.2.1"),
    destination: parseIp("192.0.2.2"),
    sourcePort: 1,
    destinationPort: 2,
    sequence: 3,
    payload: new Uint8Array(16),
    fragment: "later",
  });
  const data = packet.slice(20);
  rewriteAddress(packet, { destination: "198.51.100.7" });
  assertEquals(packet.subarray(20), data);
  assertEquals(internetChecksum(packet.subarray(0, 20)), 0);
});

Deno.test("a first fragment's transport checksum is updated, since it covers the whole datagram", () => {
  for (const v4 of [true, false]) {
    const packet = makePacket({
      kind: "udp",
      source: parseIp(v4 ? "192.0.2.1" : "2001:db8::1"),
      destination: parseIp(v4 ? "192.0.2.2" : "2001:db8::2"),
      sourcePort: 1,
      destinationPort: 2,
      sequence: 0,
      payload: new Uint8Array(16).fill(7),
      fragment: "first",
    });
    const expected = packet.slice();
    write16(expected, v4 ? 22 : 50, 99);
    recompute(expected);
    rewritePort(packet, { destination: 99 });
    assertEquals(toHex(packet), toHex(expected));
  }
});

Deno.test("a pending source route keeps the header destination out of the transport checksum", () => {
  for (const v4 of [true, false]) {
    const packet = makePacket({
      kind: "tcp",
      source: parseIp(v4 ? "192.0.2.1" : "2001:db8::1"),
      destination: parseIp(v4 ? "192.0.2.2" : "2001:db8::2"),
      sourcePort: 1,
      destinationPort: 2,
      sequence: 0,
      payload: new Uint8Array(4),
      v4Options: "lsrr-pending",
      extensions: ["routing-pending"],
    });
    const t = layout(packet).transport;
    const checksum = read16(packet, t + 16);
    rewriteAddress(packet, { destination: v4 ? "192.0.2.99" : "2001:db8::99" });
    assertStrictEquals(read16(packet, t + 16), checksum);
    assertEquals(toHex(packet), toHex(recompute(packet.slice())));
  }
});

Deno.test("an address of the other family is a TypeError and leaves the packet alone", () => {
  const packet = udp("192.0.2.1", "192.0.2.2");
  const copy = packet.slice();
  assertThrows(
    () => rewriteAddress(packet, { source: "198.51.100.1", destination: "2001:db8::1" }),
    TypeError,
    "destination 2001:db8::1 is IPv6 but the packet is IPv4",
  );
  assertThrows(() => rewriteAddress(packet, { source: new Uint8Array(16) }), TypeError);
  assertThrows(() => rewriteAddress(packet, { source: new Uint8Array(5) }), RangeError);
  assertThrows(() => rewriteAddress(packet, { source: 5 as unknown as string }), TypeError);
  assertEquals(packet, copy);
});

Deno.test("a packet that is too short or not IP is a RangeError naming what is wrong", () => {
  const v4 = udp("192.0.2.1", "192.0.2.2");
  const v6 = udp("2001:db8::1", "2001:db8::2");
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(0), "the packet is empty"],
    [v4.subarray(0, 12), "truncated IPv4 header: need 20 bytes, have 12"],
    [v6.subarray(0, 30), "truncated IPv6 header: need 40 bytes, have 30"],
    [new Uint8Array([0x20, 0, 0, 0]), "not an IP packet: IP version 2"],
  ];
  for (const [packet, message] of cases) {
    assertThrows(() => rewriteAddress(packet, { source: "192.0.2.9" }), RangeError, message);
    assertThrows(() => rewritePort(packet, { source: 9 }), RangeError, message);
    assertThrows(() => decrementTtl(packet), RangeError, message);
    assertThrows(() => clampMss(packet, 1200), RangeError, message);
  }
  // Cut short of its IP length: only the address and port rewriters take it (as a quote).
  const cut: [Uint8Array, string][] = [
    [v4.subarray(0, 25), "truncated IPv4 packet: need 31 bytes, have 25"],
    [v6.subarray(0, 45), "truncated IPv6 packet: need 51 bytes, have 45"],
  ];
  for (const [packet, message] of cut) {
    assertThrows(() => decrementTtl(packet), RangeError, message);
    assertThrows(() => clampMss(packet, 1200), RangeError, message);
  }
  // A UDP header cut short by the IP length.
  const short = v4.slice(0, 24);
  write16(short, 2, 24);
  assertThrows(
    () => rewritePort(short, { source: 1 }),
    RangeError,
    "truncated UDP header: need 8 bytes, have 4",
  );
  assertThrows(() => rewriteAddress(v4, null as unknown as object), TypeError);
  assertThrows(() => decrementTtl("x" as unknown as Uint8Array), TypeError);
});

Deno.test("rewritePort refuses packets without ports with a RangeError and leaves them alone", () => {
  const gre = udp("192.0.2.1", "192.0.2.2");
  gre[9] = 47;
  recompute(gre);
  const copy = gre.slice();
  assertThrows(() => rewritePort(gre, { source: 1 }), RangeError, "IP protocol 47 has no ports");
  assertEquals(gre, copy);
  const unreachable = buildIcmpEcho({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    identifier: 1,
    sequence: 1,
  });
  unreachable[20] = 3;
  assertThrows(
    () => rewritePort(unreachable, { source: 1 }),
    RangeError,
    "ICMP type 3 is not an echo",
  );
  const echo = buildIcmpEcho({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    identifier: 1,
    sequence: 1,
  });
  assertThrows(
    () => rewritePort(echo, { source: 1, destination: 2 }),
    RangeError,
    "stands for both ports",
  );
  rewritePort(echo, { source: 5, destination: 5 });
  assertStrictEquals(read16(echo, 44), 5);
  assertThrows(() => rewritePort(echo, { source: 65536 }), RangeError, "0..65535");
  assertThrows(() => rewritePort(echo, { source: "1" as unknown as number }), TypeError);
});

Deno.test("decrementTtl returns 0 and changes nothing for a packet that arrived with TTL 1 or 0", () => {
  for (const source of ["192.0.2.1", "2001:db8::1"]) {
    const v4 = !source.includes(":");
    for (const ttl of [1, 0]) {
      const packet = udp(source, v4 ? "192.0.2.2" : "2001:db8::2");
      packet[v4 ? 8 : 7] = ttl;
      recompute(packet);
      const copy = packet.slice();
      assertStrictEquals(decrementTtl(packet), 0);
      assertEquals(packet, copy);
    }
    const packet = udp(source, v4 ? "192.0.2.2" : "2001:db8::2");
    assertStrictEquals(decrementTtl(packet), 63);
    assertStrictEquals(packet[v4 ? 8 : 7], 63);
    assertEquals(toHex(packet), toHex(recompute(packet.slice())));
  }
});

function synWithOptions(options: number[], flags = { syn: true }): Uint8Array {
  const packet = buildTcp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 40000,
    destinationPort: 80,
    sequence: 1,
    flags,
  });
  const withOptions = concat(packet.subarray(0, 40), options);
  withOptions[32] = ((20 + options.length) / 4) << 4;
  write16(withOptions, 2, withOptions.length);
  return recompute(withOptions);
}

Deno.test("clampMss updates the checksum when the MSS sits at an odd offset after a NOP", () => {
  const syn = synWithOptions([1, 2, 4, 0x05, 0xb4, 1, 1, 0]);
  assert(clampMss(syn, 1200));
  assertStrictEquals(read16(syn, 43), 1200);
  assertEquals(toHex(syn), toHex(recompute(syn.slice())));
});

Deno.test("clampMss clamps a SYN-ACK and leaves an MSS at or below the limit alone", () => {
  const synAck = synWithOptions([2, 4, 0x05, 0xb4], { syn: true, ack: true } as { syn: true });
  assertStrictEquals(clampMss(synAck, 1460), false);
  assertStrictEquals(clampMss(synAck, 1461), false);
  assert(clampMss(synAck, 1459));
  assertStrictEquals(read16(synAck, 42), 1459);
  assertEquals(toHex(synAck), toHex(recompute(synAck.slice())));
});

Deno.test("clampMss returns false and changes nothing for malformed options, non-SYNs and non-TCP", () => {
  const cases = [
    synWithOptions([3, 0, 2, 4, 0x05, 0xb4, 0, 0]), // a length below 2
    synWithOptions([1, 1, 3, 9, 2, 4, 0x05, 0xb4]), // an option running past the header
    synWithOptions([2, 3, 0x05, 0, 0, 0, 0, 0]), // an MSS option not 4 bytes long
    synWithOptions([0, 0, 0, 0, 2, 4, 0x05, 0xb4]), // an MSS after the end of the list
    synWithOptions([1, 1, 1, 2]), // a kind with no room for its length
    synWithOptions([2, 4, 0x05, 0xb4], { ack: true } as unknown as { syn: true }),
    udp("192.0.2.1", "192.0.2.2"),
  ];
  for (const packet of cases) {
    const copy = packet.slice();
    assertStrictEquals(clampMss(packet, 536), false);
    assertEquals(packet, copy);
  }
  const bad = synWithOptions([2, 4, 0x05, 0xb4]);
  bad[32] = 0x40; // data offset 16
  assertThrows(() => clampMss(bad, 536), RangeError, "data offset 16 is less than 20");
  bad[32] = 0xf0; // data offset 60, past the datagram
  assertThrows(
    () => clampMss(bad, 536),
    RangeError,
    "truncated TCP header: need 60 bytes, have 24",
  );
  assertThrows(() => clampMss(bad, 70000), RangeError, "0..65535");
});

Deno.test("rewriteAddress and parsePacket agree on a source route option whose pointer is below 4", () => {
  // A route option whose pointer names no address (RFC 791 makes 4 the
  // smallest) is no pending route: the sender's checksum covers the header's
  // destination, so a rewritten destination must enter the UDP checksum.
  const datagram = buildUdp({
    source: "192.0.2.1",
    destination: "198.51.100.7",
    sourcePort: 1000,
    destinationPort: 2000,
    payload: new Uint8Array([1, 2, 3]),
  });
  const packet = buildIPv4({
    source: "192.0.2.1",
    destination: "198.51.100.7",
    protocol: 17,
    options: new Uint8Array([0x83, 7, 1, 203, 0, 113, 9, 0]),
    payload: datagram.subarray(20),
  });
  assert(parsePacket(packet, "ip").udp?.checksumValid);
  rewriteAddress(packet, { destination: "198.51.100.8" });
  assert(parsePacket(packet, "ip").udp?.checksumValid);
});
