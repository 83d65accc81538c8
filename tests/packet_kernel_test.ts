/**
 * The packet toolkit against the kernel: what the kernel sends parses to
 * what was sent, what the builders make the kernel accepts (it drops bad
 * checksums, so acceptance proves them), and pcap files of real traffic
 * read back in tcpdump.
 */
import type { TunInterface } from "../mod.ts";
import {
  buildArp,
  buildEthernet,
  buildTcp,
  buildUdp,
  EtherType,
  formatIp,
  formatMac,
  icmpEchoReply,
  IpProtocol,
  type LinkType,
  type ParsedPacket,
  parseIp,
  parsePacket,
  PcapWriter,
  summarize,
  transportChecksum,
} from "../packet/mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "./assert.ts";
import { openTap, openTun } from "./icmp_kernel_helpers.ts";
import { kernelTest, readUntil, within } from "./kernel.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const families = [
  { family: "IPv4", local: "192.0.2.1", remote: "192.0.2.7", pingFlags: [] },
  { family: "IPv6", local: "2001:db8::1", remote: "2001:db8::7", pingFlags: ["-6"] },
] as const;

/** Reads until `accept` takes the parsed packet, failing after `ms` milliseconds. */
async function readParsed(
  device: TunInterface,
  accept: (layers: ParsedPacket) => boolean,
  ms = 5000,
): Promise<Read> {
  let layers: ParsedPacket | undefined;
  const link = linkOf(device);
  const bytes = await readUntil(device, (packet) => accept(layers = parsePacket(packet, link)), ms);
  return { bytes, layers: layers! };
}

function linkOf(device: TunInterface): LinkType {
  return device.mode === "tap" ? "ethernet" : "ip";
}

interface Read {
  bytes: Uint8Array;
  layers: ParsedPacket;
}

function ping(flags: readonly string[], destination: string, extra: string[] = []) {
  return new Deno.Command("ping", {
    args: [...flags, "-c", "1", "-W", "5", ...extra, destination],
    stdin: "null",
  }).output();
}

function ipLayer(layers: ParsedPacket) {
  const ip = layers.ipv4 ?? layers.ipv6;
  if (!ip) throw new Error("not an IP packet");
  return ip;
}

kernelTest(
  "ping's echo requests parse to its addresses, id, sequence and size, and ping accepts icmpEchoReply's answer (IPv4 and IPv6)",
  async () => {
    using tun = await openTun("pping");
    for (const { local, remote, pingFlags } of families) {
      const pinging = ping(pingFlags, remote, ["-e", "4660", "-s", "24"]);
      const { bytes, layers } = await readParsed(
        tun,
        (p) => p.icmp?.type === 8 || p.icmp?.type === 128,
      );
      const ip = ipLayer(layers);
      assertEquals([ip.source, ip.destination], [local, remote]);
      if (layers.ipv4) assert(layers.ipv4.checksumValid);
      assertEquals(layers.icmp, {
        offset: layers.ipv4 ? 20 : 40,
        version: layers.ipv4 ? 4 : 6,
        type: layers.ipv4 ? 8 : 128,
        code: 0,
        checksumValid: true,
        identifier: 4660,
        sequence: 1,
      });
      assertStrictEquals(layers.payload.length, 24);

      await tun.write(icmpEchoReply(bytes));
      const output = await pinging;
      assert(output.success, `ping ${remote} failed: ${decoder.decode(output.stdout)}`);
      assertMatch(decoder.decode(output.stdout), /1 received/);
    }
  },
);

kernelTest(
  "a UDP datagram from a Deno socket parses to its addresses, ports, length and payload with valid checksums (IPv4 and IPv6)",
  async () => {
    using tun = await openTun("pudp");
    for (const { family, local, remote } of families) {
      const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 40200 });
      try {
        const message = `datagram over ${family}`;
        await socket.send(encoder.encode(message), {
          transport: "udp",
          hostname: remote,
          port: 40201,
        });
        const { layers } = await readParsed(tun, (p) => p.udp !== undefined);
        const ip = ipLayer(layers);
        assertEquals([ip.source, ip.destination], [local, remote]);
        if (layers.ipv4) {
          assert(layers.ipv4.checksumValid);
          assertStrictEquals(layers.ipv4.protocol, IpProtocol.UDP);
        }
        assertEquals(layers.udp, {
          offset: layers.ipv4 ? 20 : 40,
          sourcePort: 40200,
          destinationPort: 40201,
          length: 8 + message.length,
          checksumValid: true,
        });
        assertStrictEquals(decoder.decode(layers.payload), message);
      } finally {
        socket.close();
      }
    }
  },
);

kernelTest(
  "a SYN from Deno.connect parses to its addresses and port, and a buildTcp SYN-ACK completes the connection (IPv4 and IPv6)",
  async () => {
    using tun = await openTun("psyn");
    for (const { local, remote } of families) {
      const connecting = Deno.connect({ hostname: remote, port: 40300 });
      connecting.catch(() => {});
      const { layers } = await readParsed(tun, (p) => p.tcp?.flags.syn === true);
      const ip = ipLayer(layers);
      const syn = layers.tcp!;
      assertEquals([ip.source, ip.destination], [local, remote]);
      assertStrictEquals(syn.destinationPort, 40300);
      assert(syn.checksumValid);
      assert(!syn.flags.ack && !syn.flags.fin && !syn.flags.rst);

      await tun.write(buildTcp({
        source: remote,
        destination: local,
        sourcePort: 40300,
        destinationPort: syn.sourcePort,
        sequence: 7000,
        acknowledgment: (syn.sequence + 1) % 2 ** 32,
        flags: { syn: true, ack: true },
      }));
      const conn = await within(connecting, 5000, "connect");
      try {
        assertStrictEquals(conn.localAddr.port, syn.sourcePort);
        assertEquals(conn.remoteAddr.hostname, remote);
        // The kernel's ACK acknowledges the sequence number buildTcp wrote.
        const ack = await readParsed(tun, (p) => p.tcp?.flags.ack === true && !p.tcp.flags.syn);
        assertStrictEquals(ack.layers.tcp!.acknowledgment, 7001);
        assertStrictEquals(ack.layers.tcp!.sourcePort, syn.sourcePort);
      } finally {
        await closeAndReset(tun, conn);
      }
    }
  },
);

kernelTest(
  "a buildTcp SYN written to the device gets a SYN-ACK from a Deno.listen socket, and the handshake completes (IPv4 and IPv6)",
  async () => {
    using tun = await openTun("plisten");
    for (const { local, remote } of families) {
      using listener = Deno.listen({ hostname: local, port: 40400 });
      const accepting = listener.accept();
      // Closing the listener rejects it when the test fails before accepting.
      accepting.catch(() => {});
      const segment = {
        source: remote,
        destination: local,
        sourcePort: 40401,
        destinationPort: 40400,
      };
      await tun.write(buildTcp({ ...segment, sequence: 5000, flags: { syn: true } }));
      const { layers } = await readParsed(tun, (p) => p.tcp?.flags.syn === true);
      const ip = ipLayer(layers);
      const synAck = layers.tcp!;
      assertEquals([ip.source, ip.destination], [local, remote]);
      assertEquals([synAck.sourcePort, synAck.destinationPort], [40400, 40401]);
      assert(synAck.flags.ack && synAck.checksumValid);
      assertStrictEquals(synAck.acknowledgment, 5001);

      await tun.write(buildTcp({
        ...segment,
        sequence: 5001,
        acknowledgment: (synAck.sequence + 1) % 2 ** 32,
        flags: { ack: true },
      }));
      const conn = await within(accepting, 5000, "accept");
      try {
        assertEquals(conn.remoteAddr, { transport: "tcp", hostname: remote, port: 40401 });
      } finally {
        await closeAndReset(tun, conn);
      }
    }
  },
);

kernelTest(
  "a buildUdp datagram written to the device reaches a Deno socket, and one with a bad checksum does not (IPv4 and IPv6)",
  async () => {
    using tun = await openTun("pbuild");
    for (const { family, local, remote } of families) {
      const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 40500 });
      try {
        const datagram = (text: string) =>
          buildUdp({
            source: remote,
            destination: local,
            sourcePort: 40501,
            destinationPort: 40500,
            payload: encoder.encode(text),
          });
        const bad = datagram(`bad checksum over ${family}`);
        bad[bad.length - 1] ^= 0xff; // the payload changes, the checksum does not
        await tun.write(bad);
        await tun.write(datagram(`built over ${family}`));
        // Written first, the bad one would be received first had the kernel kept it.
        const [data, from] = await within(socket.receive(), 5000, "receive");
        assertStrictEquals(decoder.decode(data), `built over ${family}`);
        assertEquals(from, { transport: "udp", hostname: remote, port: 40501 });
      } finally {
        socket.close();
      }
    }
  },
);

kernelTest(
  "on a TAP device the kernel's ARP request and neighbour solicitation parse to the addresses asked for",
  async () => {
    using tap = await openTap("pndp", ["198.51.100.1/24", "2001:db8:1::1/64"]);
    const mac = tap.mac;
    const neighbours = [["198.51.100.1", "198.51.100.2"], ["2001:db8:1::1", "2001:db8:1::2"]];
    for (const [local, remote] of neighbours) {
      const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 40600 });
      try {
        await socket.send(encoder.encode("x"), { transport: "udp", hostname: remote, port: 9 });
      } finally {
        socket.close();
      }
    }

    const { layers: arp } = await readParsed(tap, (p) => p.arp?.targetIp === "198.51.100.2");
    assertEquals(arp.ethernet, {
      offset: 0,
      destination: "ff:ff:ff:ff:ff:ff",
      source: mac,
      etherType: EtherType.ARP,
    });
    assertEquals(arp.arp, {
      offset: 14,
      operation: 1,
      senderMac: mac,
      senderIp: "198.51.100.1",
      targetMac: "00:00:00:00:00:00",
      targetIp: "198.51.100.2",
    });

    // Duplicate address detection of the link-local address is a solicitation too.
    const { bytes, layers } = await readParsed(
      tap,
      (p) => p.icmp?.type === 135 && formatIp(p.payload.subarray(0, 16)) === "2001:db8:1::2",
    );
    assertEquals(layers.ethernet, {
      offset: 0,
      destination: "33:33:ff:00:00:02",
      source: mac,
      etherType: EtherType.IPV6,
    });
    assertStrictEquals(layers.ipv6!.source, "2001:db8:1::1");
    assertStrictEquals(layers.ipv6!.destination, "ff02::1:ff00:2");
    assertStrictEquals(layers.ipv6!.hopLimit, 255);
    assertEquals(layers.icmp, { offset: 54, version: 6, type: 135, code: 0, checksumValid: true });
    // Option 1, one 8-byte unit: the source link-layer address.
    assertEquals([...layers.payload.subarray(16, 18)], [1, 1]);
    assertStrictEquals(formatMac(layers.payload.subarray(18, 24)), mac);
    const checksum = transportChecksum({
      source: parseIp("2001:db8:1::1"),
      destination: parseIp("ff02::1:ff00:2"),
      protocol: IpProtocol.ICMPV6,
      segment: bytes.subarray(14 + 40),
    });
    assertStrictEquals(checksum, 0);
  },
);

// ---------------------------------------------------------------------------
// pcap files of real traffic, read back by tcpdump

/**
 * What a summary line and a tcpdump line must agree on: the protocol, the
 * addresses (with ports), and the transport's kind (ICMP message, TCP
 * flags, UDP length) or the ARP addresses.
 */
function fields(line: string): string[] {
  if (line.startsWith("ARP, ")) {
    const addresses = line.match(/\d+\.\d+\.\d+\.\d+|[0-9a-f]{2}(?::[0-9a-f]{2}){5}/g) ?? [];
    return ["ARP", /Request|Reply/.exec(line)?.[0] ?? "?", ...addresses];
  }
  const ip = /^(IP6?) (\S+) > (\S+): (.*)$/.exec(line);
  if (!ip) throw new Error(`not an ARP or IP line: ${line}`);
  const [, version, source, destination, rest] = ip;
  const transport = /\bUDP, length \d+/.exec(rest)?.[0] ??
    /\bFlags \[[^\]]*\]/.exec(rest)?.[0] ??
    /\bICMP6?,? [^,]+/.exec(rest)?.[0]?.replace("ICMP6,", "ICMP6") ??
    "?";
  return [version, source, destination, transport];
}

interface Tcpdump {
  lines: string[];
  stderr: string;
  verbose: string;
}

async function tcpdump(path: string): Promise<Tcpdump> {
  const run = async (flags: string[]) => {
    const output = await new Deno.Command("tcpdump", {
      args: ["-r", path, "-nn", ...flags],
      stdin: "null",
    }).output();
    assert(output.success, `tcpdump failed: ${decoder.decode(output.stderr)}`);
    return { stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
  };
  const plain = await run(["-t"]);
  const verbose = await run(["-t", "-vv"]);
  return {
    lines: plain.stdout.split("\n").filter((line) => line !== ""),
    stderr: plain.stderr,
    verbose: verbose.stdout,
  };
}

/** Writes the packets with PcapWriter, reads them with tcpdump and compares. */
async function assertTcpdumpAgrees(packets: Uint8Array[], link: LinkType): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const writer = new PcapWriter(await Deno.open(path, { write: true }), { link });
    for (const packet of packets) await writer.write(packet);
    await writer.close();

    const dump = await tcpdump(path);
    assertMatch(dump.stderr, link === "ip" ? /link-type RAW/ : /link-type EN10MB/);
    assertStrictEquals(dump.lines.length, packets.length, dump.lines.join("\n"));
    for (const line of dump.lines) {
      assert(!/truncated|malformed|bad-len|\[\|/i.test(line), `tcpdump warns: ${line}`);
    }
    // -vv verifies every IP, ICMP, TCP and UDP checksum it meets: "[udp sum ok]",
    // "cksum 0x3906 (correct)", or "bad", "incorrect" and "wrong" when one is not.
    assertMatch(dump.verbose, /sum ok|\(correct\)/);
    assert(!/\bbad\b|incorrect|wrong/i.test(dump.verbose), dump.verbose);
    for (let i = 0; i < packets.length; i++) {
      assertEquals(fields(summarize(packets[i], link)), fields(dump.lines[i]), `packet ${i}`);
    }
  } finally {
    await Deno.remove(path);
  }
}

/**
 * The peer's RST for the kernel's FIN. Unanswered, a closed socket retransmits
 * its FIN for minutes, into whichever device then holds the prefix: another
 * test's. A RST at the sequence the kernel expects ends the connection at once.
 */
function resetFor(fin: Uint8Array): Uint8Array {
  const layers = parsePacket(fin, "ip");
  const ip = ipLayer(layers);
  return buildTcp({
    source: ip.destination,
    destination: ip.source,
    sourcePort: layers.tcp!.destinationPort,
    destinationPort: layers.tcp!.sourcePort,
    sequence: layers.tcp!.acknowledgment,
    flags: { rst: true },
  });
}

/** Closes a connection to the device's fake peer and has the peer reset it. */
async function closeAndReset(tun: TunInterface, conn: Deno.Conn): Promise<void> {
  conn.close();
  const fin = await readParsed(tun, (p) => p.tcp?.flags.fin === true);
  await tun.write(resetFor(fin.bytes));
}

/** What the pcap tests answer: pings, UDP (echoed), TCP SYNs, and FINs with a reset. */
function answer(packet: Uint8Array): Uint8Array | undefined {
  const layers = parsePacket(packet, "ip");
  const ip = ipLayer(layers);
  const { icmp, udp, tcp } = layers;
  if (icmp?.type === 8 || icmp?.type === 128) return icmpEchoReply(packet);
  const swapped = { source: ip.destination, destination: ip.source };
  if (udp) {
    return buildUdp({
      ...swapped,
      sourcePort: udp.destinationPort,
      destinationPort: udp.sourcePort,
      payload: layers.payload,
    });
  }
  if (tcp?.flags.fin) return resetFor(packet);
  if (tcp?.flags.syn && !tcp.flags.ack) {
    return buildTcp({
      ...swapped,
      sourcePort: tcp.destinationPort,
      destinationPort: tcp.sourcePort,
      sequence: 100,
      acknowledgment: (tcp.sequence + 1) % 2 ** 32,
      flags: { syn: true, ack: true },
    });
  }
  return undefined;
}

kernelTest(
  "a PcapWriter file of TUN traffic (link type ip) reads back in tcpdump packet for packet, as summarize describes it",
  async () => {
    const tun = await openTun("pcapip");
    const packets: Uint8Array[] = [];
    // Records both ways: what the kernel sent and what the builders answered.
    const responder = (async () => {
      for await (const packet of tun) {
        packets.push(packet);
        const reply = answer(packet);
        if (reply) {
          packets.push(reply);
          await tun.write(reply);
        }
      }
    })();
    try {
      for (const { family, local, remote, pingFlags } of families) {
        const pinged = await ping(pingFlags, remote);
        assert(pinged.success, `ping ${remote}`);

        const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 40700 });
        try {
          await socket.send(encoder.encode(`pcap ${family}`), {
            transport: "udp",
            hostname: remote,
            port: 40701,
          });
          await within(socket.receive(), 5000, "UDP echo");
        } finally {
          socket.close();
        }

        const conn = await within(Deno.connect({ hostname: remote, port: 40702 }), 5000, "connect");
        // The responder answers the FIN with a reset; wait for it so that no
        // FIN outlives this test.
        const resets = () => packets.filter((p) => parsePacket(p, "ip").tcp?.flags.rst).length;
        const before = resets();
        conn.close();
        for (let i = 0; i < 250 && resets() === before; i++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert(resets() > before, "the responder reset the connection");
      }
    } finally {
      tun.close();
      await responder;
    }
    const lines = packets.map((packet) => summarize(packet, "ip"));
    for (const kind of [/ICMP echo reply/, /ICMP6, echo reply/, /UDP/, /Flags \[S\.\]/]) {
      assert(lines.some((line) => kind.test(line)), `no ${kind} among\n${lines.join("\n")}`);
    }
    await assertTcpdumpAgrees(packets, "ip");
  },
);

kernelTest(
  "a PcapWriter file of TAP frames (link type ethernet) reads back in tcpdump frame for frame, as summarize describes it",
  async () => {
    using tap = await openTap("pcapeth", ["198.51.100.1/24", "2001:db8:1::1/64"]);
    const frames: Uint8Array[] = [];
    const record = async (accept: (layers: ParsedPacket) => boolean) => {
      const signal = AbortSignal.timeout(5000);
      for (let i = 0; i < 1000; i++) {
        const frame = await tap.read({ signal });
        if (frame === null) throw new Error("device closed");
        frames.push(frame);
        const layers = parsePacket(frame, "ethernet");
        if (accept(layers)) return layers;
      }
      throw new Error("no matching frame among 1000");
    };
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "198.51.100.1", port: 40800 });
    try {
      await socket.send(encoder.encode("to the TAP"), {
        transport: "udp",
        hostname: "198.51.100.2",
        port: 40801,
      });
      const request = await record((p) => p.arp?.targetIp === "198.51.100.2");
      const peerMac = "02:00:5e:10:00:02";
      const reply = buildEthernet({
        destination: request.ethernet!.source,
        source: peerMac,
        etherType: EtherType.ARP,
        payload: buildArp({
          operation: 2,
          senderMac: peerMac,
          senderIp: "198.51.100.2",
          targetMac: request.arp!.senderMac,
          targetIp: "198.51.100.1",
        }),
      });
      frames.push(reply);
      await tap.write(reply);
      // Answered, the kernel sends the queued datagram to the MAC the reply gave.
      const udp = await record((p) => p.udp?.destinationPort === 40801);
      assertStrictEquals(udp.ethernet!.destination, peerMac);
    } finally {
      socket.close();
    }
    const socket6 = Deno.listenDatagram({ transport: "udp", hostname: "2001:db8:1::1", port: 0 });
    try {
      await socket6.send(encoder.encode("x"), {
        transport: "udp",
        hostname: "2001:db8:1::2",
        port: 40802,
      });
      await record((p) => p.icmp?.type === 135 && p.ipv6?.source === "2001:db8:1::1");
    } finally {
      socket6.close();
    }
    await assertTcpdumpAgrees(frames, "ethernet");
  },
);
