import fc from "fast-check";
import { assertMatch, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  buildArp,
  buildEthernet,
  buildIcmpEcho,
  buildIcmpError,
  buildIPv4,
  buildNeighborAdvertisement,
  buildNeighborSolicitation,
  buildRouterAdvertisement,
  buildRouterSolicitation,
  buildTcp,
  buildUdp,
  EtherType,
  fragment,
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

Deno.test("summarize reads the fields of other ICMP types, or marks the message cut short like tcpdump", () => {
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
    "IP6 2001:db8::1 > ff02::1: ICMP6, neighbor solicitation, who has ::, length 24",
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
    // A port unreachable message quoting nothing: tcpdump gives up on it.
    "IP 192.0.2.1 > 192.0.2.2:  [|icmp]",
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

Deno.test("summarize falls back to the protocol number, and reads ARP of other layouts like tcpdump", () => {
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
    "IP 192.0.2.1 > 192.0.2.2: ip-proto-17",
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
    "ARP, Reverse Request who-is 00:00:00:00:00:00 tell 02:00:00:00:00:01, length 28",
  );
  const otherHardware = arp.slice();
  otherHardware[4] = 8;
  // 8-byte hardware addresses do not fit in 28 bytes.
  assertStrictEquals(summarize(frame(otherHardware), "ethernet"), " [|arp]");
  const ipv6Arp = arp.slice();
  ipv6Arp.set([0x86, 0xdd], 2);
  assertStrictEquals(
    summarize(frame(ipv6Arp), "ethernet"),
    "ARP, Ethernet (len 6), IPv6 (len 4), length 28",
  );
});

// The expected lines below are what tcpdump 4.99 -n -S -t prints for these packets.

Deno.test("summarize describes IPv6 fragments like tcpdump: frag (offset|length), ports alone after it", () => {
  // The packet: a later fragment whose Fragment header says 60 comes next.
  const later = Uint8Array.from(
    ("6000000000102c40" + "00".repeat(15) + "01" + "00".repeat(15) + "02" +
      "3c00000800000001" + "0600000000000000").match(/../g)!,
    (byte) => parseInt(byte, 16),
  );
  assertStrictEquals(summarize(later, "ip"), "IP6 ::1 > ::2: frag (8|8)");
  const [first, second] = fragment(
    buildUdp({
      source: "2001:db8::1",
      destination: "2001:db8::2",
      sourcePort: 50000,
      destinationPort: 50001,
      payload: new Uint8Array(1300),
    }),
    1280,
    { identification: 1 },
  );
  assertStrictEquals(
    summarize(first, "ip"),
    "IP6 2001:db8::1 > 2001:db8::2: frag (0|1232) 50000 > 50001: UDP, length 1300",
  );
  assertStrictEquals(summarize(second, "ip"), "IP6 2001:db8::1 > 2001:db8::2: frag (1232|76)");
});

Deno.test("summarize describes IPv4 fragments like tcpdump: the UDP length field first, then only the protocol", () => {
  const udp = buildUdp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 50000,
    destinationPort: 50001,
    payload: new Uint8Array(100),
  });
  const datagram = buildIPv4({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    protocol: 17,
    dontFragment: false,
    payload: udp.subarray(20),
  });
  const [first, ...later] = fragment(datagram, 68);
  assertStrictEquals(
    summarize(first, "ip"),
    "IP 192.0.2.1.50000 > 192.0.2.2.50001: UDP, length 100",
  );
  for (const piece of later) {
    assertStrictEquals(summarize(piece, "ip"), "IP 192.0.2.1 > 192.0.2.2: ip-proto-17");
  }
});

Deno.test("summarize describes ICMP errors by the packet they quote, like tcpdump", () => {
  const query = (source: string, destination: string, size = 8) =>
    buildUdp({
      source,
      destination,
      sourcePort: 50000,
      destinationPort: 53,
      payload: new Uint8Array(size),
    });
  assertStrictEquals(
    summarize(
      buildIcmpError(query("192.0.2.2", "192.0.2.1"), {
        type: "destination-unreachable",
        code: 3,
        source: "192.0.2.1",
      }),
      "ip",
    ),
    "IP 192.0.2.1 > 192.0.2.2: ICMP 192.0.2.1 udp port 53 unreachable, length 44",
  );
  assertStrictEquals(
    summarize(
      buildIcmpError(query("2001:db8::2", "2001:db8::1"), {
        type: "destination-unreachable",
        code: 4,
        source: "2001:db8::1",
      }),
      "ip",
    ),
    "IP6 2001:db8::1 > 2001:db8::2: ICMP6, destination unreachable, unreachable port, " +
      "2001:db8::1 udp port 53, length 64",
  );
  assertStrictEquals(
    summarize(
      buildIcmpError(query("2001:db8::2", "2001:db8::1", 1400), {
        type: "packet-too-big",
        mtu: 1280,
        source: "2001:db8::ff",
      }),
      "ip",
    ),
    "IP6 2001:db8::ff > 2001:db8::2: ICMP6, packet too big, mtu 1280, length 1240",
  );
});

Deno.test("summarize describes neighbour and router discovery like tcpdump", () => {
  const lines = [
    buildNeighborSolicitation({
      source: "2001:db8::2",
      target: "2001:db8::1",
      sourceMac: "02:00:00:00:00:02",
    }),
    buildNeighborAdvertisement({
      source: "2001:db8::1",
      destination: "2001:db8::2",
      target: "2001:db8::1",
      targetMac: "02:00:00:00:00:01",
      solicited: true,
    }),
    buildRouterSolicitation({ source: "fe80::2", sourceMac: "02:00:00:00:00:02" }),
    buildRouterAdvertisement({
      source: "fe80::1",
      sourceMac: "02:00:00:00:00:01",
      prefixes: [{ prefix: "2001:db8:1::/64" }],
    }),
  ].map((packet) => summarize(packet, "ip"));
  assertStrictEquals(
    lines.join("\n"),
    [
      "IP6 2001:db8::2 > ff02::1:ff00:1: ICMP6, neighbor solicitation, who has 2001:db8::1, length 32",
      "IP6 2001:db8::1 > 2001:db8::2: ICMP6, neighbor advertisement, tgt is 2001:db8::1, length 32",
      "IP6 fe80::2 > ff02::2: ICMP6, router solicitation, length 16",
      "IP6 fe80::1 > ff02::1: ICMP6, router advertisement, length 56",
    ].join("\n"),
  );
});

Deno.test("summarize decodes the MD5 signature, user timeout, SCPS and TCP-AO options like tcpdump", () => {
  const digest = Array.from({ length: 16 }, (_, i) => i);
  const packet = buildTcp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 50000,
    destinationPort: 50001,
    sequence: 1,
    flags: { syn: true },
    options: Uint8Array.of(
      19,
      18,
      ...digest,
      28,
      4,
      0x81,
      0x2c,
      20,
      4,
      0x0f,
      7,
      29,
      6,
      1,
      2,
      0xab,
      0xcd,
    ),
  });
  assertStrictEquals(
    summarize(packet, "ip"),
    "IP 192.0.2.1.50000 > 192.0.2.2.50001: Flags [S], seq 1, win 65535, options [" +
      "md5 shared secret not supplied with -M, can't check - 000102030405060708090a0b0c0d0e0f," +
      "uto 0x812c 16534,scps cap 0f id 7,tcp-ao keyid 1 rnextkeyid 2 mac 0xabcd], length 0",
  );
});

Deno.test("summarize decodes MPTCP options by subtype, and gives up where tcpdump does", () => {
  const base = {
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 50000,
    destinationPort: 50001,
    sequence: 1,
  };
  const capable = Uint8Array.of(30, 12, 0x01, 0x81, 1, 2, 3, 4, 5, 6, 7, 8);
  // A DSS option on a SYN is invalid, and ends the line.
  const dss = Uint8Array.of(30, 4, 0x20, 0x00);
  assertStrictEquals(
    summarize(
      buildTcp({ ...base, flags: { syn: true }, options: Uint8Array.of(...capable, ...dss) }),
      "ip",
    ),
    "IP 192.0.2.1.50000 > 192.0.2.2.50001: Flags [S], seq 1, win 65535, " +
      "options [mptcp 12 capable v1 csum {0x102030405060708},mptcp 4 dss[bad opt]]",
  );
  assertStrictEquals(
    summarize(
      buildTcp({
        ...base,
        acknowledgment: 5,
        flags: { ack: true },
        options: Uint8Array.of(30, 8, 0x20, 0x01, 0, 0, 0, 9),
      }),
      "ip",
    ),
    "IP 192.0.2.1.50000 > 192.0.2.2.50001: Flags [.], ack 5, win 65535, " +
      "options [mptcp 8 dss ack 9], length 0",
  );
});
