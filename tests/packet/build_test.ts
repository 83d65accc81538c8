import fc from "fast-check";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  buildArp,
  buildEthernet,
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  EtherType,
  icmpEchoReply,
  internetChecksum,
  type IPv4Layer,
  type IPv6Layer,
  parseIp,
  parsePacket,
  type TcpFlags,
  transportChecksum,
} from "../../packet/mod.ts";
import {
  type AddressPair,
  addressPair,
  ipv4Bytes,
  macBytes,
  payload,
  port,
  tcpFlags,
  ttl,
  uint32,
} from "./arbitraries.ts";

const NUM_RUNS = 300;

/** The IP layer a builder must produce for these inputs. */
function expectedIp(
  pair: AddressPair,
  protocol: number,
  segmentLength: number,
  hops = 64,
): { ipv4: IPv4Layer } | { ipv6: IPv6Layer } {
  if (pair.family === 4) {
    return {
      ipv4: {
        offset: 0,
        source: pair.source,
        destination: pair.destination,
        protocol,
        ttl: hops,
        identification: 0,
        dontFragment: true,
        moreFragments: false,
        fragmentOffset: 0,
        headerLength: 20,
        totalLength: 20 + segmentLength,
        checksumValid: true,
      },
    };
  }
  return {
    ipv6: {
      offset: 0,
      source: pair.source,
      destination: pair.destination,
      nextHeader: protocol,
      hopLimit: hops,
      payloadLength: segmentLength,
      headerLength: 40,
      flowLabel: 0,
      trafficClass: 0,
    },
  };
}

function ipHeaderLength(pair: AddressPair): number {
  return pair.family === 4 ? 20 : 40;
}

/** Well-formed TCP options, as raw bytes, with the first MSS among them. */
const tcpOptionList: fc.Arbitrary<{ bytes: Uint8Array; mss?: number }> = fc
  .array(
    fc.oneof(
      fc.constant([1]),
      fc.integer({ min: 0, max: 0xffff }).map((mss) => [2, 4, mss >> 8, mss & 0xff]),
      fc.integer({ min: 0, max: 14 }).map((shift) => [3, 3, shift]),
      fc.constant([4, 2]),
      fc.tuple(uint32, uint32).map(([value, echo]) => [
        8,
        10,
        ...[value, echo].flatMap((n) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]),
      ]),
    ),
    { maxLength: 6 },
  )
  .filter((options) => options.flat().length <= 40)
  .map((options) => {
    const mss = options.find((option) => option[0] === 2);
    return {
      bytes: Uint8Array.from(options.flat()),
      ...(mss === undefined ? {} : { mss: (mss[2] << 8) | mss[3] }),
    };
  });

Deno.test("buildUdp then parsePacket gives back every field, for IPv4 and IPv6", () => {
  fc.assert(
    fc.property(
      addressPair,
      port,
      port,
      payload,
      fc.option(ttl, { nil: undefined }),
      (pair, sourcePort, destinationPort, data, hops) => {
        const packet = buildUdp({
          source: pair.source,
          destination: pair.destination,
          sourcePort,
          destinationPort,
          payload: data,
          ttl: hops,
        });
        assertEquals(parsePacket(packet, "ip"), {
          ...expectedIp(pair, 17, 8 + data.length, hops),
          udp: {
            offset: ipHeaderLength(pair),
            sourcePort,
            destinationPort,
            length: 8 + data.length,
            checksumValid: true,
          },
          payload: data,
          payloadOffset: ipHeaderLength(pair) + 8,
        });
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("buildTcp then parsePacket gives back every field, for IPv4 and IPv6", () => {
  fc.assert(
    fc.property(
      fc.record({
        pair: addressPair,
        sourcePort: port,
        destinationPort: port,
        sequence: uint32,
        acknowledgment: fc.option(uint32, { nil: undefined }),
        window: fc.option(port, { nil: undefined }),
        flags: tcpFlags,
        data: fc.option(payload, { nil: undefined }),
        hops: fc.option(ttl, { nil: undefined }),
        tcpOptions: fc.option(tcpOptionList, { nil: undefined }),
      }),
      (input) => {
        const { pair, data, hops, tcpOptions, ...fields } = input;
        const packet = buildTcp({
          ...fields,
          source: pair.sourceBytes,
          destination: pair.destinationBytes,
          payload: data,
          ttl: hops,
          options: tcpOptions?.bytes,
        });
        const bytes = data ?? new Uint8Array(0);
        const flags = input.flags;
        // The builder pads the options with zeros to whole words.
        const headerLength = 20 + Math.ceil((tcpOptions?.bytes.length ?? 0) / 4) * 4;
        const options = new Uint8Array(headerLength - 20);
        options.set(tcpOptions?.bytes ?? []);
        const ip = ipHeaderLength(pair);
        assertEquals(parsePacket(packet, "ip"), {
          ...expectedIp(pair, 6, headerLength + bytes.length, hops),
          tcp: {
            offset: ip,
            headerLength,
            options,
            ...(tcpOptions?.mss === undefined ? {} : { mss: tcpOptions.mss }),
            sourcePort: input.sourcePort,
            destinationPort: input.destinationPort,
            sequence: input.sequence,
            acknowledgment: input.acknowledgment ?? 0,
            flags: {
              fin: flags.fin ?? false,
              syn: flags.syn ?? false,
              rst: flags.rst ?? false,
              psh: flags.psh ?? false,
              ack: flags.ack ?? false,
              urg: flags.urg ?? false,
              ece: flags.ece ?? false,
              cwr: flags.cwr ?? false,
            },
            window: input.window ?? 65535,
            checksumValid: true,
          },
          payload: bytes,
          payloadOffset: ip + headerLength,
        });
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("buildIcmpEcho then parsePacket gives back every field, requests and replies of both families", () => {
  fc.assert(
    fc.property(
      addressPair,
      port,
      port,
      payload,
      fc.boolean(),
      (pair, identifier, sequence, data, reply) => {
        const packet = buildIcmpEcho({
          source: pair.source,
          destination: pair.destination,
          identifier,
          sequence,
          payload: data,
          reply,
        });
        const v4 = pair.family === 4;
        assertEquals(parsePacket(packet, "ip"), {
          ...expectedIp(pair, v4 ? 1 : 58, 8 + data.length),
          icmp: {
            offset: ipHeaderLength(pair),
            version: pair.family,
            type: v4 ? (reply ? 0 : 8) : (reply ? 129 : 128),
            code: 0,
            checksumValid: true,
            identifier,
            sequence,
          },
          payload: data,
          payloadOffset: ipHeaderLength(pair) + 8,
        });
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("builders' transport checksums agree with transportChecksum over the segment", () => {
  fc.assert(
    fc.property(addressPair, port, payload, (pair, p, data) => {
      const udp = buildUdp({ ...pair, sourcePort: p, destinationPort: p, payload: data });
      const tcp = buildTcp({
        ...pair,
        sourcePort: p,
        destinationPort: p,
        sequence: p,
        flags: {},
        payload: data,
      });
      const header = pair.family === 4 ? 20 : 40;
      for (const [packet, protocol] of [[udp, 17], [tcp, 6]] as const) {
        assertStrictEquals(
          transportChecksum({
            source: pair.sourceBytes,
            destination: pair.destinationBytes,
            protocol,
            segment: packet.subarray(header),
          }),
          0,
        );
      }
      if (pair.family === 4) assertStrictEquals(internetChecksum(udp.subarray(0, 20)), 0);
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("buildUdp sends a checksum that computes to 0 as 0xffff, since 0 means none", () => {
  const options = {
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 1,
    destinationPort: 2,
  };
  const probe = buildUdp({ ...options, payload: new Uint8Array(2) });
  // A data word equal to the checksum of zero data cancels the sum out.
  const packet = buildUdp({ ...options, payload: probe.subarray(26, 28) });
  assertEquals([...packet.subarray(26, 28)], [0xff, 0xff]);
  assertStrictEquals(parsePacket(packet, "ip").udp?.checksumValid, true);
});

Deno.test("IP builders write the expected IPv4 header bytes, with DF set and TTL 64 by default", () => {
  const packet = buildUdp({
    source: "192.0.2.1",
    destination: "192.0.2.77",
    sourcePort: 40000,
    destinationPort: 5000,
    payload: new TextEncoder().encode("hi"),
  });
  assertEquals(
    [...packet.subarray(0, 10)],
    [0x45, 0x00, 0x00, 30, 0x00, 0x00, 0x40, 0x00, 64, 17],
  );
  assertEquals([...packet.subarray(12, 20)], [192, 0, 2, 1, 192, 0, 2, 77]);
  assertEquals([...packet.subarray(20, 26)], [0x9c, 0x40, 0x13, 0x88, 0, 10]);
});

Deno.test("IP builders write the expected IPv6 header bytes, with hop limit 64 by default", () => {
  const packet = buildIcmpEcho({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    identifier: 7,
    sequence: 1,
  });
  assertStrictEquals(packet.length, 48);
  assertEquals([...packet.subarray(0, 8)], [0x60, 0, 0, 0, 0, 8, 58, 64]);
  assertEquals(packet.subarray(8, 24), parseIp("2001:db8::1"));
  assertEquals(packet.subarray(24, 40), parseIp("2001:db8::2"));
  assertEquals([...packet.subarray(40, 41)], [128]);
});

Deno.test("IP builders reject mixed address families with a TypeError", () => {
  assertThrows(
    () =>
      buildUdp({
        source: "192.0.2.1",
        destination: "2001:db8::1",
        sourcePort: 1,
        destinationPort: 2,
      }),
    { name: "TypeError", message: /different address families/ },
  );
  assertThrows(
    () =>
      buildIcmpEcho({
        source: new Uint8Array(16),
        destination: new Uint8Array(4),
        identifier: 1,
        sequence: 1,
      }),
    TypeError,
  );
});

Deno.test("IP builders validate numbers with RangeError and types with TypeError", () => {
  const base = {
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 1,
    destinationPort: 2,
  };
  for (const bad of [-1, 65536, 1.5, NaN, Infinity]) {
    assertThrows(() => buildUdp({ ...base, sourcePort: bad }), RangeError);
    assertThrows(() => buildUdp({ ...base, destinationPort: bad }), RangeError);
    assertThrows(
      () => buildIcmpEcho({ ...base, identifier: bad, sequence: 1 }),
      RangeError,
    );
    assertThrows(
      () => buildTcp({ ...base, sequence: 0, window: bad, flags: {} }),
      RangeError,
    );
  }
  for (const bad of [0, 256, -1, 2.5]) {
    assertThrows(() => buildUdp({ ...base, ttl: bad }), RangeError);
  }
  for (const bad of [-1, 2 ** 32, 0.5]) {
    assertThrows(() => buildTcp({ ...base, sequence: bad, flags: {} }), RangeError);
    assertThrows(
      () => buildTcp({ ...base, sequence: 0, acknowledgment: bad, flags: {} }),
      RangeError,
    );
  }
  assertThrows(() => buildUdp({ ...base, sourcePort: "1" as unknown as number }), TypeError);
  assertThrows(() => buildUdp({ ...base, payload: [1] as unknown as Uint8Array }), TypeError);
  assertThrows(() => buildUdp({ ...base, source: "192.0.2.256" }), RangeError);
  assertThrows(() => buildUdp({ ...base, source: "not an address" }), TypeError);
  assertThrows(() => buildUdp({ ...base, source: new Uint8Array(5) }), RangeError);
  assertThrows(() => buildUdp({ ...base, source: 3 as unknown as string }), TypeError);
  assertThrows(() => buildUdp(null as unknown as Parameters<typeof buildUdp>[0]), TypeError);
  assertThrows(
    () => buildTcp({ ...base, sequence: 0, flags: { syn: 1 as unknown as boolean } }),
    TypeError,
  );
  assertThrows(
    () => buildTcp({ ...base, sequence: 0, flags: undefined as unknown as TcpFlags }),
    TypeError,
  );
  assertThrows(
    () =>
      buildIcmpEcho({ ...base, identifier: 1, sequence: 1, reply: "yes" as unknown as boolean }),
    TypeError,
  );
});

Deno.test("IP builders reject payloads that do not fit the IP length fields with a RangeError", () => {
  const base = { sourcePort: 1, destinationPort: 2 };
  // IPv4 counts its 20-byte header in the 16-bit total length.
  const v4 = { source: "192.0.2.1", destination: "192.0.2.2", ...base };
  assertStrictEquals(buildUdp({ ...v4, payload: new Uint8Array(65507) }).length, 65535);
  assertThrows(() => buildUdp({ ...v4, payload: new Uint8Array(65508) }), RangeError);
  const v6 = { source: "::1", destination: "::2", ...base };
  assertStrictEquals(buildUdp({ ...v6, payload: new Uint8Array(65527) }).length, 40 + 65535);
  assertThrows(() => buildUdp({ ...v6, payload: new Uint8Array(65528) }), RangeError);
});

Deno.test("icmpEchoReply swaps the addresses and keeps identifier, sequence and data, for both families", () => {
  fc.assert(
    fc.property(addressPair, port, port, payload, (pair, identifier, sequence, data) => {
      const request = buildIcmpEcho({ ...pair, identifier, sequence, payload: data, ttl: 3 });
      const reply = parsePacket(icmpEchoReply(request), "ip");
      const swapped = { ...pair, source: pair.destination, destination: pair.source };
      const v4 = pair.family === 4;
      assertEquals(reply, {
        ...expectedIp(swapped, v4 ? 1 : 58, 8 + data.length),
        icmp: {
          offset: ipHeaderLength(pair),
          version: pair.family,
          type: v4 ? 0 : 129,
          code: 0,
          checksumValid: true,
          identifier,
          sequence,
        },
        payload: data,
        payloadOffset: ipHeaderLength(pair) + 8,
      });
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("icmpEchoReply rejects packets that are not intact echo requests", () => {
  const pair = { source: "192.0.2.1", destination: "192.0.2.2" };
  const reply = buildIcmpEcho({ ...pair, identifier: 1, sequence: 1, reply: true });
  assertThrows(() => icmpEchoReply(reply), {
    name: "RangeError",
    message: /type is 0, expected 8/,
  });
  const v6reply = buildIcmpEcho({
    source: "::1",
    destination: "::2",
    identifier: 1,
    sequence: 1,
    reply: true,
  });
  assertThrows(() => icmpEchoReply(v6reply), RangeError);
  const udp = buildUdp({ ...pair, sourcePort: 1, destinationPort: 2 });
  assertThrows(() => icmpEchoReply(udp), { name: "RangeError", message: /no ICMP header/ });
  const corrupt = buildIcmpEcho({
    ...pair,
    identifier: 1,
    sequence: 1,
    payload: new Uint8Array(4),
  });
  corrupt[30] ^= 1;
  assertThrows(() => icmpEchoReply(corrupt), { name: "RangeError", message: /checksum/ });
  assertThrows(() => icmpEchoReply(new Uint8Array([0x45])), RangeError);
  assertThrows(() => icmpEchoReply("ping" as unknown as Uint8Array), TypeError);
});

Deno.test("buildEthernet then parsePacket gives back addresses, EtherType, VLAN id and payload", () => {
  fc.assert(
    fc.property(
      macBytes,
      macBytes,
      fc.integer({ min: 0x0600, max: 0xffff }).filter((t) =>
        ![EtherType.IPV4, EtherType.IPV6, EtherType.ARP, EtherType.VLAN, EtherType.QINQ]
          .includes(t as never)
      ),
      payload,
      fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }),
      (destination, source, etherType, data, vlan) => {
        const frame = buildEthernet({ destination, source, etherType, payload: data, vlan });
        assertStrictEquals(frame.length, (vlan === undefined ? 14 : 18) + data.length);
        const parsed = parsePacket(frame, "ethernet");
        const mac = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
        assertEquals(parsed, {
          ethernet: {
            offset: 0,
            destination: mac(destination),
            source: mac(source),
            etherType,
            ...(vlan === undefined ? {} : { vlan }),
          },
          payload: data,
          payloadOffset: vlan === undefined ? 14 : 18,
        });
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("buildArp then parsePacket gives back every ARP field", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(1 as const, 2 as const),
      macBytes,
      ipv4Bytes,
      macBytes,
      ipv4Bytes,
      (operation, senderMac, senderIp, targetMac, targetIp) => {
        const body = buildArp({ operation, senderMac, senderIp, targetMac, targetIp });
        assertStrictEquals(body.length, 28);
        const frame = buildEthernet({
          destination: "ff:ff:ff:ff:ff:ff",
          source: senderMac,
          etherType: EtherType.ARP,
          payload: body,
        });
        const { arp } = parsePacket(frame, "ethernet");
        const mac = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
        assertEquals(arp, {
          offset: 14,
          operation,
          senderMac: mac(senderMac),
          senderIp: [...senderIp].join("."),
          targetMac: mac(targetMac),
          targetIp: [...targetIp].join("."),
        });
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("buildArp writes the Ethernet/IPv4 ARP header bytes", () => {
  const body = buildArp({
    operation: 1,
    senderMac: "02:00:00:00:00:01",
    senderIp: "192.0.2.2",
    targetMac: "00:00:00:00:00:00",
    targetIp: "192.0.2.1",
  });
  assertEquals([...body.subarray(0, 8)], [0, 1, 0x08, 0x00, 6, 4, 0, 1]);
  assertEquals([...body.subarray(14, 18)], [192, 0, 2, 2]);
  assertEquals([...body.subarray(24, 28)], [192, 0, 2, 1]);
});

Deno.test("buildArp and buildEthernet validate their inputs", () => {
  const arp = {
    operation: 1 as const,
    senderMac: "02:00:00:00:00:01",
    senderIp: "192.0.2.2",
    targetMac: "00:00:00:00:00:00",
    targetIp: "192.0.2.1",
  };
  assertThrows(() => buildArp({ ...arp, senderIp: "2001:db8::1" }), TypeError);
  assertThrows(() => buildArp({ ...arp, operation: 3 as 1 }), RangeError);
  assertThrows(() => buildArp({ ...arp, targetMac: "02:00:00:00:00" }), TypeError);
  assertThrows(() => buildArp({ ...arp, targetMac: new Uint8Array(7) }), RangeError);
  const frame = {
    destination: "02:00:00:00:00:02",
    source: "02:00:00:00:00:01",
    etherType: 0x0800,
    payload: new Uint8Array(1),
  };
  assertThrows(() => buildEthernet({ ...frame, etherType: 0x10000 }), RangeError);
  assertThrows(() => buildEthernet({ ...frame, vlan: 4096 }), RangeError);
  assertThrows(
    () => buildEthernet({ ...frame, payload: undefined as unknown as Uint8Array }),
    TypeError,
  );
  assertThrows(() => buildEthernet({ ...frame, source: 5 as unknown as string }), TypeError);
});

Deno.test("builders copy the payload, so later changes to the caller's buffer do not leak in", () => {
  const data = new Uint8Array([1, 2, 3]);
  const packet = buildUdp({
    source: "::1",
    destination: "::2",
    sourcePort: 1,
    destinationPort: 2,
    payload: data,
  });
  data[0] = 99;
  assertEquals([...parsePacket(packet, "ip").payload], [1, 2, 3]);
  assert(parsePacket(packet, "ip").udp?.checksumValid);
});

Deno.test("buildTcp pads options with zeros to whole words and rejects more than 40 bytes", () => {
  const base = {
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 1,
    destinationPort: 2,
    sequence: 0,
    flags: { syn: true },
  };
  const packet = buildTcp({ ...base, options: Uint8Array.of(3, 3, 7) });
  assertStrictEquals(packet[32] >> 4, 6);
  assertEquals([...packet.subarray(40, 44)], [3, 3, 7, 0]);
  assertStrictEquals(buildTcp({ ...base, options: new Uint8Array(40) }).length, 80);
  assertThrows(() => buildTcp({ ...base, options: new Uint8Array(41) }), RangeError);
  assertThrows(() => buildTcp({ ...base, options: [2, 4] as unknown as Uint8Array }), TypeError);
});
