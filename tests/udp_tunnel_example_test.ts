/**
 * examples/udp_tunnel.ts end to end: two network namespaces joined by a
 * veth pair, one tunnel end in each, and real traffic across the tunnel
 * (ping, and a bounded iperf3 TCP transfer), with and without offload.
 */
import { assert, assertMatch, assertStrictEquals } from "./assert.ts";
import { kernelTest, type Namespace, namespace, uniqueName, within } from "./kernel.ts";
import { Service } from "../bench/processes.ts";

const root = new URL("..", import.meta.url).pathname;

interface Tunnel extends AsyncDisposable {
  left: Namespace;
  right: Namespace;
  ends: Service[];
}

/**
 * Two namespaces joined by a veth pair with `outer` addresses (IPv4 or
 * IPv6), and the example in each with inner addresses 192.0.2.1-2/30 and
 * 2001:db8::1-2/64.
 */
async function startTunnel(
  options: { outer: [string, string]; prefix: number; args?: string[] },
): Promise<Tunnel> {
  const left = namespace("utl");
  const right = namespace("utr");
  const ends: Service[] = [];
  const tunnel: Tunnel = {
    left,
    right,
    ends,
    async [Symbol.asyncDispose]() {
      for (const end of ends) await end.stop("SIGKILL");
      left[Symbol.dispose]();
      right[Symbol.dispose]();
    },
  };
  try {
    const veth = uniqueName("utv");
    left.sh(`ip link add ${veth}a type veth peer ${veth}b netns ${right.name}`);
    [left, right].forEach((ns, i) => {
      const device = `${veth}${"ab"[i]}`;
      ns.sh(`ip addr add ${options.outer[i]}/${options.prefix} dev ${device} nodad`);
      ns.sh(`ip link set ${device} up`);
    });
    const endpoint = (host: string) => host.includes(":") ? `[${host}]:4789` : `${host}:4789`;
    for (const [i, ns] of [left, right].entries()) {
      const end = Service.inNamespace("examples/udp_tunnel.ts", ns.name, [
        ...[Deno.execPath(), "run", "--allow-ffi", `${root}examples/udp_tunnel.ts`],
        ...["--name", "tun0", "--address", `192.0.2.${i + 1}/30`],
        ...["--address", `2001:db8::${i + 1}/64`],
        ...["--local", endpoint(options.outer[i]), "--remote", endpoint(options.outer[1 - i])],
        ...(options.args ?? []),
      ]);
      ends.push(end);
      await end.line(/^ready tun0 /m, 20_000);
    }
    return tunnel;
  } catch (error) {
    await tunnel[Symbol.asyncDispose]();
    throw error;
  }
}

/**
 * A bounded iperf3 run (TCP, or UDP at 200 Mbit/s) from left to right's
 * `server`; the bytes the server received.
 */
async function iperf(
  tunnel: Tunnel,
  server: string,
  client: string,
  options: { udp?: boolean } = {},
): Promise<number> {
  const listener = Service.inNamespace("iperf3 -s", tunnel.right.name, [
    ...["iperf3", "-s", "-1", "-B", server, "-J"],
  ]);
  try {
    // The server prints its JSON only at the end: wait for its socket instead.
    for (let i = 0; i < 100 && !tunnel.right.sh("ss -Htln").includes(":5201"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // A bound on a hung run (killed after 30 s), not an assertion about speed.
    const output = await new Deno.Command("ip", {
      args: [
        ...["netns", "exec", tunnel.left.name, "iperf3", "-c", server, "-B", client],
        ...["-t", "2", "-J", "--connect-timeout", "5000"],
        ...(options.udp ? ["-u", "-b", "200M"] : []),
      ],
      stdin: "null",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const report = JSON.parse(new TextDecoder().decode(output.stdout));
    assert(output.success, `iperf3 -c failed: ${report.error}`);
    // iperf3 3.12 reports UDP in `sum` alone.
    const sent = report.end.sum_sent ?? report.end.sum;
    assert(sent.bytes > 0, "the client sent nothing");
    const received = (report.end.sum_received ?? report.end.sum).bytes;
    assert(received > 0, "the client's report says nothing arrived");
    // -s -1 ends after the one test, with its own report.
    const { code, stderr } = await within(listener.status(), 10_000, "iperf3 -s to end");
    assertStrictEquals(code, 0, stderr);
    const served = JSON.parse(listener.output);
    return Math.min(received, (served.end.sum_received ?? served.end.sum).bytes);
  } finally {
    await listener.stop("SIGKILL");
  }
}

kernelTest(
  "udp_tunnel with offload carries ping, iperf3 TCP over IPv4 and IPv6 and UDP, and counts on SIGTERM",
  async () => {
    await using tunnel = await startTunnel({ outer: ["198.51.100.1", "198.51.100.2"], prefix: 30 });
    assertMatch(
      tunnel.ends[0].output,
      /^ready tun0 198\.51\.100\.1:4789 > 198\.51\.100\.2:4789 offload$/m,
    );
    assertMatch(tunnel.left.sh("ping -c 3 -i 0.2 -W 2 192.0.2.2"), /3 received/);
    assertMatch(tunnel.right.sh("ping -c 3 -i 0.2 -W 2 2001:db8::1"), /3 received/);
    assert(await iperf(tunnel, "192.0.2.2", "192.0.2.1") > 0);
    assert(await iperf(tunnel, "2001:db8::2", "2001:db8::1") > 0);
    // UDP of one flow crosses as GRO trains, written to the device as UDP_L4 super-packets.
    assert(await iperf(tunnel, "192.0.2.2", "192.0.2.1", { udp: true }) > 0);
    const counted = [];
    for (const end of tunnel.ends) {
      const output = await end.stop();
      const { code, stderr } = await end.status();
      assertStrictEquals(code, 0, stderr);
      const line = /^sent (\d+) packets in (\d+) messages, received (\d+) packets, dropped \d+$/m
        .exec(output);
      assert(line, output);
      counted.push({ sent: Number(line[1]), messages: Number(line[2]), received: Number(line[3]) });
    }
    const [left, right] = counted;
    // The data crossed left to right as UDP GSO trains: far fewer messages than packets.
    assert(left.messages < left.sent / 4, JSON.stringify(left));
    assert(right.received > 0 && left.received > 0, JSON.stringify(counted));
  },
);

kernelTest("udp_tunnel carries ping and iperf3 TCP between IPv6 endpoints", async () => {
  await using tunnel = await startTunnel({
    outer: ["2001:db8:ffff::1", "2001:db8:ffff::2"],
    prefix: 64,
  });
  assertMatch(tunnel.left.sh("ping -c 3 -i 0.2 -W 2 192.0.2.2"), /3 received/);
  assert(await iperf(tunnel, "192.0.2.2", "192.0.2.1") > 0);
});

kernelTest(
  "udp_tunnel --no-offload carries ping and iperf3 TCP one packet per datagram",
  async () => {
    await using tunnel = await startTunnel({
      outer: ["198.51.100.1", "198.51.100.2"],
      prefix: 30,
      args: ["--no-offload"],
    });
    assertMatch(tunnel.ends[1].output, /^ready tun0 198\.51\.100\.2:4789 > 198\.51\.100\.1:4789$/m);
    assertMatch(tunnel.left.sh("ping -c 3 -i 0.2 -W 2 2001:db8::2"), /3 received/);
    assert(await iperf(tunnel, "192.0.2.2", "192.0.2.1") > 0);
  },
);

/** The counter `name` of `group` ("Udp", "Icmp") in /proc/net/snmp of `ns`. */
function snmp(ns: Namespace, group: string, name: string): number {
  const lines = ns.sh("cat /proc/net/snmp").split("\n").filter((line) =>
    line.startsWith(`${group}: `)
  );
  const [names, counts] = lines.map((line) => line.split(" ").slice(1));
  return Number(counts[names.indexOf(name)]);
}

kernelTest(
  "udp_tunnel's connected socket leaves datagrams not from --remote to the kernel",
  async () => {
    await using tunnel = await startTunnel({ outer: ["198.51.100.1", "198.51.100.2"], prefix: 30 });
    const noPorts = snmp(tunnel.right, "Udp", "NoPorts");
    // A valid ping, from the right host but another port: were it let in, it would be answered.
    await within(
      tunnel.left.deno(`
      import { buildIcmpEcho } from "${root}packet/mod.ts";
      const socket = Deno.listenDatagram({ transport: "udp", hostname: "198.51.100.1", port: 0 });
      const ping = buildIcmpEcho({ source: "192.0.2.1", destination: "192.0.2.2", identifier: 7, sequence: 1 });
      await socket.send(ping, { transport: "udp", hostname: "198.51.100.2", port: 4789 });
      socket.close();`),
      20_000,
      "sending the stranger's datagram",
    );
    // No socket takes it: the kernel counts it as for a port nobody listens on.
    for (let i = 0; i < 100 && snmp(tunnel.right, "Udp", "NoPorts") === noPorts; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assertStrictEquals(snmp(tunnel.right, "Udp", "NoPorts"), noPorts + 1);
    const output = await tunnel.ends[1].stop();
    // The ping never reached the right end's TUN device, and the tunnel saw nothing to drop.
    assertStrictEquals(snmp(tunnel.right, "Icmp", "InEchos"), 0);
    assertMatch(output, /, dropped 0$/m);
  },
);
