import fc from "fast-check";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  groCoalesce,
  groCoalesceInto,
  GSO_MAX_PACKET_SIZE,
  gsoSplit,
  gsoSplitInto,
  parsePacket,
  parseVirtioNetHeader,
  pseudoHeaderSum,
  type TcpFlags,
  VirtioNetGsoType,
  type VirtioNetHeader,
  VirtioNetHeaderFlag,
} from "../../packet/mod.ts";
import {
  flowOf,
  ipLength,
  offloadHeader,
  partialChecksum,
  patterned,
  refresh,
  superPacket,
  traffic,
  withHopByHop,
  withIdentification,
  withIpv4Options,
  withTcpOptions,
} from "./gso_arbitraries.ts";

const NUM_RUNS = 150;
const BIG_MTU = 65535;

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function read16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 8) | bytes[offset + 1];
}

function write16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 8;
  bytes[offset + 1] = value;
}

/** A data segment of one test flow, with a given IPv4 identification. */
function tcpSegment(options: {
  v6?: boolean;
  sequence: number;
  size: number;
  id?: number;
  flags?: Partial<TcpFlags>;
  acknowledgment?: number;
  window?: number;
  ttl?: number;
  sourcePort?: number;
}): Uint8Array {
  const packet = buildTcp({
    source: options.v6 ? "2001:db8::1" : "192.0.2.1",
    destination: options.v6 ? "2001:db8::2" : "192.0.2.2",
    sourcePort: options.sourcePort ?? 40000,
    destinationPort: 80,
    sequence: options.sequence,
    acknowledgment: options.acknowledgment ?? 7,
    window: options.window,
    ttl: options.ttl,
    flags: options.flags ?? { ack: true },
    payload: patterned(options.size, options.sequence),
  });
  return options.v6 ? packet : withIdentification(packet, options.id ?? 100);
}

/** `count` contiguous segments of `size` bytes, IPv4 ids counting up. */
function tcpStream(count: number, size: number, v6 = false, last = size): Uint8Array[] {
  return Array.from({ length: count }, (_, i) =>
    tcpSegment({
      v6,
      sequence: 1000 + i * size,
      size: i === count - 1 ? last : size,
      id: 100 + i,
    }));
}

function udpDatagram(size: number, id: number, v6 = false, sourcePort = 5000): Uint8Array {
  const packet = buildUdp({
    source: v6 ? "2001:db8::1" : "192.0.2.1",
    destination: v6 ? "2001:db8::2" : "192.0.2.2",
    sourcePort,
    destinationPort: 6000,
    payload: patterned(size, id),
  });
  return v6 ? packet : withIdentification(packet, id);
}

/** Splits every output of groCoalesce back, checking each header. */
function splitAll(outputs: Uint8Array[]): Uint8Array[][] {
  return outputs.map((output) =>
    gsoSplit(output.subarray(10), parseVirtioNetHeader(output), BIG_MTU)
  );
}

function assertValid(packet: Uint8Array): void {
  const parsed = parsePacket(packet, "ip");
  if (parsed.ipv4) {
    assert(parsed.ipv4.checksumValid, "IPv4 header checksum");
    assertStrictEquals(parsed.ipv4.totalLength, packet.length);
  } else {
    assertStrictEquals(parsed.ipv6!.payloadLength, packet.length - 40);
  }
  const transport = parsed.tcp ?? parsed.udp ?? parsed.icmp;
  assert(transport?.checksumValid, "transport checksum");
}

Deno.test("gsoSplit cuts TSO super-packets into valid segments of gsoSize data, cut smaller to fit the MTU", () => {
  fc.assert(
    fc.property(superPacket(6), (input) => {
      const { packet, header, payload, mtu } = input;
      const segments = gsoSplit(packet, header, mtu);
      const size = Math.min(header.gsoSize, mtu - header.headerLength);
      assertStrictEquals(segments.length, Math.ceil(payload.length / size));
      const datas: Uint8Array[] = [];
      let sequence = input.sequence;
      segments.forEach((segment, i) => {
        const first = i === 0;
        const last = i === segments.length - 1;
        assertValid(segment);
        assert(segment.length <= mtu, "segment fits the MTU");
        const parsed = parsePacket(segment, "ip");
        const tcp = parsed.tcp!;
        assertStrictEquals(parsed.payload.length, last ? payload.length - i * size : size);
        assertStrictEquals(tcp.sequence, sequence);
        sequence = (sequence + parsed.payload.length) >>> 0;
        assertStrictEquals(tcp.acknowledgment, parsePacket(packet, "ip").tcp!.acknowledgment);
        assertStrictEquals(tcp.flags.fin, last && (input.flags.fin ?? false));
        assertStrictEquals(tcp.flags.psh, last && (input.flags.psh ?? false));
        assertStrictEquals(tcp.flags.cwr, first && (input.flags.cwr ?? false));
        assertStrictEquals(tcp.flags.ack, input.flags.ack ?? false);
        assertStrictEquals(tcp.flags.ece, input.flags.ece ?? false);
        assertStrictEquals(
          segment.length - parsed.payload.length,
          header.headerLength,
          "headers and options repeated",
        );
        if (parsed.ipv4) {
          assertStrictEquals(parsed.ipv4.identification, (input.identification + i) & 0xffff);
        }
        datas.push(parsed.payload);
      });
      assertEquals(concat(datas), payload);
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("gsoSplit cuts USO super-packets into valid datagrams of gsoSize data", () => {
  fc.assert(
    fc.property(superPacket(17), (input) => {
      const { packet, header, payload, mtu } = input;
      const segments = gsoSplit(packet, header, mtu);
      assertStrictEquals(segments.length, Math.ceil(payload.length / header.gsoSize));
      const datas = segments.map((segment, i) => {
        assertValid(segment);
        assert(segment.length <= mtu, "datagram fits the MTU");
        const parsed = parsePacket(segment, "ip");
        const last = i === segments.length - 1;
        assertStrictEquals(
          parsed.payload.length,
          last ? payload.length - i * header.gsoSize : header.gsoSize,
        );
        assertStrictEquals(parsed.udp!.length, 8 + parsed.payload.length);
        if (parsed.ipv4) {
          assertStrictEquals(parsed.ipv4.identification, (input.identification + i) & 0xffff);
        }
        return parsed.payload;
      });
      assertEquals(concat(datas), payload);
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("gsoSplit refuses a USO super-packet whose datagrams exceed the MTU", () => {
  fc.assert(
    fc.property(superPacket(17), ({ packet, header, payload }) => {
      const datagram = header.headerLength + Math.min(header.gsoSize, payload.length);
      assertThrows(() => gsoSplit(packet, header, datagram - 1), RangeError);
    }),
    { numRuns: 50 },
  );
});

Deno.test("gsoSplit completes the partial checksum of a GSO_NONE packet", () => {
  const packets = fc.oneof(
    fc.record({ v6: fc.boolean(), size: fc.nat(3000), seq: fc.nat() }).map(({ v6, size, seq }) =>
      tcpSegment({ v6, size, sequence: seq, flags: { ack: true, psh: true } })
    ),
    fc.record({ v6: fc.boolean(), size: fc.nat(3000), id: fc.nat(0xffff) }).map((
      { v6, size, id },
    ) => udpDatagram(size, id, v6)),
  );
  fc.assert(
    fc.property(packets, (packet) => {
      const header = { ...offloadHeader(packet, 0), gsoType: VirtioNetGsoType.NONE, gsoSize: 0 };
      const [whole, ...rest] = gsoSplit(partialChecksum(packet), header, 1500);
      assertStrictEquals(rest.length, 0);
      assertValid(whole);
      const field = header.checksumStart + header.checksumOffset;
      // TCP may carry a zero checksum as 0xffff; both verify.
      const expected = read16(packet, field) || 0xffff;
      assertStrictEquals(read16(whole, field), expected);
      write16(whole, field, read16(packet, field));
      assertEquals(whole, packet);
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("groCoalesce then gsoSplit gives back every packet, each flow in its order", () => {
  fc.assert(
    fc.property(traffic, (packets) => {
      const outputs = groCoalesce(packets);
      const splits = splitAll(outputs);
      outputs.forEach((output, i) => {
        const header = parseVirtioNetHeader(output);
        const ip = output.subarray(10);
        assert(ip.length <= GSO_MAX_PACKET_SIZE);
        assertStrictEquals(ipLength(ip), ip.length);
        if (header.gsoType === VirtioNetGsoType.NONE) {
          assertEquals([...output.subarray(0, 10)], new Array(10).fill(0));
          return;
        }
        assert(splits[i].length >= 2, "a super-packet holds several packets");
        assertStrictEquals(header.flags, VirtioNetHeaderFlag.NEEDS_CSUM);
        assertStrictEquals(header.checksumStart, ip[0] >> 4 === 4 ? 20 : 40);
        assertStrictEquals(header.gsoSize, parsePacket(splits[i][0], "ip").payload.length);
        // Completing the partial checksum as the kernel would makes it whole.
        const [completed] = gsoSplit(ip, { ...header, gsoType: VirtioNetGsoType.NONE }, BIG_MTU);
        assertValid(completed);
      });
      const flat = splits.flat();
      assertStrictEquals(flat.length, packets.length);
      const byFlow = (list: Uint8Array[]) => {
        const flows = new Map<string, Uint8Array[]>();
        for (const packet of list) {
          const flow = flowOf(packet);
          flows.set(flow, [...flows.get(flow) ?? [], packet]);
        }
        return flows;
      };
      assertEquals(byFlow(flat), byFlow(packets));
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("groCoalesce merges a TCP stream into one super-packet with the header a write needs", () => {
  for (const v6 of [false, true]) {
    const packets = tcpStream(4, 1000, v6, 300);
    packets[3] = tcpSegment({
      v6,
      sequence: 4000,
      size: 300,
      id: 103,
      flags: { ack: true, psh: true },
    });
    const outputs = groCoalesce(packets);
    assertStrictEquals(outputs.length, 1);
    const header = parseVirtioNetHeader(outputs[0]);
    const ipHeader = v6 ? 40 : 20;
    assertEquals(header, {
      flags: VirtioNetHeaderFlag.NEEDS_CSUM,
      gsoType: v6 ? VirtioNetGsoType.TCPV6 : VirtioNetGsoType.TCPV4,
      headerLength: ipHeader + 20,
      gsoSize: 1000,
      checksumStart: ipHeader,
      checksumOffset: 16,
    });
    const ip = outputs[0].subarray(10);
    const parsed = parsePacket(ip, "ip");
    assertStrictEquals(ip.length, ipHeader + 20 + 3300);
    assertStrictEquals(parsed.tcp!.sequence, 1000);
    assert(parsed.tcp!.flags.psh, "PSH of the last segment");
    assertEquals(parsed.payload, concat(packets.map((p) => p.subarray(ipHeader + 20))));
    if (!v6) {
      assert(parsed.ipv4!.checksumValid);
      assertStrictEquals(parsed.ipv4!.identification, 100);
    }
    const sum = pseudoHeaderSum({
      source: ip.subarray(v6 ? 8 : 12, v6 ? 24 : 16),
      destination: ip.subarray(v6 ? 24 : 16, v6 ? 40 : 20),
      protocol: 6,
      length: 20 + 3300,
    });
    assertStrictEquals(read16(ip, ipHeader + 16), sum % 0xffff || 0xffff);
    assertEquals(splitAll(outputs)[0], packets);
  }
});

Deno.test("groCoalesce merges UDP datagrams of one flow into a UDP_L4 super-packet", () => {
  for (const v6 of [false, true]) {
    const packets = [udpDatagram(500, 1, v6), udpDatagram(500, 2, v6), udpDatagram(20, 3, v6)];
    const outputs = groCoalesce(packets);
    assertStrictEquals(outputs.length, 1);
    const header = parseVirtioNetHeader(outputs[0]);
    const ipHeader = v6 ? 40 : 20;
    assertEquals(header, {
      flags: VirtioNetHeaderFlag.NEEDS_CSUM,
      gsoType: VirtioNetGsoType.UDP_L4,
      headerLength: ipHeader + 8,
      gsoSize: 500,
      checksumStart: ipHeader,
      checksumOffset: 6,
    });
    assertStrictEquals(parsePacket(outputs[0].subarray(10), "ip").udp!.length, 8 + 1020);
    assertEquals(splitAll(outputs)[0], packets);
  }
});

Deno.test("groCoalesce puts at most 64 datagrams in a UDP super-packet", () => {
  const packets = Array.from({ length: 130 }, (_, i) => udpDatagram(10, i));
  const outputs = groCoalesce(packets);
  assertEquals(outputs.map((o) => splitAll([o])[0].length), [64, 64, 2]);
});

Deno.test("groCoalesce keeps super-packets within 65535 bytes of IP", () => {
  const packets = tcpStream(100, 1400, true);
  const outputs = groCoalesce(packets);
  for (const output of outputs) assert(output.length - 10 <= GSO_MAX_PACKET_SIZE);
  // 40 + 20 + 46 * 1400 = 64460 is the most that fits.
  assertEquals(splitAll(outputs).map((s) => s.length), [46, 46, 8]);
  assertEquals(splitAll(outputs).flat(), packets);
});

Deno.test("groCoalesce sends a single packet alone with an all-zero header", () => {
  const packet = tcpSegment({ sequence: 1, size: 10 });
  const [output, ...rest] = groCoalesce([packet]);
  assertStrictEquals(rest.length, 0);
  assertEquals([...output.subarray(0, 10)], new Array(10).fill(0));
  assertEquals(output.subarray(10), packet);
  assertEquals(groCoalesce([]), []);
});

Deno.test("groCoalesce starts a new super-packet after a smaller segment or a push", () => {
  const shortFirst = [
    tcpSegment({ sequence: 0, size: 100, id: 1 }),
    tcpSegment({ sequence: 100, size: 50, id: 2 }),
    tcpSegment({ sequence: 150, size: 100, id: 3 }),
    tcpSegment({ sequence: 250, size: 100, id: 4 }),
  ];
  assertEquals(splitAll(groCoalesce(shortFirst)).map((s) => s.length), [2, 2]);
  const pushed = [
    tcpSegment({ sequence: 0, size: 100, id: 1 }),
    tcpSegment({ sequence: 100, size: 100, id: 2, flags: { ack: true, psh: true } }),
    tcpSegment({ sequence: 200, size: 100, id: 3 }),
  ];
  assertEquals(splitAll(groCoalesce(pushed)).map((s) => s.length), [2, 1]);
  const larger = [
    tcpSegment({ sequence: 0, size: 100, id: 1 }),
    tcpSegment({ sequence: 100, size: 101, id: 2 }),
  ];
  assertStrictEquals(groCoalesce(larger).length, 2);
});

Deno.test("groCoalesce keeps apart segments whose headers differ beyond what a split rewrites", () => {
  const base = { sequence: 0, size: 100, id: 1 };
  const next = { sequence: 100, size: 100, id: 2 };
  const cases: [string, Uint8Array, Uint8Array][] = [
    ["sequence gap", tcpSegment(base), tcpSegment({ ...next, sequence: 101 })],
    ["identification gap", tcpSegment(base), tcpSegment({ ...next, id: 3 })],
    ["acknowledgment", tcpSegment(base), tcpSegment({ ...next, acknowledgment: 8 })],
    ["window", tcpSegment(base), tcpSegment({ ...next, window: 100 })],
    ["TTL", tcpSegment(base), tcpSegment({ ...next, ttl: 3 })],
    ["flags", tcpSegment(base), tcpSegment({ ...next, flags: { ack: true, ece: true } })],
    [
      "CWR after the first",
      tcpSegment(base),
      tcpSegment({ ...next, flags: { ack: true, cwr: true } }),
    ],
    [
      "options",
      withTcpOptions(tcpSegment(base), new Uint8Array([1, 1, 1, 0])),
      withTcpOptions(tcpSegment(next), new Uint8Array([1, 1, 1, 1])),
    ],
  ];
  for (const [what, first, second] of cases) {
    assertStrictEquals(groCoalesce([first, second]).length, 2, what);
  }
  const tos = tcpSegment(next);
  tos[1] = 0x10;
  refresh(tos);
  assertStrictEquals(groCoalesce([tcpSegment(base), tos]).length, 2, "TOS");
  const fragmentable = tcpSegment(next);
  fragmentable[6] = 0; // DF clear
  refresh(fragmentable);
  assertStrictEquals(groCoalesce([tcpSegment(base), fragmentable]).length, 2, "DF");
});

Deno.test("groCoalesce sends SYN, FIN, RST, URG and empty segments alone", () => {
  for (const flags of [{ syn: true }, { fin: true }, { rst: true }, { urg: true }]) {
    const packets = [
      tcpSegment({ sequence: 0, size: 100, id: 1, flags: { ack: true, ...flags } }),
      tcpSegment({ sequence: 100, size: 100, id: 2, flags: { ack: true, ...flags } }),
    ];
    assertStrictEquals(groCoalesce(packets).length, 2, JSON.stringify(flags));
  }
  const acks = [
    tcpSegment({ sequence: 0, size: 0, id: 1 }),
    tcpSegment({ sequence: 0, size: 0, id: 2 }),
  ];
  assertStrictEquals(groCoalesce(acks).length, 2);
});

Deno.test("groCoalesce marks a super-packet whose first segment has CWR with the ECN bit", () => {
  const packets = [
    tcpSegment({ sequence: 0, size: 100, id: 1, flags: { ack: true, cwr: true } }),
    tcpSegment({ sequence: 100, size: 100, id: 2 }),
  ];
  const outputs = groCoalesce(packets);
  assertStrictEquals(outputs.length, 1);
  assertStrictEquals(
    parseVirtioNetHeader(outputs[0]).gsoType,
    VirtioNetGsoType.TCPV4 | VirtioNetGsoType.ECN,
  );
  assertEquals(splitAll(outputs)[0], packets);
});

Deno.test("groCoalesce sends alone what a split could not give back byte for byte", () => {
  const pair = (transform: (packet: Uint8Array) => Uint8Array) => [
    transform(tcpSegment({ sequence: 0, size: 100, id: 1 })),
    transform(tcpSegment({ sequence: 100, size: 100, id: 2 })),
  ];
  const badChecksum = (packet: Uint8Array) => {
    packet[packet.length - 1] ^= 1;
    return packet;
  };
  assertStrictEquals(groCoalesce(pair(badChecksum)).length, 2, "wrong TCP checksum");
  assertStrictEquals(groCoalesce(pair(withIpv4Options)).length, 2, "IPv4 options");
  const v6 = [
    withHopByHop(tcpSegment({ v6: true, sequence: 0, size: 100 })),
    withHopByHop(tcpSegment({ v6: true, sequence: 100, size: 100 })),
  ];
  assertStrictEquals(groCoalesce(v6).length, 2, "IPv6 extension header");
  const noChecksum = [udpDatagram(10, 1), udpDatagram(10, 2)].map((packet) => {
    write16(packet, 26, 0);
    return packet;
  });
  assertStrictEquals(groCoalesce(noChecksum).length, 2, "UDP without checksum");
  const fragments = [udpDatagram(10, 1), udpDatagram(10, 2)].map((packet) => {
    packet[6] |= 0x20; // more fragments
    return refresh(packet);
  });
  assertStrictEquals(groCoalesce(fragments).length, 2, "fragments");
  assertEquals(splitAll(groCoalesce(fragments)).flat(), fragments);
});

Deno.test("groCoalesce merges interleaved flows and orders outputs by their first packet", () => {
  const a = tcpStream(3, 100);
  const b = [1, 2, 3].map((i) => udpDatagram(50, i, true));
  const ping = buildIcmpEcho({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    identifier: 1,
    sequence: 1,
  });
  const outputs = groCoalesce([a[0], b[0], ping, a[1], b[1], a[2], b[2]]);
  assertEquals(splitAll(outputs), [a, b, [ping]]);
});

Deno.test("groCoalesce never lets a segment jump ahead of another packet of its flow", () => {
  const ack = tcpSegment({ sequence: 200, size: 0, id: 3 });
  const packets = [
    tcpSegment({ sequence: 0, size: 100, id: 1 }),
    tcpSegment({ sequence: 100, size: 100, id: 2 }),
    ack,
    tcpSegment({ sequence: 200, size: 100, id: 4 }),
  ];
  assertEquals(splitAll(groCoalesce(packets)).flat(), packets);
  assertStrictEquals(groCoalesce(packets).length, 3);
});

Deno.test("groCoalesce refuses what is not an array of Uint8Arrays", () => {
  assertThrows(() => groCoalesce(new Uint8Array(20) as never), TypeError);
  assertThrows(() => groCoalesce([new Uint8Array(20), "x" as never]), TypeError);
});

Deno.test("gsoSplit cuts TSO data smaller when gsoSize would exceed the MTU", () => {
  const superPacket = partialChecksum(
    withIdentification(tcpSegment({ sequence: 0, size: 4000, flags: { ack: true } }), 0xfffe),
  );
  const segments = gsoSplit(superPacket, offloadHeader(superPacket, 1448), 1000);
  assertEquals(segments.map((s) => s.length), [1000, 1000, 1000, 1000, 200]);
  assertEquals(
    segments.map((s) => parsePacket(s, "ip").ipv4!.identification),
    [0xfffe, 0xffff, 0, 1, 2],
  );
  segments.forEach(assertValid);
});

Deno.test("gsoSplit wraps the TCP sequence number around 2^32", () => {
  const superPacket = tcpSegment({ v6: true, sequence: 0xffffff00, size: 512 });
  const segments = gsoSplit(superPacket, offloadHeader(superPacket, 256), 1500);
  assertEquals(segments.map((s) => parsePacket(s, "ip").tcp!.sequence), [
    0xffffff00,
    0xffffff00 + 256 - 0x100000000,
  ]);
});

Deno.test("gsoSplit repeats IPv6 extension headers and TCP options in every segment", () => {
  const packet = withHopByHop(
    withTcpOptions(tcpSegment({ v6: true, sequence: 5, size: 300 }), new Uint8Array([1, 1, 1, 0])),
  );
  const at = { transport: 48, protocol: 6 };
  const segments = gsoSplit(partialChecksum(packet, at), offloadHeader(packet, 100, at), 1500);
  assertStrictEquals(segments.length, 3);
  for (const segment of segments) {
    assertValid(segment);
    assertEquals(segment.subarray(40, 48), packet.subarray(40, 48));
    assertEquals(segment.subarray(68, 72), new Uint8Array([1, 1, 1, 0]));
  }
});

Deno.test("gsoSplit completes a UDP checksum that sums to zero as 0xffff", () => {
  // With the last data word equal to the checksum of the datagram without
  // it, the full checksum comes out 0, which UDP sends as 0xffff.
  const zeroed = buildUdp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 1,
    destinationPort: 2,
    payload: new Uint8Array(2),
  });
  const packet = zeroed.slice();
  write16(packet, 28, read16(zeroed, 26));
  refresh(packet);
  assertStrictEquals(read16(packet, 26), 0xffff);
  const header = { ...offloadHeader(packet, 0), gsoType: VirtioNetGsoType.NONE };
  const [whole] = gsoSplit(partialChecksum(packet), header, 1500);
  assertEquals(whole, packet);
});

Deno.test("gsoSplit returns a copy of a plain packet, even one larger than the MTU", () => {
  const packet = tcpSegment({ sequence: 0, size: 2000 });
  const [copy] = gsoSplit(packet, parseVirtioNetHeader(new Uint8Array(10)), 1500);
  assertEquals(copy, packet);
  assert(copy.buffer !== packet.buffer, "a new array");
  const input = partialChecksum(packet);
  const before = input.slice();
  gsoSplit(input, offloadHeader(input, 1000), 1500);
  assertEquals(input, before, "the input is left alone");
});

Deno.test("gsoSplit accepts a headerLength hint shorter or longer than the headers", () => {
  const packet = partialChecksum(tcpSegment({ sequence: 0, size: 3000 }));
  const header = offloadHeader(packet, 1000);
  const expected = gsoSplit(packet, header, 1500);
  assertEquals(gsoSplit(packet, { ...header, headerLength: 0 }, 1500), expected);
  assertEquals(gsoSplit(packet, { ...header, headerLength: 1040 }, 1500), expected);
});

Deno.test("gsoSplit refuses headers that do not match the packet", () => {
  const tcp4 = partialChecksum(tcpSegment({ sequence: 0, size: 3000 }));
  const tcp6 = partialChecksum(tcpSegment({ v6: true, sequence: 0, size: 3000 }));
  const udp4 = partialChecksum(udpDatagram(3000, 1));
  const good = offloadHeader(tcp4, 1000);
  const cases: [string, Uint8Array, Partial<VirtioNetHeader>, RegExp][] = [
    ["gso_size 0", tcp4, { gsoSize: 0 }, /gsoSize is 0 for a TCPV4 packet/],
    ["no NEEDS_CSUM", tcp4, { flags: 0 }, /must have the NEEDS_CSUM flag/],
    ["hdr_len too long", tcp4, { headerLength: 3041 }, /headerLength 3041 exceeds/],
    [
      "csum_start",
      tcp4,
      { checksumStart: 24 },
      /checksumStart is 24, the transport header is at 20/,
    ],
    ["csum_offset", tcp4, { checksumOffset: 6 }, /checksumOffset is 6, the TCP checksum is at 16/],
    ["TCPV4 on IPv6", tcp6, { checksumStart: 40 }, /a TCPV4 packet holds IPv6/],
    ["TCPV6 on IPv4", tcp4, { gsoType: VirtioNetGsoType.TCPV6 }, /a TCPV6 packet holds IPv4/],
    ["UDP_L4 on TCP", tcp4, { gsoType: VirtioNetGsoType.UDP_L4 }, /carries IP protocol 6, not 17/],
    ["UFO", udp4, { gsoType: VirtioNetGsoType.UDP }, /GSO type UDP is not supported/],
    ["unknown type", tcp4, { gsoType: 2 }, /GSO type 2 is not supported/],
    [
      "ECN on UDP_L4",
      udp4,
      { gsoType: VirtioNetGsoType.UDP_L4 | VirtioNetGsoType.ECN, checksumOffset: 6 },
      /ECN bit is set on a UDP_L4 packet/,
    ],
    ["ECN alone", tcp4, { gsoType: VirtioNetGsoType.ECN }, /ECN bit is set without a TCP GSO type/],
    ["csum beyond the end", tcp4, { gsoType: 0, checksumStart: 3039 }, /lies beyond the packet/],
  ];
  for (const [what, packet, change, message] of cases) {
    assertThrows(() => gsoSplit(packet, { ...good, ...change }, 1500), {
      name: "RangeError",
      message,
    }, what);
  }
});

Deno.test("gsoSplit refuses malformed packets", () => {
  const header = (packet: Uint8Array) => offloadHeader(packet, 1000);
  const tcp4 = partialChecksum(tcpSegment({ sequence: 0, size: 3000 }));
  const truncated = tcp4.subarray(0, 1000);
  assertThrows(() => gsoSplit(truncated, header(truncated), 1500), {
    name: "RangeError",
    message: /the IPv4 total length is 3040, the packet has 1000 bytes/,
  });
  const fragment = tcp4.slice();
  fragment[6] |= 0x20;
  assertThrows(() => gsoSplit(fragment, header(fragment), 1500), /IP fragment/);
  const syn = partialChecksum(tcpSegment({ sequence: 0, size: 3000, flags: { syn: true } }));
  assertThrows(() => gsoSplit(syn, header(syn), 1500), /SYN or RST/);
  const empty = partialChecksum(tcpSegment({ sequence: 0, size: 0 }));
  assertThrows(() => gsoSplit(empty, header(empty), 1500), /carries no payload/);
  assertThrows(() => gsoSplit(tcp4, header(tcp4), 40), /leave no room for data in 40/);
  const badUdpLength = partialChecksum(udpDatagram(3000, 1));
  write16(badUdpLength, 24, 100);
  assertThrows(() => gsoSplit(badUdpLength, header(badUdpLength), 1500), /the UDP length is 100/);
  assertThrows(
    () => gsoSplit(new Uint8Array([0x70, 0]), { ...header(tcp4), headerLength: 0 }, 1500),
    /unknown IP version 7/,
  );
  assertThrows(() => gsoSplit([] as never, header(tcp4), 1500), TypeError);
  assertThrows(() => gsoSplit(tcp4, null as never, 1500), TypeError);
  assertThrows(() => gsoSplit(tcp4, header(tcp4), "1500" as never), TypeError);
  assertThrows(() => gsoSplit(tcp4, header(tcp4), 0), RangeError);
});

Deno.test("gsoSplitInto writes back to back exactly the packets gsoSplit returns, at any alignment", () => {
  const plain = fc.record({ v6: fc.boolean(), size: fc.nat(3000), seq: fc.nat() }).map((
    { v6, size, seq },
  ) => {
    const packet = tcpSegment({ v6, size, sequence: seq });
    const header = { ...offloadHeader(packet, 0), gsoType: VirtioNetGsoType.NONE, gsoSize: 0 };
    return { packet: partialChecksum(packet), header, mtu: 1500 };
  });
  const cases = fc.oneof(superPacket(6), superPacket(17), plain);
  // Odd starts put the 32-bit words of the checksum at every parity.
  fc.assert(
    fc.property(cases, fc.nat(7), ({ packet, header, mtu }, start) => {
      const expected = gsoSplit(packet, header, mtu);
      const total = expected.reduce((sum, segment) => sum + segment.length, 0);
      const backing = new Uint8Array(start + total + 16).fill(0xee);
      const out = backing.subarray(start);
      const sizes = new Uint32Array(expected.length);
      const count = gsoSplitInto(packet, header, mtu, out, sizes);
      assertStrictEquals(count, expected.length);
      let at = 0;
      expected.forEach((segment, i) => {
        assertStrictEquals(sizes[i], segment.length);
        if (i < count - 1) assertStrictEquals(sizes[i], sizes[0], "one size but the last's");
        assertEquals(out.subarray(at, at + segment.length), segment);
        at += segment.length;
      });
      assert(out.subarray(at).every((byte) => byte === 0xee), "nothing written past the end");
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("gsoSplitInto refuses an out or sizes too small for the split and writes nothing", () => {
  const packet = partialChecksum(tcpSegment({ sequence: 0, size: 3000 }));
  const header = offloadHeader(packet, 1000);
  const out = new Uint8Array(3119);
  const sizes = new Uint32Array(3);
  assertThrows(() => gsoSplitInto(packet, header, 1500, out, sizes), {
    name: "RangeError",
    message: /3 packets of 3120 bytes in all do not fit 3119 bytes/,
  });
  assertThrows(
    () => gsoSplitInto(packet, header, 1500, new Uint8Array(3120), new Uint32Array(2)),
    { name: "RangeError", message: /3 packets do not fit 2 sizes/ },
  );
  assert(out.every((byte) => byte === 0) && sizes.every((size) => size === 0));
  assertThrows(() => gsoSplitInto(packet, header, 1500, [] as never, sizes), TypeError);
  assertStrictEquals(gsoSplitInto(packet, header, 1500, new Uint8Array(3120), sizes), 3);
});

Deno.test("groCoalesceInto writes back to back exactly the buffers groCoalesce returns", () => {
  fc.assert(
    fc.property(traffic, (packets) => {
      const expected = groCoalesce(packets);
      const total = expected.reduce((sum, write) => sum + write.length, 0);
      // Stale bytes everywhere: every header byte must be written, zeros included.
      const out = new Uint8Array(total + 16).fill(0xee);
      const sizes = new Uint32Array(expected.length);
      assertStrictEquals(groCoalesceInto(packets, out, sizes), expected.length);
      let at = 0;
      expected.forEach((write, i) => {
        assertStrictEquals(sizes[i], write.length);
        assertEquals(out.subarray(at, at + write.length), write);
        at += write.length;
      });
      assert(out.subarray(at).every((byte) => byte === 0xee), "nothing written past the end");
      assert(total <= packets.reduce((sum, packet) => sum + packet.length + 10, 0));
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("groCoalesceInto refuses an out or sizes too small for the writes and writes nothing", () => {
  const stream = tcpStream(3, 1000);
  const out = new Uint8Array(10 + 40 + 2999);
  const sizes = new Uint32Array(1);
  assertThrows(() => groCoalesceInto(stream, out, sizes), {
    name: "RangeError",
    message: /1 writes of 3050 bytes in all do not fit 3049 bytes/,
  });
  const alone = [tcpSegment({ sequence: 0, size: 10, flags: { syn: true } }), ...stream];
  assertThrows(() => groCoalesceInto(alone, new Uint8Array(5000), sizes), {
    name: "RangeError",
    message: /2 writes do not fit 1 sizes/,
  });
  assert(out.every((byte) => byte === 0) && sizes[0] === 0);
  assertThrows(() => groCoalesceInto(stream, "out" as never, sizes), TypeError);
  assertThrows(() => groCoalesceInto("packets" as never, out, sizes), TypeError);
  assertStrictEquals(groCoalesceInto(stream, new Uint8Array(3050), sizes), 1);
});

Deno.test("groCoalesce keeps hundreds of interleaved flows apart, each merged whole", () => {
  // More flows than a small table holds: the table grows and probes past collisions.
  const flows = Array.from(
    { length: 300 },
    (_, f) =>
      Array.from(
        { length: 3 },
        (_, i) =>
          tcpSegment({ sequence: 1000 + 100 * i, size: 100, id: 100 + i, sourcePort: 1024 + f }),
      ),
  );
  const interleaved = [0, 1, 2].flatMap((i) => flows.map((flow) => flow[i]));
  const outputs = groCoalesce(interleaved);
  assertStrictEquals(outputs.length, flows.length);
  assertEquals(splitAll(outputs), flows);
  const sizes = new Uint32Array(flows.length);
  const out = new Uint8Array(interleaved.reduce((sum, packet) => sum + packet.length + 10, 0));
  assertStrictEquals(groCoalesceInto(interleaved, out, sizes), flows.length);
  assertEquals(out.subarray(0, outputs[0].length), outputs[0]);
});

Deno.test("groCoalesce tells apart flows whose addresses and ports differ only in order", () => {
  const forward = tcpStream(2, 100);
  // The same addresses and ports the other way round: another flow.
  const reverse = forward.map((packet) => {
    const copy = packet.slice();
    copy.set(packet.subarray(16, 20), 12);
    copy.set(packet.subarray(12, 16), 16);
    copy.set(packet.subarray(22, 24), 20);
    copy.set(packet.subarray(20, 22), 22);
    return refresh(copy);
  });
  const outputs = groCoalesce([forward[0], reverse[0], forward[1], reverse[1]]);
  assertEquals(splitAll(outputs), [forward, reverse]);
});

Deno.test("groCoalesce gives the same writes after a call that threw half way", () => {
  const packets = [...tcpStream(3, 100), ...[1, 2].map((i) => udpDatagram(50, i))];
  const before = groCoalesce(packets);
  assertThrows(() => groCoalesce([...packets, "x" as never]), TypeError);
  assertThrows(() => groCoalesceInto(packets, new Uint8Array(10), new Uint32Array(8)), RangeError);
  assertEquals(groCoalesce(packets), before);
  const out = new Uint8Array(4096);
  const sizes = new Uint32Array(8);
  assertStrictEquals(groCoalesceInto(packets, out, sizes), before.length);
  assertEquals(out.subarray(0, sizes[0]), before[0]);
});
