import fc from "fast-check";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  buildIcmpEcho,
  buildIPv4,
  buildIPv6,
  buildTcp,
  buildUdp,
  fragment,
  internetChecksum,
  parsePacket,
  Reassembler,
} from "../../packet/mod.ts";
import { addressPair, port, uint32 } from "./arbitraries.ts";

const NUM_RUNS = 300;
const V4 = { source: "192.0.2.1", destination: "192.0.2.2" };
const V6 = { source: "2001:db8::1", destination: "2001:db8::2" };

function read16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 8) | bytes[offset + 1];
}

function pattern(length: number, seed = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed + i * 7 + (i >> 8)) & 0xff);
}

/** A clock tests move by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let time = 1000;
  return { now: () => time, advance: (ms) => void (time += ms) };
}

/** An IPv4 fragment (or whole datagram) of 192.0.2.1 > 192.0.2.2, UDP. */
function v4Fragment(
  options: { offset: number; size: number; more: boolean; id?: number; seed?: number },
): Uint8Array {
  return buildIPv4({
    ...V4,
    protocol: 17,
    identification: options.id ?? 1,
    dontFragment: false,
    moreFragments: options.more,
    fragmentOffset: options.offset,
    payload: pattern(options.size, options.seed ?? options.offset),
  });
}

/** A copy of an IPv4 packet with another identification. */
function withId(packet: Uint8Array, id: number): Uint8Array {
  const copy = packet.slice();
  copy[4] = id >> 8;
  copy[5] = id;
  copy[10] = copy[11] = 0;
  const checksum = internetChecksum(copy.subarray(0, 20));
  copy[10] = checksum >> 8;
  copy[11] = checksum;
  return copy;
}

/** Pushes each packet; returns every datagram that came out. */
function pushAll(reassembler: Reassembler, packets: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const packet of packets) {
    const whole = reassembler.push(packet);
    if (whole !== undefined) out.push(whole);
  }
  return out;
}

// An extension header of `words` + 1 eight-byte units, its options one PadN.
function extension(nextHeader: number, words: number, routing = false): Uint8Array {
  const header = new Uint8Array((words + 1) * 8);
  header[0] = nextHeader;
  header[1] = words;
  if (routing) {
    header[2] = 253; // experimental routing type, segments left 0
  } else {
    header[2] = 1;
    header[3] = header.length - 4;
  }
  return header;
}

/** A transport segment (header and data) between the pair's addresses. */
const segment = fc.record({
  kind: fc.constantFrom("udp", "tcp", "icmp"),
  s: port,
  d: port,
  seq: uint32,
  size: fc.integer({ min: 0, max: 4000 }),
  seed: fc.nat(255),
}).map(({ kind, s, d, seq, size, seed }) => (source: string, destination: string) => {
  const common = { source, destination, payload: pattern(size, seed) };
  const packet = kind === "udp"
    ? buildUdp({ ...common, sourcePort: s, destinationPort: d })
    : kind === "tcp"
    ? buildTcp({
      ...common,
      sourcePort: s,
      destinationPort: d,
      sequence: seq,
      flags: { ack: true },
    })
    : buildIcmpEcho({ ...common, identifier: s, sequence: d });
  const v4 = packet[0] >> 4 === 4;
  return { protocol: v4 ? packet[9] : packet[6], bytes: packet.subarray(v4 ? 20 : 40) };
});

/** Up to 40 bytes of IPv4 options, some with the copied flag, padded with EOL. */
const ipv4Options = fc.array(
  fc.oneof(
    fc.constant([1]),
    fc.record({
      copied: fc.boolean(),
      type: fc.integer({ min: 2, max: 31 }),
      data: fc.uint8Array({ maxLength: 6 }),
    }).map(({ copied, type, data }) => [(copied ? 0x80 : 0) | type, data.length + 2, ...data]),
  ),
  { maxLength: 5 },
).map((options) => {
  const bytes = options.flat().slice(0, 40);
  // A cut option would be malformed: keep whole options only.
  let at = 0;
  let whole = 0;
  while (at < bytes.length) {
    const length = bytes[at] === 1 ? 1 : bytes[at + 1];
    if (at + length > bytes.length) break;
    at += length;
    whole = at;
  }
  const padded = new Uint8Array(Math.ceil(whole / 4) * 4);
  padded.set(bytes.slice(0, whole));
  return padded;
});

const ipv4Packet = fc.record({
  pair: addressPair.filter((pair) => pair.family === 4),
  segment,
  id: port,
  tos: fc.nat(255),
  options: ipv4Options,
}).map(({ pair, segment, id, tos, options }) => {
  const { protocol, bytes } = segment(pair.source, pair.destination);
  return buildIPv4({
    source: pair.source,
    destination: pair.destination,
    protocol,
    payload: bytes,
    identification: id,
    tos,
    options,
    dontFragment: false,
  });
});

const ipv6Packet = fc.record({
  pair: addressPair.filter((pair) => pair.family === 6),
  segment,
  hopByHop: fc.option(fc.nat(2), { nil: undefined }),
  destinationBefore: fc.option(fc.nat(2), { nil: undefined }),
  routing: fc.option(fc.nat(2), { nil: undefined }),
  destinationAfter: fc.option(fc.nat(2), { nil: undefined }),
  flowLabel: fc.integer({ min: 0, max: 0xfffff }),
}).map(({ pair, segment, hopByHop, destinationBefore, routing, destinationAfter, flowLabel }) => {
  const { protocol, bytes } = segment(pair.source, pair.destination);
  // Built from the inside out: each header names the one after it.
  const chain: [number, number | undefined][] = [
    [0, hopByHop],
    [60, destinationBefore],
    [43, routing],
    [60, destinationAfter],
  ];
  let nextHeader = protocol;
  let payload = bytes;
  for (const [type, words] of chain.reverse()) {
    if (words === undefined) continue;
    const header = extension(nextHeader, words, type === 43);
    const joined = new Uint8Array(header.length + payload.length);
    joined.set(header);
    joined.set(payload, header.length);
    payload = joined;
    nextHeader = type;
  }
  return buildIPv6({
    source: pair.source,
    destination: pair.destination,
    nextHeader,
    payload,
    flowLabel,
  });
});

/** Fisher-Yates with a small LCG, so a seed reproduces the order. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = items.slice();
  let state = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

Deno.test("fragment, shuffle, reassemble gives the original bytes, every fragment within the MTU", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        // From 88 on, a first fragment holds a whole TCP header after 60 bytes of IPv4 header.
        fc.tuple(ipv4Packet, fc.integer({ min: 88, max: 1600 })),
        fc.tuple(ipv6Packet, fc.integer({ min: 1280, max: 2000 })),
      ),
      fc.nat(),
      fc.option(fc.nat(), { nil: undefined }),
      ([packet, mtu], seed, duplicate) => {
        const fragments = fragment(packet, mtu);
        if (packet.length <= mtu) {
          assertStrictEquals(fragments.length, 1);
          assertStrictEquals(fragments[0], packet);
        } else {
          assert(fragments.length > 1);
        }
        const v4 = packet[0] >> 4 === 4;
        for (const [i, piece] of fragments.entries()) {
          assert(piece.length <= mtu, `fragment ${i} is ${piece.length} > ${mtu}`);
          const parsed = parsePacket(piece, "ip");
          if (v4 && fragments.length > 1) {
            const ipv4 = parsed.ipv4!;
            assert(ipv4.checksumValid);
            assertStrictEquals(ipv4.identification, read16(packet, 4));
            assertStrictEquals(ipv4.moreFragments, i < fragments.length - 1);
            assertStrictEquals(ipv4.fragmentOffset % 8, 0);
            if (i < fragments.length - 1) {
              assertStrictEquals((ipv4.totalLength - ipv4.headerLength) % 8, 0);
            }
          }
        }
        const order = shuffled(fragments, seed);
        // A duplicate after the last fragment would start a datagram anew.
        if (duplicate !== undefined && order.length > 1) {
          const at = duplicate % (order.length - 1);
          order.splice(at + 1, 0, order[at]);
        }
        const reassembler = new Reassembler();
        const out = pushAll(reassembler, order);
        assertStrictEquals(out.length, 1);
        assertEquals(out[0], packet);
        assertStrictEquals(reassembler.pending, 0);
        assertStrictEquals(reassembler.bufferedBytes, 0);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("a packet that fits the MTU comes back as the only element, not copied", () => {
  const packet = buildUdp({ ...V4, sourcePort: 1, destinationPort: 2, payload: pattern(100) });
  const fragments = fragment(packet, 128);
  assertStrictEquals(fragments.length, 1);
  assertStrictEquals(fragments[0], packet);
});

Deno.test("fragment refuses an IPv4 packet with don't fragment set, naming buildIcmpError", () => {
  // buildUdp sets DF, as Linux does on path-MTU-discovering sockets.
  const packet = buildUdp({ ...V4, sourcePort: 1, destinationPort: 2, payload: pattern(2000) });
  assertThrows(
    () => fragment(packet, 1500),
    (error: Error) =>
      error instanceof RangeError && /don't fragment/.test(error.message) &&
      /buildIcmpError\(.*"fragmentation-needed", mtu: 1500/.test(error.message),
  );
});

Deno.test("fragment refuses an MTU below 68 for IPv4 and below 1280 for IPv6", () => {
  const v4 = v4Fragment({ offset: 0, size: 8, more: false });
  const v6 = buildIPv6({ ...V6, nextHeader: 59 });
  assertThrows(() => fragment(v4, 67), /MTU 67 is below the IPv4 minimum of 68/);
  assertThrows(() => fragment(v6, 1279), /MTU 1279 is below the IPv6 minimum of 1280/);
  assertThrows(() => fragment(v4, 68.5), RangeError);
  assertStrictEquals(fragment(v4, 68)[0], v4);
});

Deno.test("fragment refuses an IPv6 packet that already carries a Fragment header", () => {
  const big = buildIPv6({ ...V6, nextHeader: 59, payload: pattern(3000) });
  const [first] = fragment(big, 1280, { identification: 5 });
  assertThrows(() => fragment(first, 1280), /already has a Fragment header at offset 40/);
});

Deno.test("fragment refuses malformed packets", () => {
  assertThrows(() => fragment(new Uint8Array(0), 1500), /empty packet/);
  assertThrows(() => fragment(new Uint8Array([0x50, 0, 0, 0]), 1500), /IP version is 5/);
  const truncated = v4Fragment({ offset: 0, size: 100, more: false }).subarray(0, 60);
  assertThrows(() => fragment(truncated, 68), /total length 120 do not fit its 60 bytes/);
  assertThrows(() => fragment("x" as unknown as Uint8Array, 1500), TypeError);
});

Deno.test("fragment copies into later IPv4 fragments only the options with the copied flag", () => {
  // NOP, a copied option (0x83, 7 bytes), a non-copied one (0x07, 3 bytes), EOL padding.
  const options = new Uint8Array([1, 0x83, 7, 1, 2, 3, 4, 5, 0x07, 3, 9, 0]);
  const packet = buildIPv4({
    ...V4,
    protocol: 253,
    payload: pattern(200),
    options,
    dontFragment: false,
    identification: 77,
  });
  const fragments = fragment(packet, 100);
  assertEquals(fragments[0].subarray(0, 32).slice(20), options);
  for (const later of fragments.slice(1)) {
    assertStrictEquals(later[0], 0x47); // 20 + 8 bytes of header
    assertEquals([...later.subarray(20, 28)], [0x83, 7, 1, 2, 3, 4, 5, 0]);
    assert(parsePacket(later, "ip").ipv4!.checksumValid);
  }
  assertEquals(pushAll(new Reassembler(), fragments), [packet]);
});

Deno.test("fragment of an IPv4 fragment keeps its offset and its more-fragments flag", () => {
  const whole = v4Fragment({ offset: 0, size: 2400, more: false, id: 9 });
  const fragments = fragment(whole, 1500);
  const split = fragments.flatMap((piece) => fragment(piece, 600));
  assert(split.length > fragments.length);
  for (const piece of split.slice(0, -1)) assert(parsePacket(piece, "ip").ipv4!.moreFragments);
  assertEquals(pushAll(new Reassembler(), shuffled(split, 3)), [whole]);
});

Deno.test("fragment repeats the IPv6 headers up to the routing header in every fragment", () => {
  // Hop-by-hop, destination options, routing (all per-fragment), then
  // destination options for the final destination, which travel fragmented.
  const inner = new Uint8Array(2600);
  inner.set(extension(17, 0));
  const chain = [extension(60, 0), extension(43, 1), extension(60, 0, true)];
  const payload = new Uint8Array(chain.reduce((sum, h) => sum + h.length, 0) + inner.length);
  let at = 0;
  for (const header of [...chain, inner]) {
    payload.set(header, at);
    at += header.length;
  }
  const packet = buildIPv6({ ...V6, nextHeader: 0, payload });
  const perFragment = 40 + 8 + 16 + 8;
  const fragments = fragment(packet, 1280, { identification: 0xdeadbeef });
  assertStrictEquals(fragments.length, 3);
  for (const [i, piece] of fragments.entries()) {
    assertEquals(piece.subarray(6, 64), packet.subarray(6, 64));
    assertEquals(piece.subarray(65, perFragment), packet.subarray(65, perFragment));
    assertStrictEquals(piece[64], 44); // the routing header now names the Fragment header
    assertStrictEquals(read16(piece, 4), piece.length - 40);
    assertStrictEquals(piece[perFragment], 60); // what the routing header named before
    const field = read16(piece, perFragment + 2);
    assertStrictEquals(field & 1, i < 2 ? 1 : 0);
    assertEquals([...piece.subarray(perFragment + 4, perFragment + 8)], [0xde, 0xad, 0xbe, 0xef]);
    assertEquals(
      piece.subarray(perFragment + 8),
      packet.subarray(
        perFragment + (field & 0xfff8),
        perFragment + (field & 0xfff8) + piece.length - perFragment - 8,
      ),
    );
  }
  assertEquals(pushAll(new Reassembler(), fragments.reverse()), [packet]);
});

Deno.test("fragment gives all fragments of an IPv6 packet one random identification", () => {
  const packet = buildIPv6({ ...V6, nextHeader: 59, payload: pattern(4000) });
  const ids = new Set<number>();
  for (let i = 0; i < 4; i++) {
    const fragments = fragment(packet, 1280);
    const own = new Set(fragments.map((piece) => new DataView(piece.buffer).getUint32(44)));
    assertStrictEquals(own.size, 1);
    ids.add([...own][0]);
  }
  assert(ids.size > 1, "four fragmentations drew the same identification");
});

Deno.test("Reassembler returns a packet that is not a fragment as is", () => {
  const reassembler = new Reassembler();
  const packets = [
    buildUdp({ ...V4, sourcePort: 1, destinationPort: 2 }),
    buildUdp({ ...V6, sourcePort: 1, destinationPort: 2 }),
    new Uint8Array([0x45, 0]),
    new Uint8Array([0x20, 1, 2]),
  ];
  for (const packet of packets) assertStrictEquals(reassembler.push(packet), packet);
  assertStrictEquals(reassembler.pending, 0);
});

Deno.test("Reassembler returns an IPv6 atomic fragment at once without its Fragment header", () => {
  const udp = buildUdp({ ...V6, sourcePort: 1, destinationPort: 2, payload: pattern(20) });
  const atomic = new Uint8Array(udp.length + 8);
  atomic.set(udp.subarray(0, 40));
  atomic.set([17, 0, 0, 0, 0, 0, 0, 9], 40);
  atomic.set(udp.subarray(40), 48);
  atomic[6] = 44;
  atomic[5] += 8;
  assertEquals(new Reassembler().push(atomic), udp);
});

Deno.test("Reassembler drops a datagram whose fragments overlap, and its later fragments until the timeout", () => {
  const clock = manualClock();
  const reassembler = new Reassembler({ timeoutMs: 1000, now: clock.now });
  const first = v4Fragment({ offset: 0, size: 16, more: true });
  const overlapping = v4Fragment({ offset: 8, size: 16, more: true });
  const last = v4Fragment({ offset: 16, size: 8, more: false });
  assertStrictEquals(reassembler.push(first), undefined);
  assertStrictEquals(reassembler.push(overlapping), undefined);
  assertStrictEquals(reassembler.stats.overlapped, 1);
  assertStrictEquals(reassembler.pending, 0);
  assertStrictEquals(reassembler.bufferedBytes, 0);
  // A complete set arriving while the key is remembered makes nothing.
  assertStrictEquals(reassembler.push(first), undefined);
  assertStrictEquals(reassembler.push(last), undefined);
  clock.advance(1000);
  assertStrictEquals(reassembler.push(first), undefined);
  const payload = new Uint8Array(24);
  payload.set(pattern(16, 0));
  payload.set(pattern(8, 16), 16);
  const whole = buildIPv4({ ...V4, protocol: 17, identification: 1, dontFragment: false, payload });
  assertEquals(reassembler.push(last), whole);
  assertStrictEquals(reassembler.stats.timedOut, 0);
});

Deno.test("Reassembler ignores an exact duplicate fragment and still completes the datagram", () => {
  const whole = v4Fragment({ offset: 0, size: 3000, more: false, id: 4 });
  const [a, b, c] = fragment(whole, 1500);
  const reassembler = new Reassembler();
  assertStrictEquals(reassembler.push(b), undefined);
  assertStrictEquals(reassembler.push(b.slice()), undefined);
  assertStrictEquals(reassembler.push(a), undefined);
  assertStrictEquals(reassembler.stats.duplicates, 1);
  assertStrictEquals(reassembler.stats.overlapped, 0);
  assertEquals(reassembler.push(c), whole);
});

Deno.test("Reassembler drops an incomplete datagram at its timeout", () => {
  const clock = manualClock();
  const reassembler = new Reassembler({ timeoutMs: 500, now: clock.now });
  const whole = buildIPv6({ ...V6, nextHeader: 59, payload: pattern(3000) });
  const [a, b, c] = fragment(whole, 1280);
  reassembler.push(a);
  reassembler.push(b);
  assertStrictEquals(reassembler.pending, 1);
  clock.advance(499);
  assertStrictEquals(reassembler.expire(), 0);
  clock.advance(1);
  // The timeout is checked lazily: c starts a new datagram that lacks a and b.
  assertStrictEquals(reassembler.push(c), undefined);
  assertStrictEquals(reassembler.stats.timedOut, 1);
  assertStrictEquals(reassembler.pending, 1);
  clock.advance(500);
  assertStrictEquals(reassembler.expire(), 1);
  assertStrictEquals(reassembler.pending, 0);
  assertStrictEquals(reassembler.bufferedBytes, 0);
});

Deno.test("Reassembler over maxBytes drops the oldest incomplete datagram first", () => {
  const reassembler = new Reassembler({ maxBytes: 3500 });
  const first = v4Fragment({ offset: 0, size: 3000, more: false, id: 1 });
  const second = v4Fragment({ offset: 0, size: 3000, more: false, id: 2 });
  const one = fragment(first, 1500);
  const two = fragment(second, 1500);
  assertEquals(pushAll(reassembler, [one[0], two[0]]), []);
  assertStrictEquals(reassembler.bufferedBytes, 3000);
  assertStrictEquals(reassembler.stats.evicted, 0);
  assertEquals(pushAll(reassembler, [two[1]]), []);
  assertStrictEquals(reassembler.stats.evicted, 1);
  assertStrictEquals(reassembler.pending, 1);
  assert(reassembler.bufferedBytes <= 3500);
  assertEquals(pushAll(reassembler, [two[2]]), [second]);
  // What is left of the first datagram never completes.
  assertEquals(pushAll(reassembler, one.slice(1)), []);
  assertStrictEquals(reassembler.stats.reassembled, 1);
});

Deno.test("Reassembler drops a datagram with inconsistent fragments", () => {
  const cases: [string, Uint8Array[]][] = [
    ["data past 65535", [v4Fragment({ offset: 65512, size: 16, more: true })]],
    ["a non-last fragment of 12 bytes", [v4Fragment({ offset: 0, size: 12, more: true })]],
    ["two different ends", [
      v4Fragment({ offset: 8, size: 8, more: false }),
      v4Fragment({ offset: 16, size: 8, more: false }),
    ]],
    ["data past the end", [
      v4Fragment({ offset: 8, size: 8, more: false }),
      v4Fragment({ offset: 16, size: 8, more: true }),
    ]],
    ["an empty fragment", [v4Fragment({ offset: 8, size: 0, more: true })]],
  ];
  for (const [what, packets] of cases) {
    const reassembler = new Reassembler();
    const rest = [v4Fragment({ offset: 0, size: 8, more: true })];
    assertEquals(pushAll(reassembler, [...packets, ...rest]), [], what);
    assertStrictEquals(reassembler.stats.invalid, 1, what);
    assertStrictEquals(reassembler.bufferedBytes, 0, what);
  }
});

Deno.test("Reassembler ignores an IPv4 fragment with a wrong header checksum on its own", () => {
  const whole = v4Fragment({ offset: 0, size: 3000, more: false, id: 8 });
  const [a, b, c] = fragment(whole, 1500);
  const corrupt = b.slice();
  corrupt[8] ^= 1; // TTL, under the header checksum
  assert(internetChecksum(corrupt.subarray(0, 20)) !== 0);
  const reassembler = new Reassembler();
  assertEquals(pushAll(reassembler, [a, corrupt, c]), []);
  assertStrictEquals(reassembler.stats.malformed, 1);
  assertEquals(reassembler.push(b), whole);
});

Deno.test("Reassembler keeps datagrams with different identifications apart", () => {
  const one = v4Fragment({ offset: 0, size: 3000, more: false, id: 1, seed: 1 });
  const two = v4Fragment({ offset: 0, size: 3000, more: false, id: 2, seed: 2 });
  const a = fragment(one, 1000);
  const b = fragment(two, 1000);
  const interleaved = a.flatMap((piece, i) => [piece, b[i]]);
  assertEquals(pushAll(new Reassembler(), interleaved), [one, two]);
});

Deno.test("Reassembler refuses bad options", () => {
  assertThrows(() => new Reassembler({ timeoutMs: 0 }), RangeError);
  assertThrows(() => new Reassembler({ maxBytes: -1 }), RangeError);
  assertThrows(() => new Reassembler({ now: 5 as unknown as () => number }), TypeError);
  assertThrows(() => new Reassembler().push([1] as unknown as Uint8Array), TypeError);
});

Deno.test("Reassembler forgets the oldest dropped datagram past 4096 remembered", () => {
  const reassembler = new Reassembler();
  for (let id = 0; id <= 4096; id++) {
    reassembler.push(v4Fragment({ offset: 0, size: 16, more: true, id }));
    reassembler.push(v4Fragment({ offset: 8, size: 16, more: true, id }));
  }
  assertStrictEquals(reassembler.stats.overlapped, 4097);
  const whole = v4Fragment({ offset: 0, size: 120, more: false, id: 0 });
  const again = (id: number) => pushAll(reassembler, fragment(withId(whole, id), 68));
  assertEquals(again(0), [whole]);
  assertEquals(again(1), []);
});
