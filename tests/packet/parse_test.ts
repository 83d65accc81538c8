import fc from "fast-check";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  buildEthernet,
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  EtherType,
  internetChecksum,
  type LinkType,
  parsePacket,
} from "../../packet/mod.ts";
import { ethernetFrame, ipPacket } from "./arbitraries.ts";

const NUM_RUNS = 300;

/** Parses, accepting success or a RangeError; anything else fails. */
function parseOrRangeError(bytes: Uint8Array, link: LinkType): string {
  try {
    parsePacket(bytes, link);
    return "ok";
  } catch (error) {
    if (error instanceof RangeError) return error.message;
    throw error;
  }
}

function fixIPv4Checksum(packet: Uint8Array): Uint8Array {
  const headerLength = (packet[0] & 0x0f) * 4;
  packet[10] = packet[11] = 0;
  const checksum = internetChecksum(packet.subarray(0, headerLength));
  packet[10] = checksum >> 8;
  packet[11] = checksum & 0xff;
  return packet;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Inserts IPv6 extension headers (each given as its type and its bytes
 * after the next-header byte) between the IPv6 header and the transport.
 */
function withExtensions(
  packet: Uint8Array,
  headers: [type: number, rest: number[]][],
): Uint8Array {
  const transport = packet[6];
  const parts = [packet.subarray(0, 40)];
  headers.forEach(([, rest], i) => {
    const next = i + 1 < headers.length ? headers[i + 1][0] : transport;
    parts.push(new Uint8Array([next, ...rest]));
  });
  parts.push(packet.subarray(40));
  const out = concat(...parts);
  if (headers.length > 0) out[6] = headers[0][0];
  const payloadLength = out.length - 40;
  out[4] = payloadLength >> 8;
  out[5] = payloadLength & 0xff;
  return out;
}

const udp6 = () =>
  buildUdp({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    sourcePort: 40000,
    destinationPort: 5000,
    payload: new Uint8Array(100).map((_, i) => i),
  });

const udp4 = () =>
  buildUdp({
    source: "192.0.2.1",
    destination: "192.0.2.77",
    sourcePort: 40000,
    destinationPort: 5000,
    payload: new Uint8Array(100).map((_, i) => i),
  });

Deno.test("parsePacket on random bytes returns or throws a RangeError, never anything else", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 120 }),
      fc.constantFrom<LinkType>("ip", "ethernet"),
      (bytes, link) => {
        parseOrRangeError(bytes, link);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("parsePacket on random bytes behind plausible IP and Ethernet headers throws only RangeError", () => {
  const prefixes = [
    [0x45],
    [0x46],
    [0x60],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0x45],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd, 0x60],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x06, 0, 1, 8, 0, 6, 4],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0, 5, 0x08, 0x00],
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...prefixes),
      fc.uint8Array({ maxLength: 120 }),
      (prefix, rest) => {
        const bytes = concat(new Uint8Array(prefix), rest);
        parseOrRangeError(bytes, prefix.length > 3 ? "ethernet" : "ip");
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("every truncation of a valid IP packet throws a RangeError", () => {
  fc.assert(
    fc.property(ipPacket, (packet) => {
      for (let length = 0; length < packet.length; length++) {
        assertThrows(() => parsePacket(packet.subarray(0, length), "ip"), RangeError);
      }
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("every truncation of a valid Ethernet frame throws a RangeError", () => {
  fc.assert(
    fc.property(ethernetFrame, (frame) => {
      for (let length = 0; length < frame.length; length++) {
        assertThrows(() => parsePacket(frame.subarray(0, length), "ethernet"), RangeError);
      }
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("parsePacket never reads outside its view: a view inside a larger buffer parses like a copy", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        ipPacket.map((bytes) => ({ bytes, link: "ip" as const })),
        ethernetFrame.map((bytes) => ({ bytes, link: "ethernet" as const })),
      ),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat({ max: 200 }),
      fc.uint8Array({ minLength: 64, maxLength: 64 }),
      ({ bytes, link }, mutations, cut, junk) => {
        // Mutate and cut a valid packet so parsing goes deep, then wrap it
        // in junk that an out-of-bounds read would pick up.
        const packet = bytes.slice(0, Math.max(0, bytes.length - cut % 8));
        for (const [at, value] of mutations) {
          if (packet.length > 0) packet[at % packet.length] = value;
        }
        const host = concat(junk, packet, junk);
        const view = host.subarray(junk.length, junk.length + packet.length);
        const outcome = (b: Uint8Array) => {
          try {
            const result = parsePacket(b, link);
            return { ...result, payload: [...result.payload] };
          } catch (error) {
            assert(error instanceof RangeError, String(error));
            return error.message;
          }
        };
        assertEquals(outcome(view), outcome(packet));
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("a truncated IPv4 header in an Ethernet frame names the layer, offset and byte counts", () => {
  const frame = new Uint8Array(22);
  frame[12] = 0x08;
  frame[14] = 0x45;
  assertThrows(() => parsePacket(frame, "ethernet"), {
    name: "RangeError",
    message: "Truncated IPv4 header at offset 14: need 20 bytes, have 8",
  });
  assertThrows(() => parsePacket(new Uint8Array(0), "ip"), {
    name: "RangeError",
    message: "Truncated IP header at offset 0: need 1 byte, have 0",
  });
  assertThrows(() => parsePacket(new Uint8Array(10), "ethernet"), {
    name: "RangeError",
    message: "Truncated Ethernet header at offset 0: need 14 bytes, have 10",
  });
});

Deno.test("inconsistent headers throw a RangeError naming the layer and offset", () => {
  const cases: [string, Uint8Array, LinkType, RegExp][] = [];
  cases.push([
    "IP version 5",
    new Uint8Array([0x55, 0, 0, 20]),
    "ip",
    /IP header at offset 0: unknown IP version 5/,
  ]);
  const ihl = udp4();
  ihl[0] = 0x44;
  cases.push([
    "IHL below 5",
    ihl,
    "ip",
    /IPv4 header at offset 0: header length 16 is less than 20/,
  ]);
  const total = udp4();
  total[2] = 0;
  total[3] = 10;
  cases.push([
    "total length below header",
    total,
    "ip",
    /total length 10 is less than header length 20/,
  ]);
  const udpLength = udp4();
  udpLength[24] = 0;
  udpLength[25] = 4;
  cases.push([
    "UDP length below 8",
    udpLength,
    "ip",
    /UDP header at offset 20: length 4 is less than 8/,
  ]);
  const udpLong = udp4();
  udpLong[24] = 0xff;
  cases.push([
    "UDP length beyond the IP payload",
    udpLong,
    "ip",
    /Truncated UDP datagram at offset 20/,
  ]);
  const tcp = buildTcp({
    source: "::1",
    destination: "::2",
    sourcePort: 1,
    destinationPort: 2,
    sequence: 0,
    flags: {},
  });
  tcp[52] = 0x40;
  cases.push([
    "TCP data offset below 5",
    tcp,
    "ip",
    /TCP header at offset 40: data offset 16 is less than 20/,
  ]);
  const tcpLong = buildTcp({
    source: "::1",
    destination: "::2",
    sourcePort: 1,
    destinationPort: 2,
    sequence: 0,
    flags: {},
  });
  tcpLong[52] = 0xf0;
  cases.push([
    "TCP data offset beyond the segment",
    tcpLong,
    "ip",
    /Truncated TCP header at offset 40: need 60 bytes, have 20/,
  ]);
  const mislabelled = buildEthernet({
    destination: "02:00:00:00:00:02",
    source: "02:00:00:00:00:01",
    etherType: EtherType.IPV4,
    payload: udp6(),
  });
  cases.push([
    "EtherType IPv4 carrying IPv6",
    mislabelled,
    "ethernet",
    /IPv4 header at offset 14: version is 6, expected 4/,
  ]);
  const v6long = udp6();
  v6long[4] = 0xff;
  cases.push([
    "IPv6 payload length beyond the packet",
    v6long,
    "ip",
    /Truncated IPv6 packet at offset 0/,
  ]);
  const badExtension = withExtensions(udp6(), [[60, [200, 0, 0, 0, 0, 0, 0]]]);
  cases.push([
    "extension header beyond the payload",
    badExtension,
    "ip",
    /Truncated IPv6 destination options header at offset 40: need 1608 bytes/,
  ]);
  for (const [what, bytes, link, message] of cases) {
    assertThrows(() => parsePacket(bytes, link), { name: "RangeError", message }, what);
  }
});

Deno.test("parsePacket rejects a non-Uint8Array or an unknown link type with a TypeError", () => {
  assertThrows(() => parsePacket([0x45] as unknown as Uint8Array, "ip"), TypeError);
  assertThrows(() => parsePacket(udp4(), "tun" as LinkType), TypeError);
});

Deno.test("the payload is a view into the parsed bytes, not a copy", () => {
  const packet = udp4();
  const { payload } = parsePacket(packet, "ip");
  assertStrictEquals(payload.buffer, packet.buffer);
  assertStrictEquals(payload.byteOffset, packet.byteOffset + 28);
  assertStrictEquals(payload.length, 100);
  packet[28] = 0xee;
  assertStrictEquals(payload[0], 0xee);
});

Deno.test("an Ethernet frame's padding is left out of the IP payload and does not spoil checksums", () => {
  const packet = buildUdp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 1,
    destinationPort: 2,
    payload: new Uint8Array([7, 8]),
  });
  const frame = new Uint8Array(60).fill(0xaa);
  frame.set(buildEthernet({
    destination: "02:00:00:00:00:02",
    source: "02:00:00:00:00:01",
    etherType: EtherType.IPV4,
    payload: packet,
  }));
  const parsed = parsePacket(frame, "ethernet");
  assertEquals([...parsed.payload], [7, 8]);
  assertStrictEquals(parsed.udp?.checksumValid, true);
  assertStrictEquals(parsed.ipv4?.totalLength, 30);
});

Deno.test("802.1Q and stacked 802.1ad tags report the outer VLAN id and the inner EtherType", () => {
  const inner = udp6();
  const tagged = buildEthernet({
    destination: "02:00:00:00:00:02",
    source: "02:00:00:00:00:01",
    etherType: EtherType.IPV6,
    payload: inner,
    vlan: 100,
  });
  const single = parsePacket(tagged, "ethernet");
  assertStrictEquals(single.ethernet?.vlan, 100);
  assertStrictEquals(single.ethernet?.etherType, EtherType.IPV6);
  assertStrictEquals(single.udp?.destinationPort, 5000);
  // Service tag 0x88a8 with id 7, then customer tag 100.
  const stacked = concat(
    tagged.subarray(0, 12),
    new Uint8Array([0x88, 0xa8, 0x00, 0x07]),
    tagged.subarray(12),
  );
  const double = parsePacket(stacked, "ethernet");
  assertStrictEquals(double.ethernet?.vlan, 7);
  assertStrictEquals(double.ethernet?.etherType, EtherType.IPV6);
  assertStrictEquals(double.udp?.checksumValid, true);
});

Deno.test("IPv6 hop-by-hop, routing and destination options headers are walked to the transport", () => {
  const packet = withExtensions(udp6(), [
    [0, [1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], // 16 bytes, PadN
    [60, [0, 1, 4, 0, 0, 0, 0]],
    [43, [0, 4, 0, 0, 0, 0, 0]], // segments left 0: final destination
  ]);
  const parsed = parsePacket(packet, "ip");
  assertStrictEquals(parsed.ipv6?.nextHeader, 17);
  assertStrictEquals(parsed.ipv6?.payloadLength, 108 + 32);
  assertStrictEquals(parsed.ipv6?.headerLength, 40 + 32);
  assertEquals(parsed.udp, {
    offset: 72,
    sourcePort: 40000,
    destinationPort: 5000,
    length: 108,
    checksumValid: true,
  });
  assertStrictEquals(parsed.payload.length, 100);
  assertStrictEquals(parsed.payloadOffset, 80);
});

Deno.test("IPv6 fragments: the first has its transport header parsed, later ones do not", () => {
  const whole = udp6();
  const first = withExtensions(whole.subarray(0, 40 + 48), [[44, [0, 0x00, 0x01, 0, 0, 0, 42]]]);
  const parsedFirst = parsePacket(first, "ip");
  assertStrictEquals(parsedFirst.ipv6?.nextHeader, 17);
  assertStrictEquals(parsedFirst.udp?.length, 108);
  // The checksum covers data that is in the other fragments.
  assertStrictEquals(parsedFirst.udp?.checksumValid, false);
  assertStrictEquals(parsedFirst.payload.length, 40);
  assertEquals(parsedFirst.ipv6?.fragment, { offset: 0, moreFragments: true, identification: 42 });

  const later = withExtensions(whole.subarray(0, 40), [[44, [0, 0x00, 48, 0, 0, 0, 42]]]);
  const rest = concat(later, whole.subarray(40 + 48));
  rest[5] += whole.length - 40 - 48;
  const parsedLater = parsePacket(rest, "ip");
  assertStrictEquals(parsedLater.ipv6?.nextHeader, 17);
  assertStrictEquals(parsedLater.udp, undefined);
  assertEquals(parsedLater.ipv6?.fragment, {
    offset: 48,
    moreFragments: false,
    identification: 42,
  });
  assertEquals([...parsedLater.payload], [...whole.subarray(88)]);
});

Deno.test("IPv4 fragments: offsets are in bytes, and only the first fragment has a transport header", () => {
  const first = udp4().subarray(0, 20 + 48);
  first[2] = 0;
  first[3] = 68;
  first[6] = 0x20; // MF
  fixIPv4Checksum(first);
  const parsedFirst = parsePacket(first, "ip");
  assertStrictEquals(parsedFirst.ipv4?.moreFragments, true);
  assertStrictEquals(parsedFirst.ipv4?.checksumValid, true);
  assertStrictEquals(parsedFirst.udp?.length, 108);
  assertStrictEquals(parsedFirst.udp?.checksumValid, false);

  const later = concat(udp4().subarray(0, 20), udp4().subarray(68));
  later[2] = 0;
  later[3] = later.length;
  later[6] = 0x00;
  later[7] = 6; // 6 units of 8 bytes
  fixIPv4Checksum(later);
  const parsedLater = parsePacket(later, "ip");
  assertStrictEquals(parsedLater.ipv4?.fragmentOffset, 48);
  assertStrictEquals(parsedLater.ipv4?.dontFragment, false);
  assertStrictEquals(parsedLater.udp, undefined);
  assertStrictEquals(parsedLater.payload.length, 60);
});

Deno.test("IPv4 options are skipped using the header length", () => {
  const plain = udp4();
  const packet = concat(plain.subarray(0, 20), new Uint8Array([1, 1, 1, 0]), plain.subarray(20));
  packet[0] = 0x46;
  packet[3] += 4;
  fixIPv4Checksum(packet);
  const parsed = parsePacket(packet, "ip");
  assertStrictEquals(parsed.ipv4?.headerLength, 24);
  assertStrictEquals(parsed.ipv4?.checksumValid, true);
  assertStrictEquals(parsed.udp?.checksumValid, true);
  assertStrictEquals(parsed.payload.length, 100);
});

Deno.test("corrupted bytes show up as checksumValid false on the layer they belong to", () => {
  const v4 = udp4();
  v4[8] -= 1; // TTL: only the IPv4 header checksum covers it
  const parsed = parsePacket(v4, "ip");
  assertStrictEquals(parsed.ipv4?.checksumValid, false);
  assertStrictEquals(parsed.udp?.checksumValid, true);
  const builders = [
    udp4,
    udp6,
    () =>
      buildTcp({
        source: "::1",
        destination: "::2",
        sourcePort: 1,
        destinationPort: 2,
        sequence: 0,
        flags: {},
        payload: new Uint8Array(4),
      }),
    () =>
      buildIcmpEcho({
        source: "::1",
        destination: "::2",
        identifier: 1,
        sequence: 1,
        payload: new Uint8Array(4),
      }),
    () =>
      buildIcmpEcho({
        source: "192.0.2.1",
        destination: "192.0.2.2",
        identifier: 1,
        sequence: 1,
        payload: new Uint8Array(4),
      }),
  ];
  for (const build of builders) {
    const packet = build();
    packet[packet.length - 1] ^= 0x10;
    const { udp, tcp, icmp } = parsePacket(packet, "ip");
    assertStrictEquals((udp ?? tcp ?? icmp)?.checksumValid, false);
  }
});

Deno.test("a zero UDP checksum means none over IPv4 but is invalid over IPv6", () => {
  const v4 = udp4();
  v4[26] = v4[27] = 0;
  assertStrictEquals(parsePacket(v4, "ip").udp?.checksumValid, true);
  const v6 = udp6();
  v6[46] = v6[47] = 0;
  assertStrictEquals(parsePacket(v6, "ip").udp?.checksumValid, false);
});

Deno.test("unknown transports and EtherTypes leave their bytes as the payload", () => {
  const gre = udp6();
  gre[6] = 47;
  const parsed = parsePacket(gre, "ip");
  assertStrictEquals(parsed.ipv6?.nextHeader, 47);
  assertStrictEquals(parsed.udp, undefined);
  assertStrictEquals(parsed.payload.length, 108);
  const icmpOver6 = udp6();
  icmpOver6[6] = 1; // ICMPv4 has no meaning inside IPv6
  assertStrictEquals(parsePacket(icmpOver6, "ip").icmp, undefined);
  const lldp = buildEthernet({
    destination: "01:80:c2:00:00:0e",
    source: "02:00:00:00:00:01",
    etherType: 0x88cc,
    payload: new Uint8Array([1, 2, 3]),
  });
  assertEquals(parsePacket(lldp, "ethernet"), {
    ethernet: {
      offset: 0,
      destination: "01:80:c2:00:00:0e",
      source: "02:00:00:00:00:01",
      etherType: 0x88cc,
    },
    payload: new Uint8Array([1, 2, 3]),
    payloadOffset: 14,
  });
});

Deno.test("ARP other than IPv4 over Ethernet is left unparsed rather than rejected", () => {
  const body = new Uint8Array(8 + 2 * 8 + 2 * 16);
  body.set([0, 1, 0x86, 0xdd, 8, 16, 0, 1]);
  const frame = buildEthernet({
    destination: "ff:ff:ff:ff:ff:ff",
    source: "02:00:00:00:00:01",
    etherType: EtherType.ARP,
    payload: body,
  });
  const parsed = parsePacket(frame, "ethernet");
  assertStrictEquals(parsed.arp, undefined);
  assertStrictEquals(parsed.payload.length, body.length);
});

Deno.test("ICMP messages other than echo carry no identifier or sequence", () => {
  const unreachable = buildIcmpEcho({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    identifier: 0,
    sequence: 0,
  });
  unreachable[20] = 3;
  unreachable[21] = 1;
  unreachable[22] = unreachable[23] = 0;
  const checksum = internetChecksum(unreachable.subarray(20));
  unreachable[22] = checksum >> 8;
  unreachable[23] = checksum & 0xff;
  assertEquals(parsePacket(unreachable, "ip").icmp, {
    offset: 20,
    version: 4,
    type: 3,
    code: 1,
    checksumValid: true,
  });
});
