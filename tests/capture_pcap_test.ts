import {
  buildArp,
  buildEthernet,
  buildUdp,
  EtherType,
  PcapWriter,
  readPcap,
} from "../packet/mod.ts";
import { assertEquals, assertMatch, assertStrictEquals } from "./assert.ts";
import { tcpdumpRead } from "./cli_run.ts";

async function sll2File(link: "ip" | "ethernet", write: (writer: PcapWriter) => Promise<void>) {
  const file = `${Deno.makeTempDirSync()}/sll2.pcap`;
  const writer = new PcapWriter(
    await Deno.open(file, { write: true, createNew: true }),
    { link, linuxSll2: true },
  );
  await write(writer);
  await writer.close();
  return file;
}

Deno.test("a LINUX_SLL2 pcap of IP packets records the direction for tcpdump and readPcap", async () => {
  const packet = buildUdp({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    sourcePort: 1,
    destinationPort: 2,
  });
  const file = await sll2File("ip", async (writer) => {
    await writer.write(packet, 1_000_000_001n, { direction: "out", interfaceIndex: 7 });
    await writer.write(packet, 2_000_000_002n, { direction: "in", interfaceIndex: 7 });
  });
  const { lines, stderr } = tcpdumpRead(file);
  assertMatch(stderr, /link-type LINUX_SLL2/);
  assertMatch(lines[0], / Out IP 192\.0\.2\.1\.1 > 192\.0\.2\.2\.2: UDP/);
  assertMatch(lines[1], / In {2}IP 192\.0\.2\.1\.1 > 192\.0\.2\.2\.2: UDP/);
  const reader = readPcap(await Deno.open(file));
  assertStrictEquals((await reader.header()).linkType, 276);
  assertStrictEquals((await reader.header()).link, undefined);
  const records = await Array.fromAsync(reader);
  assertEquals(records, [
    {
      timestampNs: 1_000_000_001n,
      bytes: packet,
      originalLength: packet.length,
      direction: "out",
      packetType: 4,
      interfaceIndex: 7,
      protocol: 0x0800,
    },
    {
      timestampNs: 2_000_000_002n,
      bytes: packet,
      originalLength: packet.length,
      direction: "in",
      packetType: 0,
      interfaceIndex: 7,
      protocol: 0x0800,
    },
  ]);
});

Deno.test("a LINUX_SLL2 pcap of Ethernet frames keeps the payload and the source address", async () => {
  const arp = buildArp({
    operation: 1,
    senderMac: "02:00:00:00:00:01",
    senderIp: "192.0.2.1",
    targetMac: "00:00:00:00:00:00",
    targetIp: "192.0.2.2",
  });
  const frame = buildEthernet({
    destination: "ff:ff:ff:ff:ff:ff",
    source: "02:00:00:00:00:01",
    etherType: EtherType.ARP,
    payload: arp,
  });
  const file = await sll2File("ethernet", (writer) => writer.write(frame, 1n, { packetType: 1 }));
  const { lines } = tcpdumpRead(file);
  assertMatch(lines[0], / B {3}ARP, Request who-has 192\.0\.2\.2 tell 192\.0\.2\.1/);
  const [record] = await Array.fromAsync(readPcap(await Deno.open(file)));
  assertEquals(
    [record.bytes, record.protocol, record.direction, record.packetType],
    [frame.slice(14), 0x0806, "in", 1],
  );
});
