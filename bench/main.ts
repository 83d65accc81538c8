/**
 * The tuntap benchmark: packets per second through a TUN device, the
 * TypeScript library against a C program doing the same work, run side by
 * side in interleaved rounds (C, TS, C, TS…) so that both see the same
 * machine. `deno task bench` runs it inside a private network namespace;
 * it refuses to run anywhere else.
 *
 *   deno task bench [--rounds N] [--only write64,read64,…] [--no-streams]
 *                   [--compare PATH/mod.ts] [--json]   (all options: --help)
 *
 * Each program times itself, after a warm-up, so process start and JIT
 * warm-up are left out for both. See bench/README.md.
 *
 * @module
 */

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const decoder = new TextDecoder();
const encoder = new TextEncoder();

const DEVICE = "tbench0";
// RFC 2544 benchmarking range: never routed anywhere real.
const DEVICE_CIDR = "198.18.0.1/24";
const LOCAL_ADDRESS = [198, 18, 0, 1];
const PEER_ADDRESS = [198, 18, 0, 2];
const PEER_TEXT = "198.18.0.2";
// discard: nothing listens on it here, so written packets end at the UDP lookup.
const PORT = 9;
// The read scenarios fill the queue before reading it, FILL packets at a time.
const TX_QUEUE_LENGTH = 100_000;
const FILL = 50_000;

interface Options {
  rounds: number;
  seconds: number;
  writeCount: number;
  readCount: number;
  warmup: number;
  only: string[] | undefined;
  streams: boolean;
  compare: string | undefined;
  json: boolean;
}

function usage(message?: string): never {
  if (message) console.error(message);
  console.error(
    "usage: deno task bench [--rounds N] [--write-count N] [--read-count N] [--seconds S]\n" +
      "                       [--warmup N] [--no-streams] [--compare PATH/mod.ts] [--json]\n" +
      "                       [--only write64,write1400,read64,read1400,live64,live1400]",
  );
  Deno.exit(2);
}

function parseOptions(args: string[]): Options {
  const options: Options = {
    rounds: 5,
    seconds: 1,
    writeCount: 200_000,
    readCount: 200_000,
    warmup: 20_000,
    only: undefined,
    streams: true,
    compare: undefined,
    json: false,
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
    if (arg === "--rounds") options.rounds = whole(args[++i], arg, 1);
    else if (arg === "--seconds") options.seconds = whole(args[++i], arg, 1);
    else if (arg === "--write-count") options.writeCount = whole(args[++i], arg, 1);
    else if (arg === "--read-count") options.readCount = whole(args[++i], arg, 1);
    else if (arg === "--warmup") options.warmup = whole(args[++i], arg, 0);
    else if (arg === "--only") options.only = (args[++i] ?? usage()).split(",");
    else if (arg === "--no-streams") options.streams = false;
    else if (arg === "--compare") options.compare = args[++i] ?? usage();
    else if (arg === "--json") options.json = true;
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

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * The packet both writers send, byte for byte: IPv4/UDP from the peer to the
 * device's own address, port 9. The kernel routes it locally, finds no
 * socket and counts it in Udp NoPorts, which shows it arrived whole.
 */
function udpPacket(size: number): Uint8Array {
  const packet = new Uint8Array(size);
  const view = new DataView(packet.buffer);
  view.setUint8(0, 0x45);
  view.setUint16(2, size);
  view.setUint8(8, 64);
  view.setUint8(9, 17);
  packet.set(PEER_ADDRESS, 12);
  packet.set(LOCAL_ADDRESS, 16);
  view.setUint16(10, checksum(packet.subarray(0, 20)));
  view.setUint16(20, 40000);
  view.setUint16(22, PORT);
  // UDP checksum 0: none, so both sides skip the same work in the kernel.
  view.setUint16(24, size - 20);
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
  dropped?: number;
  generated?: number;
  delivered?: number;
}

interface Variant {
  label: string;
  side: "c" | "ts";
  /** The TypeScript API used: write/writable, read/iterate/readable. */
  api?: string;
  /** Another `mod.ts` to load instead of the repository's. */
  module?: string;
}

interface Scenario {
  id: string;
  name: string;
  kind: "write" | "read" | "live";
  /** Left out unless named with --only. */
  optional?: boolean;
  size: number;
  variants: Variant[];
}

class Bench {
  constructor(readonly binary: string, readonly options: Options) {}

  command(variant: Variant, args: string[], stdin: "null" | "piped" = "null"): Deno.Command {
    if (variant.side === "c") {
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
        variant.api!,
        ...rest,
      ],
      cwd: root,
      env: variant.module ? { TUNTAP_BENCH_MODULE: variant.module } : {},
      stdin,
      stdout: "piped",
    });
  }

  async write(variant: Variant, size: number): Promise<Measurement> {
    const { writeCount, warmup } = this.options;
    // Count and time both bound the loop; a slow side stops at the time.
    const seconds = 10;
    const before = udpNoPorts();
    const child = this.command(variant, [
      "write",
      DEVICE,
      String(writeCount),
      String(warmup),
      String(seconds),
      hex(udpPacket(size)),
    ]).spawn();
    const output = await bounded(child, 2 * seconds + 20, child.output());
    if (!output.success) throw new Error(`${variant.label} writer failed (${output.code})`);
    const result = JSON.parse(lastLine(decoder.decode(output.stdout))) as Measurement;
    result.delivered = (udpNoPorts() - before) / (result.packets + warmup);
    return result;
  }

  /** Sends exactly `count` datagrams into the device's queue; the C generator serves both sides. */
  async fill(size: number, count: number): Promise<void> {
    const child = new Deno.Command(this.binary, {
      args: ["gen", PEER_TEXT, String(PORT), "20", String(size), String(count)],
      stdin: "null",
      stdout: "piped",
    }).spawn();
    const output = await bounded(child, 40, child.output());
    const { sent } = JSON.parse(lastLine(decoder.decode(output.stdout)));
    if (!output.success || sent !== count) {
      throw new Error(`the generator sent ${sent} of ${count}`);
    }
  }

  /**
   * Reads from a queue filled beforehand, so the reader alone is on the
   * clock (a generator running alongside would be the bottleneck on a small
   * machine): fill, read exactly that many, repeat.
   */
  async read(variant: Variant, size: number): Promise<Measurement> {
    const { readCount, warmup } = this.options;
    return await this.withReader(variant, async (ask) => {
      if (warmup > 0) {
        await this.fill(size, Math.min(warmup, TX_QUEUE_LENGTH));
        await ask(Math.min(warmup, TX_QUEUE_LENGTH), 10);
      }
      const total: Measurement = { packets: 0, ns: 0, bytes: 0 };
      while (total.packets < readCount) {
        const count = Math.min(FILL, readCount - total.packets);
        const droppedBefore = txDropped();
        await this.fill(size, count);
        const m = await ask(count, 10);
        const dropped = txDropped() - droppedBefore;
        if (m.packets !== count || dropped !== 0) {
          throw new Error(`${variant.label} read ${m.packets} of ${count}, ${dropped} dropped`);
        }
        total.packets += m.packets;
        total.ns += m.ns;
        total.bytes! += m.bytes!;
      }
      return total;
    });
  }

  /** Reads for `seconds` while the generator floods the device, as a real load would. */
  async live(variant: Variant, size: number): Promise<Measurement> {
    const { seconds, warmup } = this.options;
    return await this.withReader(variant, async (ask) => {
      const generator = new Deno.Command(this.binary, {
        args: ["gen", PEER_TEXT, String(PORT), String(seconds * 2 + 20), String(size)],
        stdin: "null",
        stdout: "piped",
      }).spawn();
      try {
        await ask(warmup, 10);
        const droppedBefore = txDropped();
        const result = await ask(100_000_000, seconds);
        result.dropped = txDropped() - droppedBefore;
        generator.kill("SIGTERM");
        const output = await bounded(generator, 10, generator.output());
        const sent = JSON.parse(lastLine(decoder.decode(output.stdout)));
        result.generated = sent.sent / (sent.ns / 1e9);
        return result;
      } finally {
        try {
          generator.kill("SIGKILL");
        } catch {
          // Already gone.
        }
        await generator.status;
      }
    });
  }

  /**
   * Starts a reader attached to the device and hands `task` a function that
   * asks it to read `count` packets within `seconds` and returns what it measured.
   */
  async withReader(
    variant: Variant,
    task: (ask: (count: number, seconds: number) => Promise<Measurement>) => Promise<Measurement>,
  ): Promise<Measurement> {
    const reader = this.command(variant, ["read", DEVICE], "piped").spawn();
    const output = lines(reader.stdout);
    const input = reader.stdin.getWriter();
    try {
      const first = await bounded(reader, 30, output.next());
      if (first.value !== "ready") throw new Error(`${variant.label} reader did not start`);
      const ask = async (count: number, seconds: number) => {
        await input.write(encoder.encode(`${count} ${seconds}\n`));
        const answer = await bounded(reader, seconds + 10, output.next());
        if (answer.done) throw new Error(`${variant.label} reader stopped`);
        return JSON.parse(answer.value) as Measurement;
      };
      const result = await task(ask);
      await input.close();
      const status = await bounded(reader, 10, reader.status);
      if (!status.success) throw new Error(`${variant.label} reader failed (${status.code})`);
      return result;
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

function scenarios(options: Options): Scenario[] {
  const tsWrite: Variant[] = [{ label: "TS write()", side: "ts", api: "write" }];
  const tsRead: Variant[] = [
    { label: "TS read()", side: "ts", api: "read" },
    { label: "TS for await", side: "ts", api: "iterate" },
  ];
  if (options.streams) {
    tsWrite.push({ label: "TS writable", side: "ts", api: "writable" });
    tsRead.push({ label: "TS readable", side: "ts", api: "readable" });
  }
  if (options.compare) {
    const module = new URL(options.compare, `file://${Deno.cwd()}/`).href;
    for (const list of [tsWrite, tsRead]) {
      list.push(...list.map((v) => ({ ...v, label: `${v.label} [compare]`, module })));
    }
  }
  const c: Variant = { label: "C", side: "c" };
  const all: Scenario[] = [
    { id: "write64", name: "write 64B", kind: "write", size: 64, variants: [c, ...tsWrite] },
    { id: "write1400", name: "write 1400B", kind: "write", size: 1400, variants: [c, ...tsWrite] },
    { id: "read64", name: "read 64B", kind: "read", size: 64, variants: [c, ...tsRead] },
    { id: "read1400", name: "read 1400B", kind: "read", size: 1400, variants: [c, ...tsRead] },
    { id: "live64", name: "live 64B", kind: "live", size: 64, variants: [c, ...tsRead] },
    {
      id: "live1400",
      name: "live 1400B",
      kind: "live",
      size: 1400,
      variants: [c, ...tsRead],
      optional: true,
    },
  ];
  if (!options.only) return all.filter((s) => !s.optional);
  const unknown = options.only.filter((id) => !all.some((s) => s.id === id));
  if (unknown.length) usage(`unknown scenario ${unknown.join(", ")}`);
  return all.filter((s) => options.only!.includes(s.id));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

interface Result {
  id: string;
  scenario: string;
  variant: string;
  rounds: Measurement[];
  medianPps: number;
  ratio: number;
}

function rate(m: Measurement): number {
  return m.packets / (m.ns / 1e9);
}

function formatRate(pps: number): string {
  return pps >= 1e6 ? `${(pps / 1e6).toFixed(2)}M` : `${(pps / 1e3).toFixed(0)}k`;
}

function table(results: Result[]): string {
  const header = ["scenario", "variant", "median pkt/s", "min–max", "TS/C", "note"];
  const rows = results.map((r) => {
    const rates = r.rounds.map(rate);
    const notes: string[] = [];
    const delivered = r.rounds.map((m) => m.delivered).filter((d) => d !== undefined);
    if (delivered.length) notes.push(`delivered ${(100 * Math.min(...delivered)).toFixed(1)}%`);
    const generated = r.rounds.map((m) => m.generated).filter((g) => g !== undefined);
    if (generated.length) {
      const dropped = r.rounds.map((m) => m.dropped ?? 0);
      const share = median(r.rounds.map((m, i) => dropped[i] / (m.packets + dropped[i] || 1)));
      notes.push(`gen ${formatRate(median(generated))}/s, dropped ${(100 * share).toFixed(0)}%`);
    }
    return [
      r.scenario,
      r.variant,
      formatRate(r.medianPps),
      `${formatRate(Math.min(...rates))}–${formatRate(Math.max(...rates))}`,
      r.variant === "C" ? "" : r.ratio.toFixed(2),
      notes.join(", "),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const format = (row: string[]) =>
    `| ${row.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
  return [
    format(header),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.map(format),
  ]
    .join("\n");
}

async function main(): Promise<number> {
  const options = parseOptions(Deno.args);
  const problem = notPrivate();
  if (problem) {
    console.error(`bench: refusing to create devices here: ${problem}.`);
    return 1;
  }
  const chosen = scenarios(options);
  const temp = Deno.makeTempDirSync({ prefix: "tuntap-bench-" });
  const binary = `${temp}/tun_bench`;
  try {
    run("gcc", ["-O2", "-Wall", "-Wextra", "-o", binary, `${root}/bench/tun_bench.c`]);
    setUpDevice();
    console.log(
      `tuntap benchmark — packets/s through TUN device ${DEVICE}, the library (TS) against a C ` +
        `program doing the same work.\n` +
        `Interleaved rounds (${options.rounds} each); every program times only its own loop ` +
        `after ${options.warmup} warm-up packets.\n` +
        `write: ${options.writeCount} IPv4/UDP packets to a local port with no listener.\n` +
        `read: ${options.readCount} packets from a queue the C generator filled beforehand ` +
        `(the reader alone on the clock).\n` +
        `live: ${options.seconds} s of reading while the C generator floods the device ` +
        `(on a small machine the generator, not the reader, may set the pace: see "gen").\n` +
        `The machine is noisy: the TS/C ratios are the point, not the absolute numbers.\n`,
    );
    const bench = new Bench(binary, options);
    const results: Result[] = [];
    for (const scenario of chosen) {
      const measured = new Map<Variant, Measurement[]>(scenario.variants.map((v) => [v, []]));
      for (let round = 1; round <= options.rounds; round++) {
        for (const variant of scenario.variants) {
          console.error(`${scenario.name}: round ${round}/${options.rounds}, ${variant.label}`);
          const m = await bench[scenario.kind](variant, scenario.size);
          measured.get(variant)!.push(m);
        }
      }
      const baseline = median(measured.get(scenario.variants[0])!.map(rate));
      for (const [variant, rounds] of measured) {
        const medianPps = median(rounds.map(rate));
        results.push({
          id: scenario.id,
          scenario: scenario.name,
          variant: variant.label,
          rounds,
          medianPps,
          ratio: medianPps / baseline,
        });
      }
    }
    console.log(table(results));
    if (options.json) {
      console.log(JSON.stringify({
        date: new Date().toISOString(),
        deno: Deno.version.deno,
        kernel: Deno.osRelease(),
        cpus: navigator.hardwareConcurrency,
        rounds: options.rounds,
        results: results.map((r) => ({
          id: r.id,
          scenario: r.scenario,
          variant: r.variant,
          median_pps: Math.round(r.medianPps),
          ratio_to_c: Number(r.ratio.toFixed(3)),
          rounds_pps: r.rounds.map((m) => Math.round(rate(m))),
          ...r.rounds[0].generated === undefined ? {} : {
            generator_pps: r.rounds.map((m) => Math.round(m.generated!)),
            dropped: r.rounds.map((m) => m.dropped),
          },
        })),
      }));
    }
    return 0;
  } finally {
    tearDownDevice();
    Deno.removeSync(temp, { recursive: true });
  }
}

Deno.exit(await main());
