/**
 * Named regression cases from issue 13, each a defect found by comparing
 * the packet toolkit with scapy, tshark and tcpdump. Kept apart from the
 * property tests so that their exact inputs stay as written.
 *
 * @module
 */

import { assertEquals, assertStrictEquals } from "../assert.ts";
import {
  buildEthernet,
  buildIPv4,
  buildIPv6,
  buildTcp,
  buildUdp,
  EtherType,
  internetChecksum,
  parseIp,
  parsePacket,
  readPcap,
  summarize,
} from "../../packet/mod.ts";
import { fromHex, laterIPv6Fragment, udpDatagram } from "./samples.ts";

Deno.test("a non-first IPv6 fragment ends the extension header walk: next header 60 and 8 data bytes", () => {
  const parsed = parsePacket(laterIPv6Fragment("0600000000000000"), "ip");
  assertStrictEquals(parsed.ipv6?.nextHeader, 60);
  assertStrictEquals(parsed.ipv6?.headerLength, 48);
  assertEquals(parsed.ipv6?.fragment, { offset: 8, moreFragments: false, identification: 1 });
  assertEquals([...parsed.payload], [6, 0, 0, 0, 0, 0, 0, 0]);
  assertStrictEquals(parsed.payloadOffset, 48);
  assertStrictEquals(parsed.tcp, undefined);
});

Deno.test("a non-first IPv6 fragment whose data looks like a long extension header does not throw", () => {
  const parsed = parsePacket(laterIPv6Fragment("0605000000000000"), "ip");
  assertStrictEquals(parsed.ipv6?.nextHeader, 60);
  assertEquals([...parsed.payload], [6, 5, 0, 0, 0, 0, 0, 0]);
});

Deno.test("internetChecksum is exact for an initial sum near 2^53", () => {
  assertStrictEquals(internetChecksum(Uint8Array.of(0x00, 0x02), 2 ** 53 - 1), 0xffde);
  // 2^53 - 1 is congruent to 31 modulo 0xffff, so both start alike.
  for (const bytes of [Uint8Array.of(0xff, 0xff), Uint8Array.of(0x12, 0x34, 0x56)]) {
    assertStrictEquals(
      internetChecksum(bytes, Number.MAX_SAFE_INTEGER),
      internetChecksum(bytes, 31),
    );
  }
});

/** A pcap file (µs, little-endian, raw IP) with the given snaplen and records. */
function pcapFile(
  snapLength: number,
  records: { bytes: Uint8Array; originalLength: number }[],
): ReadableStream<Uint8Array> {
  const size = records.reduce((sum, record) => sum + 16 + record.bytes.length, 24);
  const file = new Uint8Array(size);
  const view = new DataView(file.buffer);
  view.setUint32(0, 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, snapLength, true);
  view.setUint32(20, 101, true);
  let at = 24;
  for (const { bytes, originalLength } of records) {
    view.setUint32(at + 8, bytes.length, true);
    view.setUint32(at + 12, originalLength, true);
    file.set(bytes, at + 16);
    at += 16 + bytes.length;
  }
  return ReadableStream.from([file]);
}

Deno.test("readPcap reads a record longer than the file's snaplen, as libpcap, tshark and scapy do", async () => {
  const packet = udpDatagram("192.0.2.1", "192.0.2.2", new Uint8Array(72));
  const records = await Array.fromAsync(
    readPcap(pcapFile(64, [{ bytes: packet, originalLength: packet.length }])),
  );
  assertStrictEquals(records.length, 1);
  assertEquals(records[0].bytes, packet);
  assertStrictEquals(records[0].originalLength, 100);
});

Deno.test("readPcap reports the original length, so a record cut by the snaplen can be told apart", async () => {
  const packet = udpDatagram("192.0.2.1", "192.0.2.2", new Uint8Array(72));
  const records = await Array.fromAsync(
    readPcap(pcapFile(40, [{ bytes: packet.subarray(0, 40), originalLength: 100 }])),
  );
  assertStrictEquals(records[0].bytes.length, 40);
  assertStrictEquals(records[0].originalLength, 100);
});

/** An ARP body for IPv4 with the given hardware type. */
function arpWithHardware(hardwareType: number): Uint8Array<ArrayBuffer> {
  const body = new Uint8Array(28);
  body[1] = hardwareType;
  body.set([0x08, 0x00, 6, 4, 0, 1], 2);
  body.set([192, 0, 2, 1], 14);
  body.set([192, 0, 2, 2], 24);
  return buildEthernet({
    destination: "ff:ff:ff:ff:ff:ff",
    source: "02:00:00:00:00:01",
    etherType: EtherType.ARP,
    payload: body,
  });
}

Deno.test("ARP is reported only for hardware type 1 (Ethernet), not for IEEE 802 or others", () => {
  assertStrictEquals(parsePacket(arpWithHardware(1), "ethernet").arp?.targetIp, "192.0.2.2");
  for (const hardwareType of [0, 6, 32]) {
    const parsed = parsePacket(arpWithHardware(hardwareType), "ethernet");
    assertStrictEquals(parsed.arp, undefined);
    assertStrictEquals(parsed.payload.length, 28);
  }
});

Deno.test("an 802.3 frame reports its length field as length, not as an EtherType", () => {
  // An LLC frame (STP's DSAP/SSAP 0x42) of 38 bytes, padded to the 60-byte minimum.
  const frame = new Uint8Array(60);
  frame.set(fromHex("0180c200000002000000000100260000"), 0);
  frame.set([0x42, 0x42, 0x03], 14);
  const { ethernet, payload, payloadOffset } = parsePacket(frame, "ethernet");
  // Linux's ETH_P_802_2 for an LLC frame: no EtherType is below 0x600.
  assertStrictEquals(ethernet?.etherType, 0x0004);
  assertStrictEquals(ethernet?.length, 0x26);
  assertStrictEquals(payload.length, 0x26);
  assertStrictEquals(payloadOffset, 14);
  assertStrictEquals(summarize(frame, "ethernet"), "802.3, length 38");
});

const LSRR = 0x83;
const SSRR = 0x89;

Deno.test("TCP and UDP checksums under an IPv4 source route cover the final destination", () => {
  for (const type of [LSRR, SSRR]) {
    for (const build of [buildUdp, buildTcp] as const) {
      // The sender sums its segment against where it is going in the end.
      const original = build({
        source: "192.0.2.1",
        destination: "203.0.113.9",
        sourcePort: 1,
        destinationPort: 2,
        sequence: 7,
        flags: { ack: true },
        payload: Uint8Array.of(1, 2, 3),
      });
      // On the wire, the header names the first hop and the option the rest.
      const options = Uint8Array.of(type, 11, 4, 198, 51, 100, 7, 203, 0, 113, 9, 0);
      const packet = buildIPv4({
        source: "192.0.2.1",
        destination: "192.0.2.254",
        protocol: original[9],
        options,
        payload: original.subarray(20),
      });
      const parsed = parsePacket(packet, "ip");
      assertStrictEquals((parsed.udp ?? parsed.tcp)?.checksumValid, true, `option ${type}`);
      // Once the route is used up (pointer past the end), the header's
      // destination is the final one again.
      const done = buildIPv4({
        source: "192.0.2.1",
        destination: "203.0.113.9",
        protocol: original[9],
        options: Uint8Array.of(type, 11, 12, 198, 51, 100, 7, 192, 0, 2, 254, 0),
        payload: original.subarray(20),
      });
      const parsedDone = parsePacket(done, "ip");
      assertStrictEquals((parsedDone.udp ?? parsedDone.tcp)?.checksumValid, true);
    }
  }
});

Deno.test("TCP and UDP checksums under an IPv6 routing header with segments left cover the final destination", () => {
  const final = parseIp("2001:db8::9");
  const hop = parseIp("2001:db8::fe");
  const original = buildUdp({
    source: "2001:db8::1",
    destination: final,
    sourcePort: 1,
    destinationPort: 2,
    payload: Uint8Array.of(1, 2, 3),
  });
  const cases: [string, Uint8Array][] = [];
  // Type 0 and type 2: the final destination is the last address listed.
  for (const type of [0, 2]) {
    const routing = new Uint8Array(24);
    routing.set([17, 2, type, 1]);
    routing.set(final, 8);
    cases.push([`type ${type}`, routing]);
  }
  const typeZeroTwoHops = new Uint8Array(40);
  typeZeroTwoHops.set([17, 4, 0, 2]);
  typeZeroTwoHops.set(parseIp("2001:db8::7"), 8);
  typeZeroTwoHops.set(final, 24);
  cases.push(["type 0, two addresses", typeZeroTwoHops]);
  // Segment routing (RFC 8754) lists segments backwards: the final one first.
  const srh = new Uint8Array(40);
  srh.set([17, 4, 4, 1, 1]);
  srh.set(final, 8);
  srh.set(hop, 24);
  cases.push(["type 4", srh]);
  for (const [name, routing] of cases) {
    const payload = new Uint8Array(routing.length + original.length - 40);
    payload.set(routing);
    payload.set(original.subarray(40), routing.length);
    const packet = buildIPv6({
      source: "2001:db8::1",
      destination: hop,
      nextHeader: 43,
      payload,
    });
    assertStrictEquals(parsePacket(packet, "ip").udp?.checksumValid, true, name);
  }
  // With no segments left, the header's destination is the final one.
  const spent = new Uint8Array(24);
  spent.set([17, 2, 0, 0]);
  spent.set(hop, 8);
  const payload = new Uint8Array(24 + original.length - 40);
  payload.set(spent);
  payload.set(original.subarray(40), 24);
  const packet = buildIPv6({ source: "2001:db8::1", destination: final, nextHeader: 43, payload });
  assertStrictEquals(parsePacket(packet, "ip").udp?.checksumValid, true, "segments left 0");
});

Deno.test("summarize prints no seq on a zero-length ACK, as tcpdump -S does", () => {
  const ack = buildTcp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 50000,
    destinationPort: 50001,
    sequence: 100,
    acknowledgment: 200,
    flags: { ack: true },
    window: 502,
  });
  assertStrictEquals(
    summarize(ack, "ip"),
    "IP 192.0.2.1.50000 > 192.0.2.2.50001: Flags [.], ack 200, win 502, length 0",
  );
});

Deno.test("summarize prints TCP options as tcpdump does", () => {
  const syn = buildTcp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 50000,
    destinationPort: 50001,
    sequence: 1,
    flags: { syn: true },
    window: 64240,
    // mss 1460, sackOK, TS val 1 ecr 0, nop, wscale 7: what Linux sends.
    options: fromHex("020405b40402080a0000000100000000" + "01030307"),
  });
  assertStrictEquals(
    summarize(syn, "ip"),
    "IP 192.0.2.1.50000 > 192.0.2.2.50001: Flags [S], seq 1, win 64240, " +
      "options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
  );
});
