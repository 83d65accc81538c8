/**
 * The in-place rewriters against the kernel: a small NAT between the
 * kernel's own sockets, built from rewriteAddress, rewritePort,
 * decrementTtl and clampMss, on plain packets and on the TSO super-packets
 * of offload devices, whose checksums the kernel completes
 * (`partialChecksum`). The kernel drops packets with a bad IPv4
 * header, TCP, UDP or ICMP checksum, so every delivery proves the
 * incrementally updated checksums; the rewrites change addresses and ports
 * to new values (not a swap, which would leave every sum the same).
 */
import { TunInterface } from "../mod.ts";
import {
  clampMss,
  decrementTtl,
  parseIp,
  parsePacket,
  parseVirtioNetHeader,
  rewriteAddress,
  type RewriteOptions,
  rewritePort,
  VIRTIO_NET_HDR_SIZE,
  VirtioNetHeaderFlag,
} from "../packet/mod.ts";
import { assert, assertEquals, assertStrictEquals } from "./assert.ts";
import { kernelTest, readUntil, sh, uniqueName, within } from "./kernel.ts";

const families = [
  {
    name: "IPv4",
    local: "192.0.2.1",
    // Where the kernel's sockets send to, and where the NAT makes the other
    // side's packets come from: both routed through the device.
    server: "192.0.2.7",
    mapped: "192.0.2.99",
    ping: [] as string[],
  },
  {
    name: "IPv6",
    local: "2001:db8::1",
    server: "2001:db8::7",
    mapped: "2001:db8::99",
    ping: ["-6"],
  },
] as const;

/**
 * A TUN device holding `addresses` (default 192.0.2.1/24 and
 * 2001:db8::1/64), once its IPv6 address is usable; with `offload`, with a
 * virtio-net header and checksum and TCP segmentation offload.
 */
async function openDevice(
  addresses = ["192.0.2.1/24", "2001:db8::1/64"],
  offload = false,
): Promise<TunInterface> {
  const tun = TunInterface.open({
    name: uniqueName("rwr"),
    addresses,
    up: true,
    ...(offload ? { vnetHeader: true, offload: { checksum: true, tso4: true, tso6: true } } : {}),
  });
  // The kernel makes a new IPv6 address local a moment later, and drops
  // what arrives for it until then.
  const v6 = addresses.find((cidr) => cidr.includes(":"))!.split("/")[0];
  for (let i = 0; i < 100; i++) {
    if (sh(`ip -6 route show table local dev ${tun.name}`).includes(`local ${v6} `)) {
      return tun;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  tun.close();
  throw new Error(`${v6} never became local`);
}

const isV6 = (packet: Uint8Array) => packet[0] >> 4 === 6;
/** The protocol of a packet without IPv6 extension headers (what the kernel sends here). */
const protocolOf = (packet: Uint8Array) => isV6(packet) ? packet[6] : packet[9];
const transportOf = (packet: Uint8Array) => isV6(packet) ? 40 : (packet[0] & 0x0f) * 4;
const read16 = (bytes: Uint8Array, at: number) => (bytes[at] << 8) | bytes[at + 1];
const sameAddress = (packet: Uint8Array, at: number, address: string) => {
  const bytes = parseIp(address);
  return bytes.every((byte, i) => packet[at + i] === byte);
};
const destinationIs = (packet: Uint8Array, address: string) =>
  sameAddress(packet, isV6(packet) ? 24 : 16, address);

kernelTest(
  "the kernel accepts UDP datagrams and ICMP echoes given new addresses, ports and echo ids (IPv4 and IPv6)",
  async () => {
    using tun = await openDevice();
    for (const family of families) {
      // UDP: a datagram for server:5000 reaches a second local socket as if
      // sent from mapped:7777.
      const sender = Deno.listenDatagram({
        transport: "udp",
        hostname: family.local,
        port: 5001,
      });
      const receiver = Deno.listenDatagram({
        transport: "udp",
        hostname: family.local,
        port: 5002,
      });
      try {
        await sender.send(new TextEncoder().encode(`hello ${family.name}`), {
          transport: "udp",
          hostname: family.server,
          port: 5000,
        });
        const packet = await readUntil(
          tun,
          (p) => protocolOf(p) === 17 && destinationIs(p, family.server),
        );
        rewriteAddress(packet, { source: family.mapped, destination: family.local });
        rewritePort(packet, { source: 7777, destination: 5002 });
        assertStrictEquals(decrementTtl(packet), 63);
        await tun.write(packet);
        const [data, from] = await within(receiver.receive(), 5000, `${family.name} datagram`);
        assertEquals(new TextDecoder().decode(data), `hello ${family.name}`);
        assertEquals(from, { transport: "udp", hostname: family.mapped, port: 7777 });
      } finally {
        sender.close();
        receiver.close();
      }

      // ICMP echo: ping's request to the server is handed to the kernel as
      // a request from mapped with identifier 4242; the kernel's reply is
      // mapped back, and ping counts it.
      const ping = new Deno.Command("ping", {
        args: [...family.ping, "-c", "1", "-W", "5", "-e", "1234", family.server],
        stdin: "null",
        stdout: "null",
      }).output();
      const [echo, echoReply] = family.name === "IPv4" ? [8, 0] : [128, 129];
      const request = await readUntil(
        tun,
        (p) => p[transportOf(p)] === echo && destinationIs(p, family.server),
      );
      rewriteAddress(request, { source: family.mapped, destination: family.local });
      rewritePort(request, { source: 4242 });
      await tun.write(request);
      const reply = await readUntil(
        tun,
        (p) => p[transportOf(p)] === echoReply && destinationIs(p, family.mapped),
      );
      assertStrictEquals(read16(reply, transportOf(reply) + 4), 4242);
      rewriteAddress(reply, { source: family.server, destination: family.local });
      rewritePort(reply, { destination: 1234 });
      await tun.write(reply);
      const result = await ping;
      assert(result.success, `ping ${family.server} got no reply through the rewrites`);
    }
  },
);

kernelTest(
  "a TCP connection works through a rewriting NAT that clamps the MSS to 1000 (IPv4 and IPv6)",
  async () => {
    using tun = await openDevice();
    for (const family of families) {
      // The client connects to server:80; the NAT hands its packets to a
      // listener on local:8080 as if from mapped:7777, and maps the
      // listener's answers back.
      using listener = Deno.listen({ hostname: family.local, port: 8080 });
      const stop = new AbortController();
      let clamped = 0;
      let largest = 0;
      let clientPort = -1;
      const nat = (async () => {
        for (let i = 0; i < 2000; i++) {
          const packet = await tun.read({ signal: stop.signal });
          if (packet === null || protocolOf(packet) !== 6) continue;
          const t = transportOf(packet);
          if (destinationIs(packet, family.server) && read16(packet, t + 2) === 80) {
            clientPort = read16(packet, t);
            rewriteAddress(packet, { source: family.mapped, destination: family.local });
            rewritePort(packet, { source: 7777, destination: 8080 });
          } else if (destinationIs(packet, family.mapped) && read16(packet, t + 2) === 7777) {
            rewriteAddress(packet, { source: family.server, destination: family.local });
            rewritePort(packet, { source: 80, destination: clientPort });
            largest = Math.max(largest, parsePacket(packet, "ip").payload.length);
          } else {
            continue;
          }
          if (clampMss(packet, 1000)) clamped++;
          decrementTtl(packet);
          await tun.write(packet);
        }
      })();
      nat.catch(() => {});
      try {
        const accepted = listener.accept();
        accepted.catch(() => {}); // rejected by the listener's close when connect fails
        using client = await within(
          Deno.connect({ hostname: family.server, port: 80 }),
          5000,
          `${family.name} connect`,
        );
        using server = await within(accepted, 5000, `${family.name} accept`);
        assertEquals(server.remoteAddr, {
          transport: "tcp",
          hostname: family.mapped,
          port: 7777,
        });
        const data = new Uint8Array(20_000).map((_, i) => i * 7);
        await server.write(data);
        const received = new Uint8Array(data.length);
        let at = 0;
        while (at < data.length) {
          const n = await within(client.read(received.subarray(at)), 5000, "data");
          if (n === null) break;
          at += n;
        }
        assertEquals(received, data);
        // Both SYNs carried the kernel's MSS (above 1000) and were clamped,
        // so the listener sent segments of at most 1000 bytes.
        assert(clamped >= 2, `${clamped} SYNs clamped`);
        assert(largest > 0 && largest <= 1000, `largest segment ${largest}`);
      } finally {
        stop.abort();
        await nat.catch(() => {});
      }
    }
  },
);

const PARTIAL: RewriteOptions = { partialChecksum: true };

kernelTest(
  "TSO super-packets rewritten with partialChecksum between offload devices get right checksums from the kernel and reach a socket (IPv4 and IPv6)",
  async () => {
    // A socket delivered to locally trusts a checksum left partial, so the
    // proof goes through forwarding: what the test writes into the offload
    // devices a and b is for a network behind the plain device c, where the
    // kernel has to complete each checksum itself (and cut each
    // super-packet into segments). The test reads those from c, checks
    // every checksum, and hands them back to c for the local sockets.
    //   client → server:80 (a) ⇒ from mapped:7777 to far:8080 (into b) → c ⇒ to the listener
    //   listener → mapped:7777 (b) ⇒ from server:80 to back (into a) → c ⇒ to the client
    using a = await openDevice(["192.0.2.1/24", "2001:db8::1/64"], true);
    using b = await openDevice(["198.51.100.1/24", "2001:db8:1::1/64"], true);
    using c = await openDevice(["203.0.113.1/24", "2001:db8:2::1/64"]);
    // Routing on for the test only: later tests in this namespace expect a host (an IPv6
    // router answers neighbour solicitations with the router flag set).
    const routing = sh("sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding").split("\n");
    sh("sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
    using _restore = {
      [Symbol.dispose]: () =>
        void sh(
          `sysctl -qw net.ipv4.ip_forward=${routing[0]} net.ipv6.conf.all.forwarding=${routing[1]}`,
        ),
    };
    // Room for a burst when the relays fall behind on a loaded machine: a drop costs TCP a
    // retransmission timeout, which backs off for seconds.
    for (const tun of [a, b, c]) tun.setTxQueueLength(10_000);
    const sides = [
      {
        name: "IPv4",
        client: "192.0.2.1",
        server: "192.0.2.7",
        mapped: "198.51.100.99",
        listen: "203.0.113.1",
        far: "203.0.113.5",
        back: "203.0.113.6",
      },
      {
        name: "IPv6",
        client: "2001:db8::1",
        server: "2001:db8::7",
        mapped: "2001:db8:1::99",
        listen: "2001:db8:2::1",
        far: "2001:db8:2::5",
        back: "2001:db8:2::6",
      },
    ] as const;
    for (const side of sides) {
      using listener = Deno.listen({ hostname: side.listen, port: 8080 });
      const stop = new AbortController();
      let clientPort = -1;
      const seen = { superPackets: 0, segments: 0, badChecksums: 0 };
      /** Moves TCP packets from `from` to `to` through `translate` until stopped. */
      const relay = async (
        from: TunInterface,
        to: TunInterface,
        translate: (packet: Uint8Array, options?: RewriteOptions) => boolean,
      ) => {
        const offset = from === c ? 0 : VIRTIO_NET_HDR_SIZE;
        const buffer = new Uint8Array(from.readBufferSize);
        for (let i = 0; i < 50_000; i++) {
          const n = await from.readInto(buffer, { signal: stop.signal });
          if (n === null) return;
          const packet = buffer.subarray(offset, n);
          if (protocolOf(packet) !== 6) continue;
          let options: RewriteOptions | undefined;
          if (offset !== 0) {
            const header = parseVirtioNetHeader(buffer);
            if (header.gsoType !== 0) seen.superPackets++;
            if (header.flags & VirtioNetHeaderFlag.NEEDS_CSUM) options = PARTIAL;
          }
          if (!translate(packet, options)) continue;
          // The lengths did not change: a virtio-net header goes on as it came.
          await to.write(buffer.subarray(0, n));
        }
      };
      const relays = [
        relay(a, b, (packet, options) => {
          const t = transportOf(packet);
          if (!destinationIs(packet, side.server) || read16(packet, t + 2) !== 80) return false;
          clientPort = read16(packet, t);
          clampMss(packet, 1200, options);
          rewriteAddress(packet, { source: side.mapped, destination: side.far }, options);
          rewritePort(packet, { source: 7777, destination: 8080 }, options);
          return true;
        }),
        relay(b, a, (packet, options) => {
          const t = transportOf(packet);
          if (!destinationIs(packet, side.mapped) || read16(packet, t + 2) !== 7777) return false;
          clampMss(packet, 1200, options);
          rewriteAddress(packet, { source: side.server, destination: side.back }, options);
          rewritePort(packet, { source: 80, destination: clientPort }, options);
          return true;
        }),
        // What the kernel forwarded to c, its checksums complete: checked, then delivered.
        relay(c, c, (packet) => {
          const to = destinationIs(packet, side.far)
            ? side.listen
            : destinationIs(packet, side.back)
            ? side.client
            : undefined;
          if (to === undefined) return false;
          const { ipv4, tcp } = parsePacket(packet, "ip");
          seen.segments++;
          if (!tcp?.checksumValid || (ipv4 && !ipv4.checksumValid)) seen.badChecksums++;
          rewriteAddress(packet, { destination: to });
          return true;
        }),
      ];
      // A relay that failed would show only as a stalled transfer: report its error instead.
      const relayErrors: unknown[] = [];
      for (const running of relays) {
        running.catch((error) => void (stop.signal.aborted || relayErrors.push(error)));
      }
      try {
        const accepted = listener.accept();
        accepted.catch(() => {});
        using client = await within(
          Deno.connect({ hostname: side.server, port: 80 }),
          5000,
          `${side.name} connect`,
        );
        using server = await within(accepted, 5000, `${side.name} accept`);
        assertEquals(server.remoteAddr, { transport: "tcp", hostname: side.mapped, port: 7777 });
        const up = new Uint8Array(1 << 20).map((_, i) => i * 7 + (i >> 10));
        const down = new Uint8Array(1 << 20).map((_, i) => i * 11 + (i >> 9));
        const transfer = async (from: Deno.Conn, to: Deno.Conn, data: Uint8Array) => {
          const writing = (async () => {
            for (let at = 0; at < data.length;) at += await from.write(data.subarray(at));
          })();
          const received = new Uint8Array(data.length);
          for (let at = 0; at < data.length;) {
            // Generous: a run takes about a second, but losses back off for seconds.
            const n = await within(to.read(received.subarray(at)), 20_000, `${side.name} data`);
            if (n === null) break;
            at += n;
          }
          await writing;
          return received;
        };
        assertEquals(await transfer(client, server, up), up);
        assertEquals(await transfer(server, client, down), down);
        assert(seen.superPackets > 0 && seen.segments > 700, JSON.stringify(seen));
        assertStrictEquals(seen.badChecksums, 0, JSON.stringify(seen));
      } catch (error) {
        throw relayErrors[0] ?? error;
      } finally {
        stop.abort();
        await Promise.all(relays.map((running) => running.catch(() => {})));
      }
    }
  },
);
