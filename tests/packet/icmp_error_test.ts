import fc from "fast-check";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  buildIcmpEcho,
  buildIcmpError,
  buildIPv4,
  buildIPv6,
  buildTcp,
  buildUdp,
  formatIp,
  type IcmpErrorType,
  parseIp,
  parsePacket,
} from "../../packet/mod.ts";
import { ipv4Bytes, ipv6Bytes, port, uint32 } from "./arbitraries.ts";
import { udpDatagram } from "./samples.ts";

const NUM_RUNS = 300;

/** What an offending packet is, as the test made it, so that the model need not parse it. */
interface Offending {
  packet: Uint8Array;
  family: 4 | 6;
  /** ICMP type when the packet is an unfragmented or first-fragment ICMP message. */
  icmpType?: number;
  fragmentOffset: number;
  /** Bytes the IP header says the packet has (trailing bytes are link padding). */
  ipLength: number;
}

const data = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.integer({ min: 0, max: 1800 }).map((n) => new Uint8Array(n).map((_, i) => i * 7)),
);
// Special addresses are made common: they are what the refusal rules are about.
const v4Address = fc.oneof(
  ipv4Bytes,
  fc.constantFrom(
    [0, 0, 0, 0],
    [127, 0, 0, 1],
    [224, 0, 0, 1],
    [239, 1, 2, 3],
    [240, 0, 0, 1],
    [255, 255, 255, 255],
    [192, 0, 2, 1],
  ).map((bytes) => new Uint8Array(bytes)),
);
const v6Address = fc.oneof(
  ipv6Bytes,
  fc.constantFrom("::", "ff02::1", "ff05::2", "2001:db8::1", "fe80::1")
    .map((text) => parseIp(text)),
);
const padding = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 20 }));

function pad(packet: Uint8Array, extra: Uint8Array): Uint8Array {
  const out = new Uint8Array(packet.length + extra.length);
  out.set(packet);
  out.set(extra, packet.length);
  return out;
}

/** A UDP header whose length says the datagram goes on beyond the first fragment. */
function udpHeaderOfLongerDatagram(): Uint8Array {
  return new Uint8Array([0, 1, 0, 2, 0xff, 0xff, 0, 0]);
}

function icmpBody(type: number, rest: Uint8Array): Uint8Array {
  const body = new Uint8Array(8 + rest.length);
  body[0] = type;
  body.set(rest, 8);
  return body;
}

/** What an offending packet of either family is made from besides its addresses and kind. */
const offendingFields = {
  fragmentOffset: fc.integer({ min: 0, max: 50 }).map((n) => n * 8),
  ports: fc.tuple(port, port),
  sequence: uint32,
  data,
  padding,
};

const offendingV4: fc.Arbitrary<Offending> = fc.record({
  source: v4Address,
  destination: v4Address,
  kind: fc.constantFrom("udp", "tcp", "echo", "icmp", "fragment"),
  icmpType: fc.integer({ min: 0, max: 20 }),
  ...offendingFields,
}).map(
  ({ source, destination, kind, icmpType, fragmentOffset, ports, sequence, data, padding }) => {
    let packet: Uint8Array;
    let type: number | undefined;
    let offset = 0;
    if (kind === "udp" || kind === "tcp" || kind === "echo") {
      const common = { source, destination, payload: data };
      packet = kind === "udp"
        ? buildUdp({ ...common, sourcePort: ports[0], destinationPort: ports[1] })
        : kind === "tcp"
        ? buildTcp({
          ...common,
          sourcePort: ports[0],
          destinationPort: ports[1],
          sequence,
          flags: {},
        })
        : buildIcmpEcho({ ...common, identifier: ports[0], sequence: ports[1] });
      if (kind === "echo") type = 8;
    } else if (kind === "icmp") {
      packet = buildIPv4({ source, destination, protocol: 1, payload: icmpBody(icmpType, data) });
      type = icmpType;
    } else {
      offset = fragmentOffset;
      packet = buildIPv4({
        source,
        destination,
        protocol: 17,
        dontFragment: false,
        moreFragments: true,
        fragmentOffset,
        payload: pad(udpHeaderOfLongerDatagram(), data),
      });
    }
    return {
      packet: pad(packet, padding),
      family: 4 as const,
      icmpType: type,
      fragmentOffset: offset,
      ipLength: packet.length,
    };
  },
);

const offendingV6: fc.Arbitrary<Offending> = fc.record({
  source: v6Address,
  destination: v6Address,
  kind: fc.constantFrom("udp", "tcp", "icmp", "fragment"),
  icmpType: fc.integer({ min: 0, max: 255 }),
  ...offendingFields,
}).map(
  ({ source, destination, kind, icmpType, fragmentOffset, ports, sequence, data, padding }) => {
    let packet: Uint8Array;
    let type: number | undefined;
    let offset = 0;
    if (kind === "udp" || kind === "tcp") {
      const common = { source, destination, sourcePort: ports[0], destinationPort: ports[1] };
      packet = kind === "udp"
        ? buildUdp({ ...common, payload: data })
        : buildTcp({ ...common, sequence, flags: { ack: true }, payload: data });
    } else if (kind === "icmp") {
      packet = buildIPv6({
        source,
        destination,
        nextHeader: 58,
        payload: icmpBody(icmpType, data),
      });
      type = icmpType;
    } else {
      // A Fragment header with "more fragments" set, then UDP (or its data).
      offset = fragmentOffset;
      const header = new Uint8Array([
        17,
        0,
        fragmentOffset >> 8,
        (fragmentOffset & 0xf8) | 1,
        0,
        0,
        0,
        9,
      ]);
      const payload = pad(pad(header, udpHeaderOfLongerDatagram()), data);
      packet = buildIPv6({ source, destination, nextHeader: 44, payload });
    }
    return {
      packet: pad(packet, padding),
      family: 6 as const,
      icmpType: type,
      fragmentOffset: offset,
      ipLength: packet.length,
    };
  },
);

const errorTypeV4 = fc.constantFrom<IcmpErrorType>(
  "destination-unreachable",
  "time-exceeded",
  "fragmentation-needed",
);
const errorTypeV6 = fc.constantFrom<IcmpErrorType>(
  "destination-unreachable",
  "time-exceeded",
  "packet-too-big",
);

/** The model of the refusal rules, read off the test's own description of the packet. */
function mustRefuse(offending: Offending, type: IcmpErrorType): boolean {
  const { packet, family, icmpType, fragmentOffset } = offending;
  if (fragmentOffset !== 0) return true;
  if (family === 4) {
    const source = packet.subarray(12, 16);
    const destination = packet.subarray(16, 20);
    if (icmpType !== undefined && [3, 4, 5, 11, 12].includes(icmpType)) return true;
    if (source[0] === 0 || source[0] === 127 || source[0] >= 224) return true;
    return (destination[0] >= 224 && destination[0] < 240) ||
      destination.every((byte) => byte === 255);
  }
  const source = packet.subarray(8, 24);
  const destination = packet.subarray(24, 40);
  if (icmpType !== undefined && icmpType < 128) return true;
  if (source[0] === 0xff || source.every((byte) => byte === 0)) return true;
  return destination[0] === 0xff && type !== "packet-too-big";
}

const EXPECTED_TYPE: Record<IcmpErrorType, [number, number]> = {
  "destination-unreachable": [3, 1],
  "fragmentation-needed": [3, 2],
  "time-exceeded": [11, 3],
  "packet-too-big": [0, 2],
};
const EXPECTED_CODE: Record<IcmpErrorType, [number, number]> = {
  "destination-unreachable": [1, 3],
  "fragmentation-needed": [4, 0],
  "time-exceeded": [0, 0],
  "packet-too-big": [0, 0],
};

Deno.test("an ICMP error is refused exactly where RFC 1812 and RFC 4443 forbid one", () => {
  const cases = fc.oneof(
    fc.tuple(offendingV4, errorTypeV4, fc.integer({ min: 68, max: 0xffff })),
    fc.tuple(offendingV6, errorTypeV6, fc.integer({ min: 1280, max: 0xffffffff })),
  );
  fc.assert(
    fc.property(cases, ([offending, type, mtu]) => {
      const needsMtu = type === "fragmentation-needed" || type === "packet-too-big";
      const source = offending.family === 4 ? "192.0.2.254" : "2001:db8::fe";
      const build = () =>
        buildIcmpError(offending.packet, { type, source, mtu: needsMtu ? mtu : undefined });
      if (mustRefuse(offending, type)) {
        assertThrows(build, RangeError);
        return;
      }
      const error = build();
      const parsed = parsePacket(error, "ip");
      const v4 = offending.family === 4;
      const index = v4 ? 0 : 1;
      const limit = v4 ? 576 : 1280;
      const header = v4 ? 20 : 40;
      const quoted = Math.min(offending.ipLength, limit - header - 8);
      const ip = v4 ? parsed.ipv4! : parsed.ipv6!;
      assertStrictEquals(ip.source, source);
      assertStrictEquals(
        ip.destination,
        formatIp(offending.packet.subarray(v4 ? 12 : 8, v4 ? 16 : 24)),
      );
      if (v4) {
        assert(parsed.ipv4!.checksumValid);
        assertStrictEquals(error[1], 0xc0);
      }
      const { version, type: icmpType, code, checksumValid } = parsed.icmp!;
      assertEquals({ version, type: icmpType, code, checksumValid }, {
        version: offending.family,
        type: EXPECTED_TYPE[type][index],
        code: EXPECTED_CODE[type][index],
        checksumValid: true,
      });
      assert(error.length <= limit);
      assertStrictEquals(error.length, header + 8 + quoted);
      assertEquals(parsed.payload, offending.packet.subarray(0, quoted));
      const word = new DataView(error.buffer).getUint32(header + 4);
      assertStrictEquals(word, needsMtu ? mtu : 0);
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("an ICMP error quoting a big packet fills exactly 576 bytes (IPv4) or 1280 (IPv6)", () => {
  for (
    const [source, destination, router] of [
      ["192.0.2.1", "198.51.100.7", "192.0.2.254"],
      ["2001:db8::1", "2001:db8:1::7", "2001:db8::fe"],
    ]
  ) {
    const datagram = buildUdp({
      source,
      destination,
      sourcePort: 1,
      destinationPort: 2,
      payload: new Uint8Array(3000),
    });
    const error = buildIcmpError(datagram, { type: "time-exceeded", source: router });
    assertStrictEquals(error.length, source.includes(":") ? 1280 : 576);
  }
});

Deno.test("an ICMP error does not quote link padding after the IP packet", () => {
  const datagram = udpDatagram("192.0.2.1", "192.0.2.7");
  const padded = pad(datagram, new Uint8Array(18).fill(0xee));
  const error = buildIcmpError(padded, { type: "destination-unreachable", source: "192.0.2.7" });
  assertEquals(error.subarray(28), datagram);
});

Deno.test("an ICMPv6 packet-too-big may answer a packet to a multicast group", () => {
  const datagram = udpDatagram("2001:db8::1", "ff0e::1", new Uint8Array(1400));
  const error = buildIcmpError(datagram, {
    type: "packet-too-big",
    mtu: 1280,
    source: "2001:db8::fe",
  });
  assertStrictEquals(parsePacket(error, "ip").icmp?.type, 2);
  assertThrows(
    () => buildIcmpError(datagram, { type: "destination-unreachable", source: "2001:db8::fe" }),
    RangeError,
  );
});

Deno.test("an ICMP error is not made for a non-first IPv6 fragment whose next header is an extension", () => {
  // Destination options (60) after a Fragment header at offset 8: fragment data, not a header.
  const fragment = buildIPv6({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    nextHeader: 44,
    payload: new Uint8Array([60, 0, 0, 8, 0, 0, 0, 1, 6, 5, 0, 0, 0, 0, 0, 0]),
  });
  assertThrows(
    () => buildIcmpError(fragment, { type: "time-exceeded", source: "2001:db8::fe" }),
    RangeError,
  );
});

Deno.test("an ICMP error takes the code asked for and refuses codes the type does not have", () => {
  const v4 = udpDatagram("192.0.2.1", "192.0.2.7");
  const v6 = udpDatagram("2001:db8::1", "2001:db8::7");
  const code = (packet: Uint8Array, options: Parameters<typeof buildIcmpError>[1]) =>
    parsePacket(buildIcmpError(packet, options), "ip").icmp?.code;
  assertStrictEquals(
    code(v4, { type: "destination-unreachable", code: 3, source: "192.0.2.7" }),
    3,
  );
  assertStrictEquals(
    code(v6, { type: "destination-unreachable", code: 4, source: "2001:db8::7" }),
    4,
  );
  assertStrictEquals(code(v6, { type: "time-exceeded", code: 1, source: "2001:db8::7" }), 1);
  assertStrictEquals(
    code(v4, { type: "fragmentation-needed", code: 4, mtu: 1400, source: "192.0.2.7" }),
    4,
  );
  const refused: [Uint8Array, Parameters<typeof buildIcmpError>[1]][] = [
    [v4, { type: "destination-unreachable", code: 4, source: "192.0.2.7" }],
    [v4, { type: "destination-unreachable", code: 16, source: "192.0.2.7" }],
    [v6, { type: "destination-unreachable", code: 9, source: "2001:db8::7" }],
    [v4, { type: "time-exceeded", code: 2, source: "192.0.2.7" }],
    [v6, { type: "packet-too-big", code: 1, mtu: 1280, source: "2001:db8::7" }],
    [v4, { type: "fragmentation-needed", mtu: 67, source: "192.0.2.7" }],
    [v6, { type: "packet-too-big", mtu: 1279, source: "2001:db8::7" }],
  ];
  for (const [packet, options] of refused) {
    assertThrows(() => buildIcmpError(packet, options), RangeError, JSON.stringify(options));
  }
});

Deno.test("an ICMP error refuses types of the other family, a missing MTU and bad arguments", () => {
  const v4 = udpDatagram("192.0.2.1", "192.0.2.7");
  const v6 = udpDatagram("2001:db8::1", "2001:db8::7");
  const refused: [unknown, unknown][] = [
    [v4, { type: "packet-too-big", mtu: 1280, source: "192.0.2.7" }],
    [v6, { type: "fragmentation-needed", mtu: 1280, source: "2001:db8::7" }],
    [v4, { type: "fragmentation-needed", source: "192.0.2.7" }],
    [v6, { type: "packet-too-big", source: "2001:db8::7" }],
    [v4, { type: "time-exceeded", mtu: 1280, source: "192.0.2.7" }],
    [v4, { type: "time-exceeded", source: "2001:db8::7" }],
    [v6, { type: "time-exceeded", source: "192.0.2.7" }],
    [v4, { type: "time-exceeded" }],
    [v4, { type: "redirect", source: "192.0.2.7" }],
    [v4, null],
    [[...v4], { type: "time-exceeded", source: "192.0.2.7" }],
  ];
  for (const [packet, options] of refused) {
    assertThrows(
      // deno-lint-ignore no-explicit-any
      () => buildIcmpError(packet as any, options as any),
      TypeError,
      JSON.stringify(options),
    );
  }
  assertThrows(
    () => buildIcmpError(v4.subarray(0, 25), { type: "time-exceeded", source: "192.0.2.7" }),
    RangeError,
  );
});

Deno.test("an ICMP error answers an echo request but not an ICMP error", () => {
  const echo = buildIcmpEcho({
    source: "192.0.2.1",
    destination: "192.0.2.7",
    identifier: 1,
    sequence: 1,
  });
  const error = buildIcmpError(echo, { type: "time-exceeded", source: "192.0.2.254" });
  assertStrictEquals(parsePacket(error, "ip").icmp?.type, 11);
  assertThrows(
    () => buildIcmpError(error, { type: "time-exceeded", source: "192.0.2.1" }),
    RangeError,
  );
});
