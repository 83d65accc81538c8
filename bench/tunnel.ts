/**
 * The tunnel cases of the benchmark: iperf3 TCP through a point-to-point
 * UDP tunnel between two network namespaces joined by a veth pair, one
 * tunnel process in each namespace holding its TUN device and its UDP
 * socket (one IP packet per datagram, plain encapsulation, no crypto).
 *
 * Four tunnels, in interleaved rounds:
 * - the library: `examples/udp_tunnel.ts` (TUN offload, GSO split, UDP GSO
 *   and GRO, GRO coalesce);
 * - the library without offload: `udp_tunnel.ts --no-offload`;
 * - C: `udp_tunnel.c` (`read()`/`sendmmsg()`, `recvmmsg()`/`write()`, no
 *   offload, a thread per direction);
 * - `Deno.listenDatagram`: `datagram_tunnel.ts` (the library's TUN device,
 *   one datagram per `send()`/`receive()`), issue 13's baseline.
 *
 * Cases (Gbit/s): `tunnel TCP` (the library against C), `tunnel TCP
 * no offload` (the same without offload against C) and `tunnel TCP vs
 * listenDatagram` (the library against the `Deno.listenDatagram` tunnel,
 * which then stands in the C column).
 *
 * `main.ts` calls {@linkcode tunnelCases} inside its private network
 * namespace.
 *
 * @module
 */

import { type BenchCase, benchCase, isSelected, type RunOptions } from "./bench_case.ts";
import { addNamespace, quietly, run, Service } from "./processes.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const decoder = new TextDecoder();

const LEFT = `tuntap-tunnel-left-${Deno.pid}`;
const RIGHT = `tuntap-tunnel-right-${Deno.pid}`;
const VETH = "tveth";
const DEVICE = "ttun0";
// RFC 2544 benchmarking range: the veth (outer) and the tunnel (inner) /30s.
const OUTER = ["198.18.8.1", "198.18.8.2"];
const INNER = ["198.18.9.1", "198.18.9.2"];
const PORT = 4789;
const MTU = 1400;

type Tunnel = "library" | "library no offload" | "c" | "listenDatagram";
const TUNNELS: Tunnel[] = ["c", "library", "library no offload", "listenDatagram"];

const CASES: { name: string; library: Tunnel; against: Tunnel; note: string }[] = [
  {
    name: "tunnel TCP",
    library: "library",
    against: "c",
    note: "udp_tunnel.ts (offload, UDP GSO/GRO) vs C read()/sendmmsg() without offload",
  },
  {
    name: "tunnel TCP no offload",
    library: "library no offload",
    against: "c",
    note: "udp_tunnel.ts --no-offload vs C",
  },
  {
    name: "tunnel TCP vs listenDatagram",
    library: "library",
    against: "listenDatagram",
    note: "the C column is the Deno.listenDatagram tunnel",
  },
];

/** iperf3's duration arguments for a run. */
function iperfArgs(options: RunOptions): string[] {
  if (options.tiny) return ["-n", "2M"];
  if (options.quick) return ["-t", "1"];
  // -O 1: slow start and the JIT warming up are left out.
  return ["-t", "3", "-O", "1"];
}

function setUp(): void {
  for (const namespace of [LEFT, RIGHT]) addNamespace(namespace);
  run("ip", "link", "add", `${VETH}0`, "netns", LEFT, "type", "veth", "peer", `${VETH}1`);
  run("ip", "link", "set", `${VETH}1`, "netns", RIGHT);
  [LEFT, RIGHT].forEach((namespace, i) => {
    run("ip", "-n", namespace, "addr", "add", `${OUTER[i]}/30`, "dev", `${VETH}${i}`);
    run("ip", "-n", namespace, "link", "set", `${VETH}${i}`, "up");
  });
}

function tearDown(): void {
  quietly("ip", "netns", "del", LEFT);
  quietly("ip", "netns", "del", RIGHT);
}

/** The command line of `tunnel` for end `i` (0 left, 1 right). */
function tunnelCommand(tunnel: Tunnel, i: number, binary: string): string[] {
  const [local, remote] = [OUTER[i], OUTER[1 - i]];
  if (tunnel === "c") {
    return [binary, DEVICE, String(MTU), local, String(PORT), remote, String(PORT)];
  }
  if (tunnel === "listenDatagram") {
    return [
      ...[Deno.execPath(), "run", "--allow-ffi", "--allow-net", "--unstable-net"],
      ...[`${root}/bench/datagram_tunnel.ts`, DEVICE, String(MTU), local, String(PORT)],
      ...[remote, String(PORT)],
    ];
  }
  return [
    ...[Deno.execPath(), "run", "--allow-ffi", `${root}/examples/udp_tunnel.ts`],
    ...["--name", DEVICE, "--mtu", String(MTU), "--address", `${INNER[i]}/30`],
    ...["--local", `${local}:${PORT}`, "--remote", `${remote}:${PORT}`],
    ...(tunnel === "library no offload" ? ["--no-offload"] : []),
  ];
}

/** One iperf3 run through a fresh pair of tunnels; Gbit/s. */
async function tunnelOnce(tunnel: Tunnel, binary: string, iperf: string[]): Promise<number> {
  const ends: Service[] = [];
  let server: Service | undefined;
  try {
    for (const [i, namespace] of [LEFT, RIGHT].entries()) {
      const end = Service.inNamespace(
        `the ${tunnel} tunnel`,
        namespace,
        tunnelCommand(tunnel, i, binary),
      );
      ends.push(end);
      await end.line(/^ready/m);
      if (tunnel === "c" || tunnel === "listenDatagram") {
        run("ip", "-n", namespace, "addr", "add", `${INNER[i]}/30`, "dev", DEVICE);
      }
    }
    server = Service.inNamespace("iperf3 -s", RIGHT, [
      "iperf3",
      "-s",
      "-1",
      "-B",
      INNER[1],
      "--forceflush",
    ]);
    await server.line(/Server listening/, 10);
    const seconds = 20 + iperf.reduce((sum, arg) => sum + (Number(arg) || 0), 0);
    const output = await new Deno.Command("ip", {
      args: [
        ...["netns", "exec", LEFT, "iperf3", "-c", INNER[1], "-B", INNER[0], "-J"],
        ...["--connect-timeout", "3000", ...iperf],
      ],
      stdin: "null",
      signal: AbortSignal.timeout(seconds * 1000),
    }).output();
    const report = decoder.decode(output.stdout);
    for (const end of ends) await end.check();
    const bits = JSON.parse(report || "{}").end?.sum_received?.bits_per_second;
    if (!output.success || typeof bits !== "number" || bits <= 0) {
      throw new Error(
        `iperf3 through the ${tunnel} tunnel measured nothing: ` +
          `${decoder.decode(output.stderr)}${report.slice(0, 500)}`,
      );
    }
    return bits / 1e9;
  } finally {
    await server?.stop();
    for (const end of ends) await end.stop();
  }
}

/**
 * The tunnel cases, in interleaved rounds; Gbit/s.
 *
 * @example Three quick rounds
 * ```ts ignore
 * import { tunnelCases } from "./tunnel.ts";
 *
 * const cases = await tunnelCases({ rounds: 3, quick: true, tiny: false, only: ["tunnel"] });
 * for (const c of cases) console.log(c.name, c.library.median, c.c.median, c.ratio);
 * ```
 */
export async function tunnelCases(options: RunOptions): Promise<BenchCase[]> {
  const chosen = CASES.filter((c) => isSelected(c.name, options.only));
  if (chosen.length === 0) return [];
  const tunnels = TUNNELS.filter((t) => chosen.some((c) => c.library === t || c.against === t));
  const directory = Deno.makeTempDirSync({ prefix: "tuntap-tunnel-" });
  const binary = `${directory}/udp_tunnel`;
  const samples = new Map<Tunnel, number[]>(tunnels.map((t) => [t, []]));
  try {
    run("gcc", "-O2", "-Wall", "-Wextra", "-pthread", "-o", binary, `${root}/bench/udp_tunnel.c`);
    setUp();
    for (let round = 0; round < options.rounds; round++) {
      // Rotating who goes first leaves no tunnel always on a warmer machine.
      const order = tunnels.map((_, i) => tunnels[(i + round) % tunnels.length]);
      for (const tunnel of order) {
        console.error(`tunnel: round ${round + 1}/${options.rounds}, ${tunnel}`);
        samples.get(tunnel)!.push(await tunnelOnce(tunnel, binary, iperfArgs(options)));
      }
    }
  } finally {
    tearDown();
    Deno.removeSync(directory, { recursive: true });
  }
  return chosen.map((c) =>
    benchCase(
      { name: c.name, unit: "Gbit/s", note: `${c.note}; MTU ${MTU}, 1 TCP flow` },
      samples.get(c.library)!,
      samples.get(c.against)!,
    )
  );
}
