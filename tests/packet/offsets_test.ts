import fc from "fast-check";
import { assertEquals, assertStrictEquals } from "../assert.ts";
import { buildEthernet, buildIPv4, buildTcp, EtherType, parsePacket } from "../../packet/mod.ts";
import { addressPair, ipPacket, macBytes, payload, port, uint32 } from "./arbitraries.ts";

const NUM_RUNS = 200;

Deno.test("layer offsets and payloadOffset point where the builders put each header, with and without a VLAN tag", () => {
  fc.assert(
    fc.property(
      ipPacket,
      fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }),
      macBytes,
      (packet, vlan, mac) => {
        const ip = parsePacket(packet, "ip");
        const frame = buildEthernet({
          destination: mac,
          source: mac,
          etherType: packet[0] >> 4 === 4 ? EtherType.IPV4 : EtherType.IPV6,
          payload: packet,
          vlan,
        });
        const parsed = parsePacket(frame, "ethernet");
        const link = vlan === undefined ? 14 : 18;
        assertStrictEquals(parsed.ethernet?.offset, 0);
        const network = parsed.ipv4 ?? parsed.ipv6;
        assertStrictEquals(network?.offset, link);
        const transport = parsed.tcp ?? parsed.udp ?? parsed.icmp;
        const transportOffset = link + (network?.headerLength ?? 0);
        assertStrictEquals(transport?.offset, transportOffset);
        const transportLength = parsed.tcp?.headerLength ?? 8;
        assertStrictEquals(parsed.payloadOffset, transportOffset + transportLength);
        // The same packet read from a TUN device: everything moves back by the link header.
        assertStrictEquals((ip.tcp ?? ip.udp ?? ip.icmp)?.offset, transportOffset - link);
        assertStrictEquals(ip.payloadOffset, parsed.payloadOffset - link);
        assertEquals(
          parsed.payload,
          frame.subarray(parsed.payloadOffset, parsed.payloadOffset + parsed.payload.length),
        );
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("TCP offsets account for the options buildTcp writes, behind IPv4 options", () => {
  fc.assert(
    fc.property(
      addressPair.filter((pair) => pair.family === 4),
      port,
      uint32,
      fc.integer({ min: 0, max: 10 }),
      fc.integer({ min: 0, max: 40 }),
      payload,
      (pair, sourcePort, sequence, ipOptionWords, tcpOptionBytes, data) => {
        const tcp = buildTcp({
          ...pair,
          sourcePort,
          destinationPort: 443,
          sequence,
          flags: { ack: true },
          options: new Uint8Array(tcpOptionBytes).fill(1), // NOPs
          payload: data,
        });
        const packet = buildIPv4({
          ...pair,
          protocol: 6,
          options: new Uint8Array(4 * ipOptionWords).fill(1),
          payload: tcp.subarray(20),
        });
        const parsed = parsePacket(packet, "ip");
        const ipLength = 20 + 4 * ipOptionWords;
        const tcpLength = 20 + Math.ceil(tcpOptionBytes / 4) * 4;
        assertStrictEquals(parsed.tcp?.offset, ipLength);
        assertStrictEquals(parsed.tcp?.headerLength, tcpLength);
        assertStrictEquals(parsed.tcp?.options.length, tcpLength - 20);
        assertStrictEquals(parsed.tcp?.checksumValid, true);
        assertStrictEquals(parsed.payloadOffset, ipLength + tcpLength);
        assertEquals(parsed.payload, data);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("the TCP options are a view into the parsed bytes, and mss is the first MSS option", () => {
  const packet = buildTcp({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    sourcePort: 1,
    destinationPort: 2,
    sequence: 0,
    flags: { syn: true },
    options: Uint8Array.of(1, 1, 2, 4, 0x05, 0x78, 2, 4, 0x05, 0xb4),
  });
  const { tcp } = parsePacket(packet, "ip");
  assertStrictEquals(tcp?.mss, 1400);
  assertStrictEquals(tcp?.options.buffer, packet.buffer);
  assertEquals([...tcp!.options], [1, 1, 2, 4, 5, 0x78, 2, 4, 5, 0xb4, 0, 0]);
  const without = parsePacket(
    buildTcp({
      ...{ source: "192.0.2.1", destination: "192.0.2.2" },
      sourcePort: 1,
      destinationPort: 2,
      sequence: 0,
      flags: {},
    }),
    "ip",
  );
  assertStrictEquals(without.tcp?.mss, undefined);
  assertStrictEquals(without.tcp?.options.length, 0);
});
