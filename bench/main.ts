/**
 * The tuntap benchmark: the library against a C program doing the same work,
 * run side by side in interleaved rounds (C, library, C, library…) so that
 * both see the same machine, compared by the ratio of their medians. The
 * read and write cases are here (with ts_bench.ts and tun_bench.c); the
 * forward, multi-queue and latency cases are in forward.ts.
 * `deno task bench` runs it inside a private network namespace; it refuses
 * to run anywhere else.
 *
 *   deno task bench [--quick] [--tiny] [--rounds N] [--only PREFIX,…] [--out DIR]
 *                   [--compare PATH/mod.ts]                    (all options: --help)
 *
 * It prints the table, writes `results.json` and draws `results.svg`. Each
 * program times itself, after a warm-up, so process start and JIT warm-up
 * are left out for both. See bench/README.md.
 *
 * @module
 */

import {
  type BenchCase,
  benchCase,
  type BenchReport,
  isSelected,
  isTimeUnit,
  type Machine,
  type RunOptions,
} from "./bench_case.ts";
import { buildUdp } from "../packet/mod.ts";
import { renderChart } from "./chart.ts";
import { forwardCases, latencyCases } from "./forward.ts";
import { tunnelCases } from "./tunnel.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const decoder = new TextDecoder();
const encoder = new TextEncoder();

const DEVICE = "tbench0";
// RFC 2544 benchmarking range: never routed anywhere real.
const DEVICE_CIDR = "198.18.0.1/24";
const LOCAL_TEXT = "198.18.0.1";
const PEER_TEXT = "198.18.0.2";
// discard: nothing listens on it here, so written packets end at the UDP lookup.
const PORT = 9;
// The read scenarios fill the queue before reading it, FILL packets at a time.
const TX_QUEUE_LENGTH = 100_000;
const FILL = 50_000;
// Every loop is bounded by a count and by this many seconds.
const LOOP_SECONDS = 10;

interface Options extends RunOptions {
  writeCount: number;
  readCount: number;
  warmup: number;
  compare: string | undefined;
  out: string | undefined;
}

/** Counts for the full run, `--quick` (every case under two minutes) and `--tiny` (the test). */
const PROFILES = {
  full: { rounds: 5, writeCount: 200_000, readCount: 200_000, warmup: 20_000 },
  quick: { rounds: 3, writeCount: 50_000, readCount: 50_000, warmup: 10_000 },
  tiny: { rounds: 1, writeCount: 2_000, readCount: 2_000, warmup: 200 },
};

function usage(message?: string): never {
  if (message) console.error(message);
  console.error(
    "usage: deno task bench [--quick] [--tiny] [--rounds N] [--only PREFIX,…] [--out DIR]\n" +
      "                       [--write-count N] [--read-count N] [--warmup N]\n" +
      "                       [--compare PATH/mod.ts]\n" +
      "  --quick    every case with small counts, under two minutes in all\n" +
      "  --tiny     counts so small the numbers mean nothing (for the test; also\n" +
      "             TUNTAP_BENCH_TINY=1)\n" +
      "  --only     cases whose names start with one of these: read, write 64B, forward, …\n" +
      "  --out      where results.json and results.svg go (default: bench/ for a full\n" +
      "             run, a new temporary directory for --quick and --tiny)\n" +
      "  --compare  another copy of mod.ts to measure beside this one",
  );
  Deno.exit(2);
}

function parseOptions(args: string[]): Options {
  const tiny = args.includes("--tiny") || Deno.env.get("TUNTAP_BENCH_TINY") === "1";
  const quick = tiny || args.includes("--quick");
  const options: Options = {
    ...PROFILES[tiny ? "tiny" : quick ? "quick" : "full"],
    quick,
    tiny,
    only: undefined,
    compare: undefined,
    out: undefined,
  };
  const whole = (text: string | undefined, name: string, least: number) => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < least) {
      usage(`${name} wants a whole number ≥ ${least}`);
    }
    return value;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--quick" || arg === "--tiny") continue;
    else if (arg === "--rounds") options.rounds = whole(args[++i], arg, 1);
    else if (arg === "--write-count") options.writeCount = whole(args[++i], arg, 1);
    else if (arg === "--read-count") options.readCount = whole(args[++i], arg, 1);
    else if (arg === "--warmup") options.warmup = whole(args[++i], arg, 0);
    else if (arg === "--only") options.only = (args[++i] ?? usage()).split(",");
    else if (arg === "--out") options.out = args[++i] ?? usage();
    else if (arg === "--compare") options.compare = args[++i] ?? usage();
    else if (arg === "--help" || arg === "-h") usage();
    else usage(`unknown argument ${arg}`);
  }
  return options;
}

/** Why this is not the private namespace `tests/private_netns.ts` makes, if it is not. */
function notPrivate(): string | undefined {
  if (Deno.env.get("TUNTAP_PRIVATE_NETNS") !== "1") {
    return "run it with `deno task bench`, which makes a private network namespace";
  }
  const outer = Deno.env.get("TUNTAP_OUTER_NETNS");
  if (!outer || Deno.readLinkSync("/proc/self/ns/net") === outer) {
    return "this is not a network namespace of its own";
  }
  return undefined;
}

function run(command: string, args: string[]): string {
  const output = new Deno.Command(command, { args, stdin: "null" }).outputSync();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${decoder.decode(output.stderr).trim()}`,
    );
  }
  return decoder.decode(output.stdout);
}

/**
 * The packet both writers send, byte for byte: IPv4/UDP from the peer to the
 * device's own address, port 9. The kernel routes it locally, finds no
 * socket and counts it in Udp NoPorts, which shows it arrived whole.
 */
function udpPacket(size: number): Uint8Array {
  const packet = buildUdp({
    source: PEER_TEXT,
    destination: LOCAL_TEXT,
    sourcePort: 40000,
    destinationPort: PORT,
    payload: new Uint8Array(size - 28),
  });
  // UDP checksum 0: none, so the kernel verifies nothing for either side.
  packet[26] = packet[27] = 0;
  return packet;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function udpNoPorts(): number {
  const lines = Deno.readTextFileSync("/proc/net/snmp").split("\n").filter((line) =>
    line.startsWith("Udp:")
  );
  const names = lines[0].split(/\s+/);
  const values = lines[1].split(/\s+/);
  return Number(values[names.indexOf("NoPorts")]);
}

function setUpDevice(): void {
  run("ip", ["tuntap", "add", "dev", DEVICE, "mode", "tun"]);
  run("ip", ["link", "set", DEVICE, "txqueuelen", String(TX_QUEUE_LENGTH)]);
  run("ip", ["addr", "add", DEVICE_CIDR, "dev", DEVICE]);
  run("ip", ["link", "set", DEVICE, "up"]);
  // Router solicitations and MLD reports would mix into what the readers count.
  try {
    Deno.writeTextFileSync(`/proc/sys/net/ipv6/conf/${DEVICE}/disable_ipv6`, "1");
  } catch {
    // No IPv6 in this kernel: nothing to keep out.
  }
}

function tearDownDevice(): void {
  new Deno.Command("ip", { args: ["link", "del", DEVICE], stderr: "null" }).outputSync();
}

/** Lines of a child's stdout as they come. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    yield* parts;
  }
  if (pending) yield pending;
}

/** Runs `task`, killing `child` (and failing) if it takes longer than `seconds`. */
async function bounded<T>(child: Deno.ChildProcess, seconds: number, task: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      reject(new Error(`a benchmark process ran over ${seconds} s and was killed`));
    }, seconds * 1000);
  });
  try {
    return await Promise.race([task, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Measurement {
  packets: number;
  ns: number;
  bytes?: number;
  /** Written packets (warm-up included) the kernel counted as arriving whole. */
  delivered?: number;
}

/** One side of a scenario: the C program, or the library through one API. */
interface Side {
  /** The variant's name in the case name; "C" for the C program. */
  label: string;
  /** The library API ts_bench.ts uses (write, writeBatch, writable, read, …); none for C. */
  api?: string;
  /** Another `mod.ts` to load instead of the repository's. */
  module?: string;
}

interface Scenario {
  /** The first half of every case name: `read 64B`. */
  name: string;
  kind: "write" | "read";
  size: number;
  /** The library's variants; each is compared with the C program's rounds. */
  variants: Side[];
}

const C_SIDE: Side = { label: "C" };

class PacketBench {
  constructor(readonly binary: string, readonly options: Options) {}

  command(side: Side, args: string[], stdin: "null" | "piped" = "null"): Deno.Command {
    if (side.api === undefined) {
      return new Deno.Command(this.binary, { args, stdin, stdout: "piped" });
    }
    const [mode, ...rest] = args;
    return new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-ffi",
        "--allow-read",
        "--allow-env=TUNTAP_BENCH_MODULE",
        "--no-prompt",
        `${root}/bench/ts_bench.ts`,
        mode,
        side.api,
        ...rest,
      ],
      cwd: root,
      env: side.module ? { TUNTAP_BENCH_MODULE: side.module } : {},
      stdin,
      stdout: "piped",
    });
  }

  async write(side: Side, size: number): Promise<Measurement> {
    const { writeCount, warmup } = this.options;
    const before = udpNoPorts();
    const child = this.command(side, [
      "write",
      DEVICE,
      String(writeCount),
      String(warmup),
      String(LOOP_SECONDS),
      hex(udpPacket(size)),
    ]).spawn();
    const output = await bounded(child, 2 * LOOP_SECONDS + 20, child.output());
    if (!output.success) throw new Error(`the ${side.label} writer failed (${output.code})`);
    const result = JSON.parse(lastLine(decoder.decode(output.stdout))) as Measurement;
    result.delivered = (udpNoPorts() - before) / (result.packets + warmup);
    return result;
  }

  /** Sends exactly `count` datagrams into the device's queue; the C generator serves both sides. */
  async fill(size: number, count: number): Promise<void> {
    const child = new Deno.Command(this.binary, {
      args: ["gen", PEER_TEXT, String(PORT), String(LOOP_SECONDS), String(size), String(count)],
      stdin: "null",
      stdout: "piped",
    }).spawn();
    const output = await bounded(child, LOOP_SECONDS + 20, child.output());
    const { sent } = JSON.parse(lastLine(decoder.decode(output.stdout)));
    if (!output.success || sent !== count) {
      throw new Error(`the generator sent ${sent} of ${count}`);
    }
  }

  /**
   * Reads from a queue filled beforehand, so the reader alone is on the
   * clock (a generator running alongside would be the bottleneck on a small
   * machine, and would run at a different rate for each reader): fill, read
   * exactly that many, repeat.
   */
  async read(side: Side, size: number): Promise<Measurement> {
    const { readCount, warmup } = this.options;
    const reader = this.command(side, ["read", DEVICE], "piped").spawn();
    const output = lines(reader.stdout);
    const input = reader.stdin.getWriter();
    const ask = async (count: number) => {
      await input.write(encoder.encode(`${count} ${LOOP_SECONDS}\n`));
      const answer = await bounded(reader, LOOP_SECONDS + 10, output.next());
      if (answer.done) throw new Error(`the ${side.label} reader stopped`);
      return JSON.parse(answer.value) as Measurement;
    };
    try {
      const first = await bounded(reader, 30, output.next());
      if (first.value !== "ready") throw new Error(`the ${side.label} reader did not start`);
      const warm = Math.min(warmup, TX_QUEUE_LENGTH);
      if (warm > 0) {
        await this.fill(size, warm);
        await ask(warm);
      }
      const total: Measurement = { packets: 0, ns: 0, bytes: 0 };
      while (total.packets < readCount) {
        const count = Math.min(FILL, readCount - total.packets);
        const droppedBefore = txDropped();
        await this.fill(size, count);
        const m = await ask(count);
        const dropped = txDropped() - droppedBefore;
        if (m.packets !== count || dropped !== 0) {
          throw new Error(
            `the ${side.label} reader read ${m.packets} of ${count}, ${dropped} dropped`,
          );
        }
        total.packets += m.packets;
        total.ns += m.ns;
        total.bytes! += m.bytes!;
      }
      await input.close();
      const status = await bounded(reader, 10, reader.status);
      if (!status.success) throw new Error(`the ${side.label} reader failed (${status.code})`);
      return total;
    } catch (error) {
      try {
        reader.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      throw error;
    }
  }
}

function txDropped(): number {
  return Number(Deno.readTextFileSync(`/sys/class/net/${DEVICE}/statistics/tx_dropped`));
}

function lastLine(text: string): string {
  const found = text.trim().split("\n").pop();
  if (!found) throw new Error("a benchmark process printed nothing");
  return found;
}

/** The read and write scenarios, with only the variants `--only` selects. */
function scenarios(options: Options): Scenario[] {
  const readApis: Side[] = [
    { label: "read()", api: "read" },
    { label: "for await", api: "iterate" },
    { label: "readable", api: "readable" },
    { label: "readInto", api: "readInto" },
    { label: "readBatch", api: "readBatch" },
  ];
  const writeApis: Side[] = [
    { label: "write()", api: "write" },
    { label: "writeBatch", api: "writeBatch" },
    { label: "writable", api: "writable" },
  ];
  if (options.compare) {
    const module = new URL(options.compare, `file://${Deno.cwd()}/`).href;
    for (const list of [readApis, writeApis]) {
      list.push(...list.map((v) => ({ ...v, label: `${v.label} [compare]`, module })));
    }
  }
  const all: Scenario[] = [
    { name: "read 64B", kind: "read", size: 64, variants: readApis },
    { name: "read 1400B", kind: "read", size: 1400, variants: readApis },
    { name: "write 64B", kind: "write", size: 64, variants: writeApis },
    { name: "write 1400B", kind: "write", size: 1400, variants: writeApis },
  ];
  return all
    .map((s) => ({
      ...s,
      variants: s.variants.filter((v) => isSelected(`${s.name} ${v.label}`, options.only)),
    }))
    .filter((s) => s.variants.length > 0);
}

function rate(m: Measurement): number {
  return m.packets / (m.ns / 1e9);
}

function deliveryNote(library: Measurement[], c: Measurement[]): string {
  const least = (ms: Measurement[]) => Math.min(...ms.map((m) => m.delivered ?? 0));
  const percent = (share: number) => `${(100 * share).toFixed(1)}%`;
  if (least(library) >= 0.9995 && least(c) >= 0.9995) return "all delivered";
  return `delivered ${percent(least(library))} (C ${percent(least(c))})`;
}

/** Runs the read and write scenarios, each variant in rounds interleaved with C's. */
async function packetCases(binary: string, options: Options): Promise<BenchCase[]> {
  const chosen = scenarios(options);
  if (chosen.length === 0) return [];
  const bench = new PacketBench(binary, options);
  const cases: BenchCase[] = [];
  setUpDevice();
  try {
    for (const scenario of chosen) {
      const sides = [C_SIDE, ...scenario.variants];
      const measured = new Map<Side, Measurement[]>(sides.map((side) => [side, []]));
      for (let round = 1; round <= options.rounds; round++) {
        for (const side of sides) {
          console.error(`${scenario.name}: round ${round}/${options.rounds}, ${side.label}`);
          measured.get(side)!.push(await bench[scenario.kind](side, scenario.size));
        }
      }
      const c = measured.get(C_SIDE)!;
      for (const variant of scenario.variants) {
        const library = measured.get(variant)!;
        cases.push(benchCase(
          {
            name: `${scenario.name} ${variant.label}`,
            unit: "pkt/s",
            note: scenario.kind === "write" ? deliveryNote(library, c) : undefined,
          },
          library.map(rate),
          c.map(rate),
        ));
      }
    }
  } finally {
    tearDownDevice();
  }
  return cases;
}

type CaseRunner = (options: RunOptions) => Promise<BenchCase[]>;

function machine(): Machine {
  let cpu = "unknown";
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1].trim() ?? cpu;
  } catch {
    // No /proc/cpuinfo: leave it unknown.
  }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
  };
}

/** A value in few characters: 488k, 1.02M, 9.41, 23.5. */
function formatValue(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(0)}k`;
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function table(cases: BenchCase[]): string {
  const header = ["case", "unit", "library", "min–max", "C", "min–max", "lib/C", "note"];
  const range = (s: { min: number; max: number }) => `${formatValue(s.min)}–${formatValue(s.max)}`;
  const rows = cases.map((c) => [
    c.name,
    c.unit,
    formatValue(c.library.median),
    range(c.library),
    formatValue(c.c.median),
    range(c.c),
    c.ratio.toFixed(2),
    [c.note, isTimeUnit(c.unit) ? "lower is better" : undefined].filter(Boolean).join("; "),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const format = (row: string[]) =>
    `| ${row.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
  return [
    format(header),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.map(format),
  ].join("\n");
}

async function main(): Promise<number> {
  const options = parseOptions(Deno.args);
  const problem = notPrivate();
  if (problem) {
    console.error(`bench: refusing to create devices here: ${problem}.`);
    return 1;
  }
  const out = options.out ??
    (options.quick ? Deno.makeTempDirSync({ prefix: "tuntap-bench-results-" }) : `${root}/bench`);
  const temp = Deno.makeTempDirSync({ prefix: "tuntap-bench-" });
  const binary = `${temp}/tun_bench`;
  try {
    run("gcc", ["-O2", "-Wall", "-Wextra", "-o", binary, `${root}/bench/tun_bench.c`]);
    console.log(
      `tuntap benchmark — the library against a C program doing the same work, ` +
        `${options.rounds} interleaved round(s) each${options.tiny ? " (tiny counts)" : ""}.\n` +
        `read: ${options.readCount} packets from device ${DEVICE}'s queue, filled beforehand ` +
        `by a C generator (the reader alone on the clock).\n` +
        `write: ${options.writeCount} IPv4/UDP packets to a local port with no listener.\n` +
        `forward: iperf3 TCP between two namespaces through a forwarder holding two TUN ` +
        `devices.\nlatency: UDP ping-pong round trips through a TUN device's responder.\n` +
        `Every program times only its own loop, after ${options.warmup} warm-up packets. ` +
        `The ratios (library/C of the medians) are the point, not the absolute numbers.\n`,
    );
    const parts: [string, CaseRunner][] = [
      ["read and write", () => packetCases(binary, options)],
      ["forward", forwardCases],
      ["latency", latencyCases],
      ["tunnel", tunnelCases],
    ];
    const runOptions: RunOptions = {
      rounds: options.rounds,
      quick: options.quick,
      tiny: options.tiny,
      only: options.only,
    };
    // A part that fails does not take the others' numbers with it.
    const cases: BenchCase[] = [];
    const failures: string[] = [];
    for (const [part, runPart] of parts) {
      try {
        cases.push(...await runPart(runOptions));
      } catch (error) {
        failures.push(`${part}: ${(error as Error).stack ?? error}`);
        console.error(`bench: the ${part} cases failed: ${(error as Error).message}`);
      }
    }
    console.log(table(cases));
    const report: BenchReport = { machine: machine(), date: new Date().toISOString(), cases };
    Deno.mkdirSync(out, { recursive: true });
    // Five significant digits: the rest is noise, and the file stays readable.
    const json = JSON.stringify(
      report,
      (_, value) => typeof value === "number" ? Number(value.toPrecision(5)) : value,
      2,
    );
    Deno.writeTextFileSync(`${out}/results.json`, json + "\n");
    Deno.writeTextFileSync(`${out}/results.svg`, renderChart(report));
    console.log(`\nWrote ${out}/results.json and ${out}/results.svg.`);
    if (failures.length === 0) return 0;
    console.error(`\nbench: ${failures.length} part(s) failed:\n${failures.join("\n")}`);
    return 1;
  } finally {
    Deno.removeSync(temp, { recursive: true });
  }
}

Deno.exit(await main());
