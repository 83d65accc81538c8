/**
 * Segmentation offload against the kernel: what a TCP socket sends through
 * a device with TSO arrives as super-packets that gsoSplit turns into valid
 * MTU-sized segments, and what groCoalesce builds the kernel accepts and
 * delivers to a socket, every byte in order. A fake peer in this process
 * plays the other end of each connection.
 */
import { TunInterface } from "../mod.ts";
import {
  buildTcp,
  buildUdp,
  buildVirtioNetHeader,
  groCoalesce,
  gsoSplit,
  type ParsedPacket,
  parsePacket,
  parseVirtioNetHeader,
  type TcpFlags,
  VIRTIO_NET_HDR_SIZE,
  VirtioNetGsoType,
  type VirtioNetHeader,
} from "../packet/mod.ts";
import { assert, assertEquals, assertStrictEquals } from "./assert.ts";
import { kernelTest, readUntil, sh, uniqueName, within } from "./kernel.ts";
import { patterned, withIdentification, withTcpOptions } from "./packet/gso_arbitraries.ts";

const MTU = 1500;
/** The fake peer's initial sequence number. */
const PEER_ISN = 1_000_000;

const families = [
  { family: "IPv4", local: "192.0.2.1", remote: "192.0.2.7", mss: 1460 },
  { family: "IPv6", local: "2001:db8::1", remote: "2001:db8::7", mss: 1440 },
] as const;

type Family = (typeof families)[number];

/**
 * Opens a device with every offload on and waits until its IPv6 address is
 * local: the kernel makes it so a moment later, on its addrconf work queue,
 * and drops what arrives for it until then.
 */
async function openOffload(prefix: string): Promise<TunInterface> {
  const tun = TunInterface.open({
    name: uniqueName(prefix),
    addresses: ["192.0.2.1/24", "2001:db8::1/64"],
    mtu: MTU,
    up: true,
    vnetHeader: true,
    offload: { checksum: true, tso4: true, tso6: true, uso4: true, uso6: true },
  });
  for (let i = 0; i < 100; i++) {
    if (sh(`ip -6 route show table local dev ${tun.name}`).includes("local 2001:db8::1 ")) {
      return tun;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  tun.close();
  throw new Error(`the IPv6 address of ${tun.name} never became local`);
}

/** A packet read from the device: its header, IP length and segments. */
interface OffloadRead {
  header: VirtioNetHeader;
  length: number;
  segments: ParsedPacket[];
}

/**
 * Reads until a TCP or UDP packet to or from `port` arrives, splits it
 * into MTU-sized packets and checks that each is whole and valid.
 */
async function readPort(tun: TunInterface, port: number): Promise<OffloadRead> {
  const raw = await readUntil(tun, (packet) => {
    const { tcp, udp } = parsePacket(packet.subarray(VIRTIO_NET_HDR_SIZE), "ip");
    const ports = tcp ?? udp;
    return ports?.sourcePort === port || ports?.destinationPort === port;
  });
  const header = parseVirtioNetHeader(raw);
  const packet = raw.subarray(VIRTIO_NET_HDR_SIZE);
  const segments = gsoSplit(packet, header, MTU).map((segment) => {
    assert(segment.length <= MTU, `a segment of ${segment.length} bytes exceeds the MTU`);
    const parsed = parsePacket(segment, "ip");
    if (parsed.ipv4) assert(parsed.ipv4.checksumValid, "IPv4 header checksum");
    assert((parsed.tcp ?? parsed.udp)?.checksumValid, "transport checksum");
    return parsed;
  });
  return { header, length: packet.length, segments };
}

/** `packet` behind an all-zero virtio-net header: nothing left to do. */
function plain(packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(VIRTIO_NET_HDR_SIZE + packet.length);
  buildVirtioNetHeader({}, out);
  out.set(packet, VIRTIO_NET_HDR_SIZE);
  return out;
}

/** A TCP segment from the fake peer at `remote` to the kernel at `local`. */
function fromPeer(
  { local, remote }: Family,
  ports: { peer: number; kernel: number },
  fields: {
    sequence: number;
    acknowledgment?: number;
    flags: Partial<TcpFlags>;
    payload?: Uint8Array;
  },
): Uint8Array {
  return buildTcp({
    source: remote,
    destination: local,
    sourcePort: ports.peer,
    destinationPort: ports.kernel,
    window: 65535,
    ...fields,
  });
}

/** The SYN's MSS option, so the kernel sends full-sized segments. */
function withMss(packet: Uint8Array, mss: number): Uint8Array {
  return withTcpOptions(packet, new Uint8Array([2, 4, mss >> 8, mss & 0xff]));
}

kernelTest(
  "a kernel TCP sender's TSO super-packets split into valid MTU-sized segments that carry the stream (IPv4 and IPv6)",
  async () => {
    using tun = await openOffload("otso");
    for (const [index, family] of families.entries()) {
      const peerPort = 40810 + index;
      const total = 512 * 1024;
      const data = patterned(total, index);
      const connecting = Deno.connect({ hostname: family.remote, port: peerPort });
      connecting.catch(() => {});
      const syn = (await readPort(tun, peerPort)).segments[0].tcp!;
      assert(syn.flags.syn, "the connection starts with a SYN");
      const ports = { peer: peerPort, kernel: syn.sourcePort };
      const base = (syn.sequence + 1) >>> 0;
      await tun.write(plain(withMss(
        fromPeer(family, ports, {
          sequence: PEER_ISN,
          acknowledgment: base,
          flags: { syn: true, ack: true },
        }),
        family.mss,
      )));
      const conn = await within(connecting, 5000, "connect");
      try {
        const writing = (async () => {
          for (let at = 0; at < total;) at += await conn.write(data.subarray(at));
        })();
        writing.catch(() => {});
        const received = new Uint8Array(total);
        let next = 0;
        let superPackets = 0;
        for (let reads = 0; next < total && reads < 20000; reads++) {
          const { header, length, segments } = await readPort(tun, peerPort);
          if (header.gsoType !== VirtioNetGsoType.NONE) {
            assertStrictEquals(
              header.gsoType & ~VirtioNetGsoType.ECN,
              family.family === "IPv4" ? VirtioNetGsoType.TCPV4 : VirtioNetGsoType.TCPV6,
            );
            if (length > MTU) superPackets++;
          }
          for (const { tcp, payload } of segments) {
            const offset = (tcp!.sequence - base) >>> 0;
            // A retransmission lies before `next`; nothing is lost on a TUN
            // device, so nothing lies beyond it.
            if (offset === next) {
              received.set(payload, next);
              next += payload.length;
            } else {
              assert(offset < next || offset > 0x80000000, `a hole before ${offset}`);
            }
          }
          await tun.write(plain(fromPeer(family, ports, {
            sequence: PEER_ISN + 1,
            acknowledgment: (base + next) >>> 0,
            flags: { ack: true },
          })));
        }
        await within(writing, 5000, "the socket's writes");
        assertEquals(received, data);
        assert(superPackets > 0, "no TSO super-packet larger than the MTU was read");
      } finally {
        // The peer resets the connection, so no FIN outlives the test.
        await tun.write(
          plain(fromPeer(family, ports, { sequence: PEER_ISN + 1, flags: { rst: true } })),
        );
        conn.close();
      }
    }
  },
);

kernelTest(
  "groCoalesce'd TCP super-packets written to an offload device reach a kernel socket, every byte in order (IPv4 and IPv6)",
  async () => {
    using tun = await openOffload("ogro");
    for (const [index, family] of families.entries()) {
      const port = 40820 + index;
      const ports = { peer: 50000 + index, kernel: port };
      const total = 300_000;
      const segment = 1000;
      const data = patterned(total, 3 + index);
      using listener = Deno.listen({ hostname: family.local, port });
      const accepting = listener.accept();
      await tun.write(plain(withMss(
        fromPeer(family, ports, { sequence: PEER_ISN, flags: { syn: true } }),
        family.mss,
      )));
      const synAck = (await readPort(tun, ports.peer)).segments[0].tcp!;
      assert(synAck.flags.syn && synAck.flags.ack, "the kernel answers with a SYN-ACK");
      const acknowledgment = (synAck.sequence + 1) >>> 0;
      const start = PEER_ISN + 1;
      await tun.write(plain(fromPeer(family, ports, {
        sequence: start,
        acknowledgment,
        flags: { ack: true },
      })));
      const conn = await within(accepting, 5000, "accept");
      let sent = 0;
      try {
        const reading = (async () => {
          const received = new Uint8Array(total);
          for (let at = 0; at < total;) {
            const n = await conn.read(received.subarray(at));
            if (n === null) throw new Error(`the connection ended after ${at} bytes`);
            at += n;
          }
          return received;
        })();
        reading.catch(() => {});
        let identification = 1;
        let superPackets = 0;
        // Rounds of 30 segments stay within the 64 KiB unscaled window.
        while (sent < total) {
          const segments: Uint8Array[] = [];
          for (let i = 0; i < 30 && sent < total; i++) {
            const size = Math.min(segment, total - sent);
            const last = i === 29 || sent + size === total;
            const packet = fromPeer(family, ports, {
              sequence: start + sent,
              acknowledgment,
              flags: { ack: true, psh: last },
              payload: data.subarray(sent, sent + size),
            });
            segments.push(
              family.family === "IPv4" ? withIdentification(packet, identification++) : packet,
            );
            sent += size;
          }
          const writes = groCoalesce(segments);
          superPackets += writes.filter((write) =>
            parseVirtioNetHeader(write).gsoType !== 0
          ).length;
          assertStrictEquals(await tun.writeBatch(writes), writes.length);
          const end = (start + sent) >>> 0;
          await readUntil(tun, (packet) => {
            const tcp = parsePacket(packet.subarray(VIRTIO_NET_HDR_SIZE), "ip").tcp;
            return tcp?.destinationPort === ports.peer && tcp.acknowledgment === end;
          });
        }
        assertEquals(await within(reading, 5000, "the socket's reads"), data);
        assert(superPackets >= total / segment / 30, "every round went out as a super-packet");
      } finally {
        await tun.write(plain(fromPeer(family, ports, {
          sequence: start + sent,
          flags: { rst: true },
        })));
        conn.close();
      }
    }
  },
);

kernelTest(
  "groCoalesce'd UDP super-packets written to an offload device reach a kernel socket as the datagrams, in order (IPv4 and IPv6)",
  async () => {
    using tun = await openOffload("ouso");
    for (const [index, { local, remote }] of families.entries()) {
      const port = 40830 + index;
      const datagrams = Array.from({ length: 100 }, (_, i) => {
        const packet = buildUdp({
          source: remote,
          destination: local,
          sourcePort: 50010,
          destinationPort: port,
          payload: patterned(i === 99 ? 300 : 1200, i),
        });
        return index === 0 ? withIdentification(packet, 500 + i) : packet;
      });
      const writes = groCoalesce(datagrams);
      assertEquals(
        writes.map((write) => parseVirtioNetHeader(write).gsoType),
        [VirtioNetGsoType.UDP_L4, VirtioNetGsoType.UDP_L4],
      );
      const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port });
      try {
        for (const write of writes) {
          const count = gsoSplit(
            write.subarray(VIRTIO_NET_HDR_SIZE),
            parseVirtioNetHeader(write),
            MTU,
          ).length;
          assertStrictEquals(await tun.write(write), write.length);
          // One super-packet at a time stays within the socket's receive buffer.
          for (let i = 0; i < count; i++) {
            const [bytes] = await within(socket.receive(), 5000, "a datagram");
            const expected = parsePacket(datagrams.shift()!, "ip").payload;
            assertEquals(bytes, expected);
          }
        }
      } finally {
        socket.close();
      }
      assertStrictEquals(datagrams.length, 0);
    }
  },
);
