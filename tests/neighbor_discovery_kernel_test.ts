/**
 * The neighbour discovery builders against the kernel, over a TAP device:
 * the kernel drops discovery messages with a wrong hop limit or checksum,
 * so every answer and every table entry it makes proves a message right.
 */
import { TunInterface } from "../mod.ts";
import {
  buildEthernet,
  buildNeighborAdvertisement,
  buildNeighborSolicitation,
  buildRouterAdvertisement,
  buildRouterSolicitation,
  EtherType,
  formatIp,
  formatMac,
  ipv6MulticastMac,
  type ParsedPacket,
  parsePacket,
} from "../packet/mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "./assert.ts";
import { eventually, openTap, tcpdumpVerbose } from "./icmp_kernel_helpers.ts";
import { kernelTest, readUntil, sh, uniqueName } from "./kernel.ts";

const PEER_MAC = "02:00:5e:00:53:02";
const LOCAL = "2001:db8::1";
const PEER = "2001:db8::2";

/**
 * Frames an IPv6 packet from `source`: to the MAC address its multicast
 * destination maps to, else to `destination`.
 */
function frame(packet: Uint8Array, source: string, destination = source): Uint8Array {
  const multicast = packet[24] === 0xff;
  return buildEthernet({
    destination: multicast ? ipv6MulticastMac(packet.subarray(24, 40)) : destination,
    source,
    etherType: EtherType.IPV6,
    payload: packet,
  });
}

/** A frame read back, with its layers. */
interface Read {
  bytes: Uint8Array;
  parsed: ParsedPacket;
}

/** Reads frames until one parses to an ICMPv6 message of `type` that `accept` takes. */
async function readIcmpv6(
  tap: TunInterface,
  type: number,
  accept: (parsed: ParsedPacket) => boolean = () => true,
): Promise<Read> {
  let parsed: ParsedPacket | undefined;
  const bytes = await readUntil(tap, (frame) => {
    parsed = parsePacket(frame, "ethernet");
    return parsed.icmp?.type === type && accept(parsed);
  });
  return { bytes, parsed: parsed! };
}

/** The R, S and O flags, target and target link-layer option of a read advertisement. */
function advertisement({ bytes, parsed }: Read) {
  const body = parsed.payload;
  return {
    flags: bytes[parsed.icmp!.offset + 4],
    target: formatIp(body.subarray(0, 16)),
    option: [...body.subarray(16, 18)],
    mac: formatMac(body.subarray(18, 24)),
  };
}

kernelTest(
  "the kernel answers a neighbor solicitation written to a TAP device with a solicited advertisement",
  async () => {
    using tap = await openTap("ndns", [`${LOCAL}/64`]);
    const solicitation = buildNeighborSolicitation({
      source: PEER,
      target: LOCAL,
      sourceMac: PEER_MAC,
    });
    await tap.write(frame(solicitation, PEER_MAC));
    const answer = await readIcmpv6(tap, 136, (p) => p.ipv6?.destination === PEER);
    const { ethernet, ipv6, icmp } = answer.parsed;
    assertEquals([ethernet?.destination, ethernet?.source], [PEER_MAC, tap.mac]);
    assertStrictEquals(ipv6!.hopLimit, 255);
    assert(icmp!.checksumValid);
    // Solicited and override (0x60), for the kernel's own address and MAC.
    assertEquals(advertisement(answer), {
      flags: 0x60,
      target: LOCAL,
      option: [2, 1],
      mac: tap.mac,
    });

    // A duplicate address detection probe from :: is answered to all nodes, unsolicited.
    const probe = buildNeighborSolicitation({ source: "::", target: LOCAL });
    await tap.write(frame(probe, PEER_MAC));
    const defence = await readIcmpv6(tap, 136, (p) => p.ipv6?.destination === "ff02::1");
    assertStrictEquals(defence.parsed.ethernet?.destination, "33:33:00:00:00:01");
    assertEquals(advertisement(defence), {
      flags: 0x20,
      target: LOCAL,
      option: [2, 1],
      mac: tap.mac,
    });
  },
);

kernelTest(
  "the kernel resolves a neighbour through a solicited advertisement written to a TAP device",
  async () => {
    using tap = await openTap("ndna", [`${LOCAL}/64`]);
    const socket = Deno.listenDatagram({ transport: "udp", hostname: LOCAL, port: 40700 });
    try {
      await socket.send(new Uint8Array([1]), { transport: "udp", hostname: PEER, port: 9 });
      const { parsed: question } = await readIcmpv6(
        tap,
        135,
        (p) => formatIp(p.payload.subarray(0, 16)) === PEER,
      );
      assertStrictEquals(question.ipv6!.source, LOCAL);
      const answer = buildNeighborAdvertisement({
        source: PEER,
        destination: question.ipv6!.source,
        target: PEER,
        targetMac: PEER_MAC,
        solicited: true,
      });
      await tap.write(frame(answer, PEER_MAC, question.ethernet!.source));

      // The queued datagram goes out to the advertised MAC address.
      const datagram = await readUntil(tap, (bytes) => {
        const parsed = parsePacket(bytes, "ethernet");
        return parsed.udp?.destinationPort === 9;
      });
      const parsed = parsePacket(datagram, "ethernet");
      assertStrictEquals(parsed.ethernet!.destination, PEER_MAC);
      assertStrictEquals(parsed.ipv6!.destination, PEER);
      assertMatch(
        sh(`ip -6 neigh show ${PEER} dev ${tap.name}`),
        /lladdr 02:00:5e:00:53:02 REACHABLE/,
      );
    } finally {
      socket.close();
    }
  },
);

kernelTest(
  "the kernel takes the prefix, MTU, router and link-layer address of a router advertisement written to a TAP device",
  async () => {
    using tap = TunInterface.open({ name: uniqueName("ndra"), mode: "tap" });
    // A host that takes advertisements: accept_ra 2 takes them even with forwarding on.
    sh(
      `sysctl -qw net.ipv6.conf.${tap.name}.accept_ra=2 net.ipv6.conf.${tap.name}.forwarding=0 ` +
        `net.ipv6.conf.${tap.name}.accept_dad=0 && ip link set ${tap.name} up`,
    );
    const router = "fe80::5e:fe";
    const advertisementPacket = buildRouterAdvertisement({
      source: router,
      sourceMac: PEER_MAC,
      mtu: 1400,
      routerLifetime: 600,
      prefixes: [{ prefix: "2001:db8:1::/64", validLifetime: 3600, preferredLifetime: 1800 }],
    });
    await tap.write(frame(advertisementPacket, PEER_MAC));

    // The on-link prefix becomes a route that expires with the valid lifetime.
    await eventually(
      () => /expires 3[0-9]{3}sec/.test(sh(`ip -6 route show 2001:db8:1::/64 dev ${tap.name}`)),
      "the prefix route",
    );
    assertMatch(sh(`ip -6 route show default dev ${tap.name}`), /via fe80::5e:fe .*proto ra/);
    assertStrictEquals(
      Deno.readTextFileSync(`/proc/sys/net/ipv6/conf/${tap.name}/mtu`).trim(),
      "1400",
    );
    // Stateless autoconfiguration formed an address in the prefix.
    await eventually(
      () =>
        /inet6 2001:db8:1:0:[0-9a-f:]+\/64 scope global dynamic/.test(
          sh(`ip -6 addr show dev ${tap.name}`),
        ),
      "the autoconfigured address",
    );
    assertMatch(
      sh(`ip -6 neigh show ${router} dev ${tap.name}`),
      /lladdr 02:00:5e:00:53:02 .*router/,
    );
  },
);

kernelTest("tcpdump decodes every neighbour discovery message without complaint", async () => {
  const packets = [
    buildNeighborSolicitation({ source: PEER, target: LOCAL, sourceMac: PEER_MAC }),
    buildNeighborSolicitation({ source: "::", target: LOCAL }),
    buildNeighborAdvertisement({
      source: LOCAL,
      destination: PEER,
      target: LOCAL,
      targetMac: PEER_MAC,
      solicited: true,
      router: true,
    }),
    buildRouterSolicitation({ source: "fe80::2", sourceMac: PEER_MAC }),
    buildRouterAdvertisement({
      source: "fe80::1",
      sourceMac: PEER_MAC,
      mtu: 1400,
      prefixes: [{ prefix: "2001:db8:1::/64" }],
    }),
  ];
  const entries = await tcpdumpVerbose(packets.map((p) => frame(p, PEER_MAC)), "ethernet");
  const expected = [
    /neighbor solicitation, length 32, who has 2001:db8::1\n[^]*source link-address option .*02:00:5e:00:53:02/,
    /:: > ff02::1:ff00:1: .*neighbor solicitation, length 24, who has 2001:db8::1/,
    /neighbor advertisement, length 32, tgt is 2001:db8::1, Flags \[router, solicited, override\]/,
    /router solicitation, length 16\n[^]*source link-address option/,
    /router advertisement, length 64\n[^]*hop limit 64, Flags \[none\][^]*router lifetime 1800s[^]*mtu option .*1400[^]*prefix info option .*2001:db8:1::\/64, Flags \[onlink, auto\], valid time 2592000s, pref. time 604800s/,
  ];
  entries.forEach((entry, i) => assertMatch(entry, expected[i]));
  for (const entry of entries) assertMatch(entry, /hlim 255/);
});
