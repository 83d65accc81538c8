/**
 * The forwarding, multi-queue and latency cases of the benchmark, the
 * library against `forward.c` in interleaved rounds.
 *
 * Forward (the layout of tun-rs's tun-benchmark2): two TUN devices, each
 * moved into a network namespace of its own, and a forwarder process holding
 * both, so that iperf3's TCP from one namespace to the other crosses it. The
 * library's forwarder is `examples/forward.ts --quiet`, the C one
 * `forward.c`. Variants: MTU 1500 and 9000, without and with TSO/USO
 * offload, and multi-queue devices with one and two queues (one Worker or
 * thread per queue, four parallel TCP flows so that both queues carry some).
 *
 * Latency: a C pinger sends one UDP datagram at a time through a TUN device
 * whose responder (the C `pong` or the library's `ts_pong.ts`, with and
 * without `busyPoll`) sends it back; the pinger reports the median and 99th
 * percentile round trip. The pinger spins rather than sleeps while it waits,
 * so that the wake-up measured is the responder's alone.
 *
 * `main.ts` calls {@linkcode forwardCases} and {@linkcode latencyCases}
 * inside its private network namespace. Run alone, this file takes
 * `--rounds N`, `--quick`, `--tiny` and `--only PREFIX,…` and re-runs itself
 * in a private network namespace when it is not in one.
 *
 * @module
 */

import { type BenchCase, benchCase, isSelected, type RunOptions } from "./bench_case.ts";
import { addNamespace, quietly, run, runFor, Service } from "./processes.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The namespaces' and devices' names; the bench has a network namespace of its own. */
const LEFT = `tuntap-bench-left-${Deno.pid}`;
const RIGHT = `tuntap-bench-right-${Deno.pid}`;
const PONG = `tuntap-bench-pong-${Deno.pid}`;
const DEVICE_A = "tfwd0";
const DEVICE_B = "tfwd1";
const DEVICE_PONG = "tpong0";
// RFC 2544 benchmarking range, one /24 per side.
const LEFT_ADDRESS = "198.18.0.1";
const RIGHT_ADDRESS = "198.18.1.1";
const PONG_ADDRESS = "198.18.2.1";
const PONG_PEER = "198.18.2.2";
// The busy-read the opt-in variant spins for, in microseconds.
const BUSY_POLL = 50;

/** One forwarding case: how the devices are set up and how iperf3 loads them. */
interface ForwardVariant {
  name: string;
  mtu: number;
  offload: boolean;
  /** 0: plain devices, one queue each; N: multi-queue devices, N queues. */
  queues: number;
  /** Parallel TCP flows (iperf3 -P). */
  flows: number;
}

const FORWARD_VARIANTS: ForwardVariant[] = [
  { name: "forward MTU 1500", mtu: 1500, offload: false, queues: 0, flows: 1 },
  { name: "forward MTU 1500 offload", mtu: 1500, offload: true, queues: 0, flows: 1 },
  { name: "forward MTU 9000", mtu: 9000, offload: false, queues: 0, flows: 1 },
  { name: "forward MTU 9000 offload", mtu: 9000, offload: true, queues: 0, flows: 1 },
  { name: "forward 1 queue", mtu: 1500, offload: false, queues: 1, flows: 4 },
  { name: "forward 2 queues", mtu: 1500, offload: false, queues: 2, flows: 4 },
];

/** One latency case: the library's responder options beside the C responder. */
interface LatencyVariant {
  name: string;
  busyPoll: number;
  note: string;
}

const LATENCY_VARIANTS: LatencyVariant[] = [
  { name: "latency ping-pong read()", busyPoll: 0, note: "both wait in poll()" },
  {
    name: "latency ping-pong busyPoll",
    busyPoll: BUSY_POLL,
    note: `the library spins ${BUSY_POLL} µs before poll(), C waits in poll()`,
  },
];

/** How long each measurement runs: iperf3 arguments and ping-pong counts. */
function profile(options: RunOptions): { iperf: string[]; pings: number; warmup: number } {
  // --tiny transfers 2 MB (a fraction of a second); the others time whole seconds.
  if (options.tiny) return { iperf: ["-n", "2M"], pings: 200, warmup: 20 };
  if (options.quick) return { iperf: ["-t", "1"], pings: 3_000, warmup: 300 };
  // -O 1: the first second (slow start, the library's JIT warming up) is left out.
  return { iperf: ["-t", "2", "-O", "1"], pings: 20_000, warmup: 2_000 };
}

/** Compiles `forward.c` into a temporary directory; returns the binary and the directory. */
function compile(): { binary: string; directory: string } {
  const directory = Deno.makeTempDirSync({ prefix: "tuntap-forward-" });
  const binary = `${directory}/forward`;
  run("gcc", "-O2", "-pthread", "-o", binary, `${root}/bench/forward.c`);
  return { binary, directory };
}

function removeNamespace(name: string): void {
  quietly("ip", "netns", "del", name);
}

/**
 * Moves `device` (attached by now: a persistent device with nothing attached
 * has no carrier) into `namespace`, gives it `address`/24 and `mtu`, and
 * routes `route` through it.
 */
function placeDevice(
  device: string,
  namespace: string,
  options: { address: string; mtu: number; route?: string },
): void {
  run("ip", "link", "set", device, "netns", namespace);
  run("ip", "-n", namespace, "addr", "add", `${options.address}/24`, "dev", device);
  run("ip", "-n", namespace, "link", "set", device, "mtu", String(options.mtu), "up");
  if (options.route) run("ip", "-n", namespace, "route", "add", options.route, "dev", device);
}

function removeDevice(namespace: string, device: string): void {
  new Deno.Command("ip", { args: ["-n", namespace, "link", "del", device], stderr: "null" })
    .outputSync();
}

type Side = "c" | "library";

/** One iperf3 run through a forwarder on fresh devices; resolves to Gbit/s. */
async function forwardOnce(
  binary: string,
  variant: ForwardVariant,
  side: Side,
  iperf: string[],
): Promise<number> {
  const flags = [
    ...(variant.queues > 0 ? ["multi_queue"] : []),
    ...(variant.offload ? ["vnet_hdr"] : []),
  ];
  for (const device of [DEVICE_A, DEVICE_B]) {
    run("ip", "tuntap", "add", "dev", device, "mode", "tun", ...flags);
  }
  let forwarder: Service | undefined;
  let server: Service | undefined;
  try {
    if (side === "c") {
      const args = [
        "forward",
        DEVICE_A,
        DEVICE_B,
        String(variant.queues),
        variant.offload ? "1" : "0",
      ];
      forwarder = new Service("the C forwarder", binary, args);
      await forwarder.line(/^ready$/m);
    } else {
      const args = ["run", "--allow-ffi", "--allow-read", `${root}/examples/forward.ts`];
      args.push(DEVICE_A, DEVICE_B, "--quiet");
      if (variant.offload) args.push("--offload");
      if (variant.queues > 0) args.push("--queues", String(variant.queues));
      forwarder = new Service("examples/forward.ts", Deno.execPath(), args);
      await forwarder.line(/^ready /m);
    }
    const settings = { mtu: variant.mtu };
    placeDevice(DEVICE_A, LEFT, { ...settings, address: LEFT_ADDRESS, route: "198.18.1.0/24" });
    placeDevice(DEVICE_B, RIGHT, { ...settings, address: RIGHT_ADDRESS, route: "198.18.0.0/24" });

    server = new Service("iperf3 -s", "ip", [
      ...["netns", "exec", RIGHT, "iperf3", "-s", "-1", "-B", RIGHT_ADDRESS, "--forceflush"],
    ]);
    await server.line(/Server listening/, 10);
    const seconds = 15 + iperf.reduce((sum, arg) => sum + (Number(arg) || 0), 0);
    const report = await runFor(
      seconds,
      ...["ip", "netns", "exec", LEFT, "iperf3", "-c", RIGHT_ADDRESS, "-B", LEFT_ADDRESS],
      ...["-J", "-P", String(variant.flows), "--connect-timeout", "3000", ...iperf],
    );
    await forwarder.check();
    const result = JSON.parse(report);
    const bits = result.end?.sum_received?.bits_per_second;
    if (typeof bits !== "number" || bits <= 0) {
      throw new Error(`iperf3 measured nothing: ${result.error ?? report.slice(0, 500)}`);
    }
    return bits / 1e9;
  } finally {
    await server?.stop();
    await forwarder?.stop();
    removeDevice(LEFT, DEVICE_A);
    removeDevice(RIGHT, DEVICE_B);
    // A device whose move failed is still here.
    for (const device of [DEVICE_A, DEVICE_B]) {
      new Deno.Command("ip", { args: ["link", "del", device], stderr: "null" }).outputSync();
    }
  }
}

/**
 * The forward cases: iperf3 TCP through the C forwarder and through
 * `examples/forward.ts`, in interleaved rounds, in Gbit/s.
 *
 * @example Two quick rounds of the MTU 1500 cases
 * ```ts ignore
 * import { forwardCases } from "./forward.ts";
 *
 * const cases = await forwardCases({ rounds: 2, quick: true, tiny: false, only: ["forward MTU 1500"] });
 * for (const c of cases) console.log(c.name, c.library.median, c.c.median);
 * ```
 */
export async function forwardCases(options: RunOptions): Promise<BenchCase[]> {
  const variants = FORWARD_VARIANTS.filter((v) => isSelected(v.name, options.only));
  if (variants.length === 0) return [];
  const found = new Deno.Command("sh", { args: ["-c", "command -v iperf3"], stdout: "null" });
  if (!found.outputSync().success) {
    throw new Error("iperf3 is missing: `deno task bench` installs it, or apt-get install iperf3");
  }
  const { iperf } = profile(options);
  const { binary, directory } = compile();
  const samples = new Map(variants.map((v) => [v, { c: [] as number[], library: [] as number[] }]));
  try {
    addNamespace(LEFT);
    addNamespace(RIGHT);
    for (let round = 0; round < options.rounds; round++) {
      // Alternating who goes first leaves no side always running on a warmer machine.
      const order: Side[] = round % 2 === 0 ? ["c", "library"] : ["library", "c"];
      for (const variant of variants) {
        for (const side of order) {
          samples.get(variant)![side].push(await forwardOnce(binary, variant, side, iperf));
        }
      }
    }
  } finally {
    removeNamespace(LEFT);
    removeNamespace(RIGHT);
    Deno.removeSync(directory, { recursive: true });
  }
  const cases = variants.map((variant) => {
    const { library, c } = samples.get(variant)!;
    const flows = variant.flows > 1 ? `${variant.flows} TCP flows` : "1 TCP flow";
    return benchCase({ name: variant.name, unit: "Gbit/s", note: flows }, library, c);
  });
  // The offload target is stated against the library's own rate without offload.
  for (const mtu of [1500, 9000]) {
    const plain = cases.find((c) => c.name === `forward MTU ${mtu}`);
    const offload = cases.find((c) => c.name === `forward MTU ${mtu} offload`);
    if (plain && offload) {
      const times = offload.library.median / plain.library.median;
      offload.note += `; ${times.toFixed(1)}× the library without offload`;
    }
  }
  return cases;
}

interface PingResult {
  count: number;
  lost: number;
  median_ns: number;
  p99_ns: number;
}

/** The C pinger's round trips through a responder on a fresh device. */
async function pingPongOnce(
  binary: string,
  responder: "c" | { busyPoll: number },
  counts: { pings: number; warmup: number },
): Promise<PingResult> {
  run("ip", "tuntap", "add", "dev", DEVICE_PONG, "mode", "tun");
  let pong: Service | undefined;
  try {
    if (responder === "c") {
      pong = new Service("the C responder", binary, ["pong", DEVICE_PONG]);
    } else {
      const args = ["run", "--allow-ffi", `${root}/bench/ts_pong.ts`, DEVICE_PONG];
      if (responder.busyPoll > 0) args.push("--busy-poll", String(responder.busyPoll));
      pong = new Service("bench/ts_pong.ts", Deno.execPath(), args);
    }
    await pong.line(/^ready$/m);
    placeDevice(DEVICE_PONG, PONG, { address: PONG_ADDRESS, mtu: 1500 });
    const output = await runFor(
      60,
      ...["ip", "netns", "exec", PONG, binary, "ping", PONG_PEER, "7"],
      ...[String(counts.pings), String(counts.warmup)],
    );
    await pong.check();
    return JSON.parse(output) as PingResult;
  } finally {
    await pong?.stop();
    removeDevice(PONG, DEVICE_PONG);
    new Deno.Command("ip", { args: ["link", "del", DEVICE_PONG], stderr: "null" }).outputSync();
  }
}

/**
 * The latency cases: the round trip of one UDP datagram at a time through a
 * TUN device answered by C or by the library (with and without `busyPoll`),
 * median and 99th percentile in µs; a ratio above 1 means the library is slower.
 *
 * @example The median round trip with the default read
 * ```ts ignore
 * import { latencyCases } from "./forward.ts";
 *
 * const [read] = await latencyCases({ rounds: 3, quick: true, tiny: false, only: ["latency"] });
 * console.log(`${read.library.median} µs against C's ${read.c.median} µs`);
 * ```
 */
export async function latencyCases(options: RunOptions): Promise<BenchCase[]> {
  const variants = LATENCY_VARIANTS.filter((v) =>
    isSelected(v.name, options.only) || isSelected(`${v.name} p99`, options.only)
  );
  if (variants.length === 0) return [];
  const counts = profile(options);
  const { binary, directory } = compile();
  const c: PingResult[] = [];
  const library = new Map<LatencyVariant, PingResult[]>(variants.map((v) => [v, []]));
  try {
    addNamespace(PONG);
    for (let round = 0; round < options.rounds; round++) {
      c.push(await pingPongOnce(binary, "c", counts));
      for (const variant of variants) {
        library.get(variant)!.push(await pingPongOnce(binary, variant, counts));
      }
    }
  } finally {
    removeNamespace(PONG);
    Deno.removeSync(directory, { recursive: true });
  }
  const micro = (results: PingResult[], key: "median_ns" | "p99_ns") =>
    results.map((result) => result[key] / 1000);
  const lost = (results: PingResult[]) => results.reduce((sum, r) => sum + r.lost, 0);
  const cases: BenchCase[] = [];
  for (const variant of variants) {
    const mine = library.get(variant)!;
    let note = `${counts.pings} round trips a round; ${variant.note}`;
    if (lost(mine) + lost(c) > 0) note += `; lost: library ${lost(mine)}, C ${lost(c)}`;
    for (const [suffix, key] of [["", "median_ns"], [" p99", "p99_ns"]] as const) {
      const name = `${variant.name}${suffix}`;
      if (!isSelected(name, options.only)) continue;
      cases.push(benchCase({ name, unit: "µs", note }, micro(mine, key), micro(c, key)));
    }
  }
  return cases;
}

/** Re-runs this file in a new network and mount namespace with its own sysfs; the exit code. */
function runPrivately(): number {
  const script = 'mount -t sysfs sysfs /sys && ip link set lo up && exec "$@"';
  const { code } = new Deno.Command("unshare", {
    args: ["-nm", "sh", "-c", script, "sh", Deno.execPath(), "run", "-A", import.meta.filename!],
    env: {
      TUNTAP_PRIVATE_NETNS: "1",
      TUNTAP_OUTER_NETNS: Deno.readLinkSync("/proc/self/ns/net"),
      TUNTAP_FORWARD_ARGS: JSON.stringify(Deno.args),
    },
    stdout: "inherit",
    stderr: "inherit",
  }).outputSync();
  return code;
}

if (import.meta.main) {
  const outer = Deno.env.get("TUNTAP_OUTER_NETNS");
  const isPrivate = Deno.env.get("TUNTAP_PRIVATE_NETNS") === "1" && outer !== undefined &&
    Deno.readLinkSync("/proc/self/ns/net") !== outer;
  if (!isPrivate) Deno.exit(runPrivately());
  const args: string[] = JSON.parse(Deno.env.get("TUNTAP_FORWARD_ARGS") ?? "null") ?? Deno.args;
  const value = (flag: string) => args[args.indexOf(flag) + 1];
  const tiny = args.includes("--tiny");
  const options: RunOptions = {
    rounds: args.includes("--rounds") ? Number(value("--rounds")) : tiny ? 1 : 3,
    quick: tiny || args.includes("--quick"),
    tiny,
    only: args.includes("--only") ? value("--only").split(",") : undefined,
  };
  const started = Date.now();
  for (const result of [...await forwardCases(options), ...await latencyCases(options)]) {
    const { name, unit, library, c, ratio, note } = result;
    const spread = (s: typeof library) =>
      `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
    console.log(
      `${name.padEnd(34)} ${unit.padEnd(6)} library ${spread(library)}  C ${spread(c)}  ` +
        `ratio ${ratio.toFixed(2)}${note ? `  ${note}` : ""}`,
    );
  }
  console.log(`${((Date.now() - started) / 1000).toFixed(0)} s`);
}
