import fc from "fast-check";
import { assertMatch, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  buildArp,
  buildEthernet,
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  EtherType,
  type LinkType,
  summarize,
} from "../../packet/mod.ts";
import { ethernetFrame, ipPacket } from "./arbitraries.ts";

Deno.test("summarize describes UDP like tcpdump: addresses with ports, data length", () => {
  const packet = buildUdp({
    source: "192.0.2.1",
    destination: "192.0.2.77",
    sourcePort: 40000,
    destinationPort: 5000,
    payload: new Uint8Array(10),
  });
  assertStrictEquals(
    summarize(packet, "ip"),
    "IP 192.0.2.1.40000 > 192.0.2.77.5000: UDP, length 10",
  );
  const v6 = buildUdp({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    sourcePort: 53,
    destinationPort: 5353,
    payload: new Uint8Array(3),
  });
  assertStrictEquals(
    summarize(v6, "ip"),
    "IP6 2001:db8::1.53 > 2001:db8::2.5353: UDP, length 3",
  );
});

Deno.test("summarize describes ICMP and ICMPv6 echo with id and sequence", () => {
  const reply = buildIcmpEcho({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    identifier: 1,
    sequence: 2,
    payload: new Uint8Array(56),
    reply: true,
  });
  assertStrictEquals(
    summarize(reply, "ip"),
    "IP 192.0.2.1 > 192.0.2.2: ICMP echo reply, id 1, seq 2, length 64",
  );
  const request = buildIcmpEcho({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    identifier: 7,
    sequence: 1,
  });
  assertStrictEquals(
    summarize(request, "ip"),
    "IP6 2001:db8::1 > 2001:db8::2: ICMP6, echo request, id 7, seq 1, length 8",
  );
});

Deno.test("summarize names other ICMP types and their code", () => {
  const packet = buildIcmpEcho({
    source: "2001:db8::1",
    destination: "ff02::1",
    identifier: 0,
    sequence: 0,
    payload: new Uint8Array(16),
  });
  packet[40] = 135;
  assertStrictEquals(
    summarize(packet, "ip"),
    "IP6 2001:db8::1 > ff02::1: ICMP6, neighbor solicitation, length 24",
  );
  const v4 = buildIcmpEcho({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    identifier: 0,
    sequence: 0,
  });
  v4[20] = 3;
  v4[21] = 3;
  assertStrictEquals(
    summarize(v4, "ip"),
    "IP 192.0.2.1 > 192.0.2.2: ICMP destination unreachable, code 3, length 8",
  );
});

Deno.test("summarize describes TCP with tcpdump's flag letters, sequence range and window", () => {
  const base = {
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 40000,
    destinationPort: 80,
  };
  assertStrictEquals(
    summarize(buildTcp({ ...base, sequence: 1, flags: { syn: true } }), "ip"),
    "IP 192.0.2.1.40000 > 192.0.2.2.80: Flags [S], seq 1, win 65535, length 0",
  );
  assertStrictEquals(
    summarize(
      buildTcp({
        ...base,
        sequence: 1,
        acknowledgment: 2,
        flags: { syn: true, ack: true },
      }),
      "ip",
    ),
    "IP 192.0.2.1.40000 > 192.0.2.2.80: Flags [S.], seq 1, ack 2, win 65535, length 0",
  );
  assertStrictEquals(
    summarize(
      buildTcp({
        ...base,
        sequence: 0xfffffffe,
        acknowledgment: 9,
        window: 502,
        flags: { psh: true, ack: true },
        payload: new Uint8Array(10),
      }),
      "ip",
    ),
    "IP 192.0.2.1.40000 > 192.0.2.2.80: Flags [P.], seq 4294967294:8, ack 9, win 502, length 10",
  );
  assertStrictEquals(
    summarize(
      buildTcp({
        ...base,
        sequence: 5,
        flags: { fin: true, rst: true, urg: true, ece: true, cwr: true },
      }),
      "ip",
    ),
    // tcpdump prints the urgent pointer whenever URG is set.
    "IP 192.0.2.1.40000 > 192.0.2.2.80: Flags [FRUEW], seq 5, win 65535, urg 0, length 0",
  );
  assertMatch(
    summarize(buildTcp({ ...base, sequence: 5, flags: {} }), "ip"),
    /Flags \[none\]/,
  );
});

Deno.test("summarize describes ARP requests and replies", () => {
  const frame = (operation: 1 | 2) =>
    buildEthernet({
      destination: "ff:ff:ff:ff:ff:ff",
      source: "02:00:00:00:00:02",
      etherType: EtherType.ARP,
      payload: buildArp({
        operation,
        senderMac: "02:00:00:00:00:02",
        senderIp: operation === 1 ? "192.0.2.2" : "192.0.2.1",
        targetMac: "00:00:00:00:00:00",
        targetIp: operation === 1 ? "192.0.2.1" : "192.0.2.2",
      }),
    });
  assertStrictEquals(
    summarize(frame(1), "ethernet"),
    "ARP, Request who-has 192.0.2.1 tell 192.0.2.2, length 28",
  );
  assertStrictEquals(
    summarize(frame(2), "ethernet"),
    "ARP, Reply 192.0.2.1 is-at 02:00:00:00:00:02, length 28",
  );
});

Deno.test("summarize describes the network layer of Ethernet frames, with a VLAN prefix when tagged", () => {
  const lldp = buildEthernet({
    destination: "01:80:c2:00:00:0e",
    source: "02:00:00:00:00:01",
    etherType: 0x88cc,
    payload: new Uint8Array(46),
  });
  assertStrictEquals(summarize(lldp, "ethernet"), "ethertype 0x88cc, length 60");
  const tagged = buildEthernet({
    destination: "02:00:00:00:00:02",
    source: "02:00:00:00:00:01",
    etherType: EtherType.IPV4,
    vlan: 42,
    payload: buildUdp({
      source: "192.0.2.1",
      destination: "192.0.2.2",
      sourcePort: 1,
      destinationPort: 2,
    }),
  });
  assertStrictEquals(
    summarize(tagged, "ethernet"),
    "vlan 42, IP 192.0.2.1.1 > 192.0.2.2.2: UDP, length 0",
  );
});

Deno.test("summarize reports malformed packets with the parser's message instead of throwing", () => {
  const packet = buildUdp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 1,
    destinationPort: 2,
    payload: new Uint8Array(4),
  });
  assertStrictEquals(
    summarize(packet.subarray(0, 30), "ip"),
    "malformed: Truncated IPv4 packet at offset 0: need 32 bytes, have 30",
  );
  assertStrictEquals(
    summarize(new Uint8Array(0), "ip"),
    "malformed: Truncated IP header at offset 0: need 1 byte, have 0",
  );
});

Deno.test("summarize never throws on random bytes or truncated packets", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.tuple(fc.uint8Array({ maxLength: 100 }), fc.constantFrom<LinkType>("ip", "ethernet")),
        fc.tuple(ipPacket, fc.constant<LinkType>("ip")),
        fc.tuple(ethernetFrame, fc.constant<LinkType>("ethernet")),
      ),
      fc.nat(),
      ([bytes, link], cut) => {
        const line = summarize(bytes.subarray(0, cut % (bytes.length + 1)), link);
        assertStrictEquals(typeof line, "string");
        assertStrictEquals(line.includes("\n"), false);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("summarize still rejects arguments of the wrong type with a TypeError", () => {
  assertThrows(() => summarize("packet" as unknown as Uint8Array, "ip"), TypeError);
  assertThrows(() => summarize(new Uint8Array(1), "tap" as LinkType), TypeError);
});

Deno.test("summarize falls back to the protocol number, fragment offset or ARP kind it cannot describe further", () => {
  const gre = buildUdp({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    sourcePort: 1,
    destinationPort: 2,
  });
  gre[6] = 47;
  assertStrictEquals(
    summarize(gre, "ip"),
    "IP6 2001:db8::1 > 2001:db8::2: ip-proto-47, length 8",
  );
  const fragment = buildUdp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 1,
    destinationPort: 2,
  });
  fragment[6] = 0;
  fragment[7] = 10;
  assertStrictEquals(
    summarize(fragment, "ip"),
    "IP 192.0.2.1 > 192.0.2.2: fragment at offset 80, ip-proto-17, length 8",
  );
  const arp = buildArp({
    operation: 1,
    senderMac: "02:00:00:00:00:01",
    senderIp: "192.0.2.1",
    targetMac: "00:00:00:00:00:00",
    targetIp: "192.0.2.2",
  });
  const frame = (body: Uint8Array) =>
    buildEthernet({
      destination: "ff:ff:ff:ff:ff:ff",
      source: "02:00:00:00:00:01",
      etherType: EtherType.ARP,
      payload: body,
    });
  const reverse = arp.slice();
  reverse[7] = 3;
  assertStrictEquals(
    summarize(frame(reverse), "ethernet"),
    "ARP, operation 3, sender 192.0.2.1, target 192.0.2.2, length 28",
  );
  const otherHardware = arp.slice();
  otherHardware[4] = 8;
  assertStrictEquals(
    summarize(frame(otherHardware), "ethernet"),
    "ARP, not IPv4 over Ethernet, length 28",
  );
});
