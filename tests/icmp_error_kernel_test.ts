/**
 * ICMP errors from buildIcmpError against the kernel, over a TUN device:
 * the kernel checks the checksum and matches the quoted header to a
 * socket, so a refused connection or a lowered path MTU proves the whole
 * message right.
 */
import type { TunInterface } from "../mod.ts";
import { buildIcmpError, buildUdp, type ParsedPacket, parsePacket } from "../packet/mod.ts";
import { assert, assertMatch, assertRejects, assertStrictEquals } from "./assert.ts";
import { eventually, openTun, tcpdumpVerbose } from "./icmp_kernel_helpers.ts";
import { kernelTest, readUntil, sh, within } from "./kernel.ts";

const families = [
  { family: 4, local: "192.0.2.1", remote: "192.0.2.7", router: "192.0.2.254", portUnreachable: 3 },
  {
    family: 6,
    local: "2001:db8::1",
    remote: "2001:db8::7",
    router: "2001:db8::fe",
    portUnreachable: 4,
  },
] as const;

/** Reads packets until one parses to something `accept` takes. */
async function readParsed(
  tun: TunInterface,
  accept: (parsed: ParsedPacket) => boolean,
): Promise<{ bytes: Uint8Array; parsed: ParsedPacket }> {
  let parsed: ParsedPacket | undefined;
  const bytes = await readUntil(tun, (packet) => accept(parsed = parsePacket(packet, "ip")));
  return { bytes, parsed: parsed! };
}

/** The kernel's ICMP or ICMPv6 counters of this namespace, by name. */
function icmpCounters(): Map<string, number> {
  const counters = new Map<string, number>();
  const snmp = Deno.readTextFileSync("/proc/net/snmp").split("\n");
  const names = snmp.find((line) => line.startsWith("Icmp: "))!.split(/\s+/);
  const values = snmp.filter((line) => line.startsWith("Icmp: "))[1].split(/\s+/);
  names.forEach((name, i) => i > 0 && counters.set(`Icmp${name}`, Number(values[i])));
  for (const line of Deno.readTextFileSync("/proc/net/snmp6").split("\n")) {
    const [name, value] = line.split(/\s+/);
    if (name?.startsWith("Icmp6")) counters.set(name, Number(value));
  }
  return counters;
}

kernelTest(
  "a port-unreachable written to a TUN device refuses the kernel's TCP connection, in both families",
  async () => {
    using tun = await openTun("icpu");
    for (const { family, remote, portUnreachable } of families) {
      const connecting = Deno.connect({ hostname: remote, port: 80 });
      const { bytes: syn } = await readParsed(
        tun,
        (p) => p.tcp?.flags.syn === true && (p.ipv4 ?? p.ipv6)!.destination === remote,
      );
      const error = buildIcmpError(syn, {
        type: "destination-unreachable",
        code: portUnreachable,
        source: remote,
      });
      await tun.write(error);
      await within(
        assertRejects(connecting, Deno.errors.ConnectionRefused),
        5000,
        `IPv${family} connection refused`,
      );
    }
  },
);

kernelTest(
  "a fragmentation-needed or packet-too-big written to a TUN device lowers the kernel's path MTU",
  async () => {
    using tun = await openTun("icmt");
    for (const { family, local, remote } of families) {
      const mtu = family === 4 ? 1200 : 1300;
      const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 40800 });
      try {
        await socket.send(new Uint8Array(1400), { transport: "udp", hostname: remote, port: 9 });
        const { bytes, parsed } = await readParsed(tun, (p) => p.udp?.destinationPort === 9);
        // Linux sets DF on UDP by default (path MTU discovery "want").
        if (family === 4) assert(parsed.ipv4!.dontFragment);
        const error = buildIcmpError(bytes, {
          type: family === 4 ? "fragmentation-needed" : "packet-too-big",
          mtu,
          source: remote,
        });
        // The IPv6 message is cut at 1280 bytes: the kernel reads the headers it needs.
        assertStrictEquals(error.length, family === 4 ? 576 : 1280);
        await tun.write(error);
        await eventually(
          () => sh(`ip -${family} route get ${remote}`).includes(`mtu ${mtu}`),
          `IPv${family} path MTU ${mtu}`,
        );
        assertMatch(sh(`ip -${family} route get ${remote}`), /expires/);
      } finally {
        socket.close();
      }
    }
  },
);

kernelTest(
  "time-exceeded errors written to a TUN device are counted by the kernel, not dropped",
  async () => {
    using tun = await openTun("icte");
    // Sockets for the quoted datagrams: without one the kernel counts the error in InErrors.
    const sockets = families.map(({ local }) =>
      Deno.listenDatagram({ transport: "udp", hostname: local, port: 40900 })
    );
    using _ = { [Symbol.dispose]: () => sockets.forEach((socket) => socket.close()) };
    const before = icmpCounters();
    for (const { local, remote, router } of families) {
      const datagram = buildUdp({
        source: local,
        destination: remote,
        sourcePort: 40900,
        destinationPort: 33434,
        ttl: 1,
      });
      await tun.write(buildIcmpError(datagram, { type: "time-exceeded", source: router }));
    }
    await eventually(() => {
      const after = icmpCounters();
      return after.get("IcmpInTimeExcds")! > before.get("IcmpInTimeExcds")! &&
        after.get("Icmp6InTimeExcds")! > before.get("Icmp6InTimeExcds")!;
    }, "the time-exceeded counters");
    const after = icmpCounters();
    for (const name of ["IcmpInErrors", "IcmpInCsumErrors", "Icmp6InErrors", "Icmp6InCsumErrors"]) {
      assertStrictEquals(after.get(name), before.get(name), name);
    }
  },
);

kernelTest("tcpdump decodes every kind of ICMP error without complaint", async () => {
  const packets = families.flatMap(({ family, local, remote, portUnreachable }) => {
    const datagram = buildUdp({
      source: local,
      destination: remote,
      sourcePort: 40000,
      destinationPort: 9,
      payload: new Uint8Array(1600),
    });
    return [
      buildIcmpError(datagram, {
        type: "destination-unreachable",
        code: portUnreachable,
        source: remote,
      }),
      buildIcmpError(datagram, { type: "time-exceeded", source: remote }),
      buildIcmpError(datagram, {
        type: family === 4 ? "fragmentation-needed" : "packet-too-big",
        mtu: 1280,
        source: remote,
      }),
    ];
  });
  const entries = await tcpdumpVerbose(packets, "ip");
  const expected = [
    /192\.0\.2\.7 > 192\.0\.2\.1: ICMP 192\.0\.2\.7 udp port 9 unreachable, length 556/,
    /ICMP time exceeded in-transit, length 556/,
    /ICMP 192\.0\.2\.7 unreachable - need to frag \(mtu 1280\), length 556/,
    /2001:db8::7 > 2001:db8::1: .*ICMP6, destination unreachable, unreachable port, 2001:db8::7 udp port 9/,
    /ICMP6, time exceeded in-transit/,
    /ICMP6, packet too big, mtu 1280/,
  ];
  entries.forEach((entry, i) => assertMatch(entry, expected[i]));
});
