/**
 * The soak: numbered UDP datagrams through `examples/forward.ts --quiet`
 * for a while, then the proof that none was lost outside the kernel's
 * counted drops, none duplicated, none reordered and none changed.
 *
 *   deno task soak [--seconds N]     (60 s by default; `deno task test` runs 10 s)
 *
 * The layout is the forward example's: its two TUN devices moved into
 * network namespaces of their own, 198.51.100.1 on the left and
 * 198.51.100.2 on the right. A sender on the left numbers each datagram and
 * fills it with a pattern of its number (16 to 1215 bytes); a receiver on
 * the right checks number and pattern and answers with acknowledgements
 * (through the forwarder too). The sender keeps at most a window of
 * unacknowledged datagrams in flight, so the rate is whatever the machine
 * sustains and no queue on the way overflows: a loss is a fault.
 *
 * It runs only inside the private network namespace that `deno task soak`
 * (or `deno task test`) makes. Exit status 0 when all holds, 1 otherwise;
 * the last line is `soak result {json}`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Namespace, namespace, privateNamespaceProblem, sh, uniqueName } from "./kernel.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "60" },
    // Internal: the sender and receiver are this script run in a namespace.
    role: { type: "string" },
  },
});
const SECONDS = Number(values.seconds);
const LEFT = "198.51.100.1";
const RIGHT = "198.51.100.2";
const SENDER_PORT = 40_000;
const RECEIVER_PORT = 40_001;
// Unacknowledged datagrams allowed in flight: well under the TUN queue (500)
// and the receiving socket's buffer, so nothing the window allows can overflow.
const WINDOW = 64;
// The receiver acknowledges every this many datagrams, and when it falls idle.
const ACK_EVERY = 16;
const HEADER = 4;

/** The length of datagram `seq`: 16 to 1215 bytes, in a fixed scatter. */
const sizeOf = (seq: number) => 16 + (seq * 7919) % 1200;

/** Datagram `seq`: its number (big-endian u32), then bytes of a pattern of it. */
function datagram(seq: number): Uint8Array {
  const bytes = new Uint8Array(sizeOf(seq));
  new DataView(bytes.buffer).setUint32(0, seq);
  for (let i = HEADER; i < bytes.length; i++) bytes[i] = (seq + i) & 0xff;
  return bytes;
}

/** Whether `bytes` is datagram `seq` exactly. */
function intact(bytes: Uint8Array, seq: number): boolean {
  if (bytes.length !== sizeOf(seq)) return false;
  for (let i = HEADER; i < bytes.length; i++) if (bytes[i] !== ((seq + i) & 0xff)) return false;
  return true;
}

const u32 = (value: number) => {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
};

/** The sender: datagrams for SECONDS within the window; prints {sent, acked, stalls}. */
async function sender(): Promise<void> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: LEFT, port: SENDER_PORT });
  const to = { transport: "udp" as const, hostname: RIGHT, port: RECEIVER_PORT };
  let acked = 0;
  let wake = () => {};
  const acks = (async () => {
    for await (const [data] of socket) {
      acked = Math.max(acked, new DataView(data.buffer, data.byteOffset).getUint32(0));
      wake();
    }
  })().catch(() => {});
  /** Waits for an acknowledgement, or `ms`; whether one came. */
  const ackWithin = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      wake = () => {
        clearTimeout(timer);
        wake = () => {};
        resolve(true);
      };
    });
  let sent = 0;
  let stalls = 0;
  const started = Date.now();
  const deadline = started + SECONDS * 1000;
  let report = started + 10_000;
  while (Date.now() < deadline) {
    // A window that does not move for 500 ms lets one datagram through, so a
    // lost datagram shows in the counts rather than stopping the soak.
    if (sent - acked >= WINDOW) {
      if (await ackWithin(500)) continue;
      stalls++;
    }
    await socket.send(datagram(sent), to);
    sent++;
    if (Date.now() >= report) {
      console.error(`soak: ${Math.round((Date.now() - started) / 1000)} s, sent ${sent}`);
      report += 10_000;
    }
  }
  for (const end = Date.now() + 5000; acked < sent && Date.now() < end;) await ackWithin(100);
  socket.close();
  await acks;
  console.log(JSON.stringify({ sent, acked, stalls }));
}

/** The receiver: checks every datagram until stdin closes; prints what it saw. */
async function receiver(): Promise<void> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: RIGHT, port: RECEIVER_PORT });
  const to = { transport: "udp" as const, hostname: LEFT, port: SENDER_PORT };
  let seen = new Uint8Array(1 << 16);
  let received = 0;
  let highest = -1;
  let duplicated = 0;
  let reordered = 0;
  let corrupted = 0;
  let acks = 0;
  let ackedAt = 0;
  const ack = () => {
    ackedAt = received;
    acks++;
    socket.send(u32(received), to).catch(() => {});
  };
  // An idle receiver acknowledges what it has, or a window that ended mid-way would wait.
  const idle = setInterval(() => received !== ackedAt && ack(), 10);
  const loop = (async () => {
    for await (const [data] of socket) {
      const seq = data.length >= HEADER
        ? new DataView(data.buffer, data.byteOffset).getUint32(0)
        : -1;
      if (seq < 0 || !intact(data, seq)) {
        corrupted++;
        continue;
      }
      if (seq >= seen.length) {
        const grown = new Uint8Array(Math.max(seen.length * 2, seq + 1));
        grown.set(seen);
        seen = grown;
      }
      if (seen[seq]) {
        duplicated++;
        continue;
      }
      seen[seq] = 1;
      received++;
      if (seq < highest) reordered++;
      highest = Math.max(highest, seq);
      if (received % ACK_EVERY === 0) ack();
    }
  })().catch(() => {});
  console.log("listening");
  // The orchestrator closes stdin once the sender is done.
  for await (const _ of Deno.stdin.readable);
  clearInterval(idle);
  socket.close();
  await loop;
  console.log(JSON.stringify({ received, highest, duplicated, reordered, corrupted, acks }));
}

/** A child process whose stdout lines are collected as they come. */
class Child {
  readonly lines: string[] = [];
  readonly process: Deno.ChildProcess;
  readonly #stdout: Promise<void>;
  readonly #stderr: Promise<string>;

  constructor(
    command: string,
    args: string[],
    options: { stdin?: boolean; stderr?: boolean } = {},
  ) {
    const process = new Deno.Command(command, {
      args,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: options.stderr ? "inherit" : "piped",
    }).spawn();
    this.process = process;
    this.#stdout = (async () => {
      let partial = "";
      for await (const text of process.stdout.pipeThrough(new TextDecoderStream())) {
        const parts = (partial + text).split("\n");
        partial = parts.pop()!;
        this.lines.push(...parts);
      }
    })();
    this.#stderr = options.stderr ? Promise.resolve("") : new Response(process.stderr).text();
  }

  /** Waits up to `ms` for a line matching `pattern`. */
  async line(pattern: RegExp, ms = 30_000): Promise<string> {
    for (const deadline = Date.now() + ms; Date.now() < deadline;) {
      const found = this.lines.find((line) => pattern.test(line));
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.kill();
    throw new Error(
      `no line matching ${pattern}:\n${this.lines.join("\n")}\n${await this.#stderr}`,
    );
  }

  /** Its exit, output read to the end. */
  async done(): Promise<{ code: number; stderr: string }> {
    const { code } = await this.process.status;
    await this.#stdout;
    return { code, stderr: await this.#stderr };
  }

  kill(signal: Deno.Signal = "SIGKILL"): void {
    try {
      this.process.kill(signal);
    } catch {
      // It has exited.
    }
  }
}

/** Drop counters of a device (`ip -s -j link`) in its namespace. */
function drops(ns: Namespace, device: string): { rx: number; tx: number } {
  const { stats64 } = JSON.parse(ns.sh(`ip -s -j link show dev ${device}`))[0];
  return { rx: stats64.rx.dropped, tx: stats64.tx.dropped };
}

/** UDP datagrams the namespace's sockets dropped (Udp InErrors: full buffers, bad sums). */
function udpInErrors(ns: Namespace): number {
  const [names, counts] = ns.sh("grep ^Udp: /proc/net/snmp").trim().split("\n")
    .map((line) => line.split(/\s+/));
  return Number(counts[names.indexOf("InErrors")]);
}

/** Refuses to run outside the private namespace `deno task soak` makes. */
function requirePrivateNamespace(): void {
  const problem = privateNamespaceProblem();
  if (problem !== undefined) {
    console.error(`soak: run it through \`deno task soak\` (${problem})`);
    Deno.exit(2);
  }
}

async function soak(): Promise<number> {
  requirePrivateNamespace();
  const script = new URL(import.meta.url).pathname;
  const root = new URL("..", import.meta.url).pathname;
  const deno = Deno.execPath();
  // Nothing may hang: past this, everything is killed and the soak fails.
  const watchdog = setTimeout(() => {
    console.error("soak: did not finish in time");
    Deno.exit(1);
  }, (SECONDS + 90) * 1000);
  using left = namespace("soakl");
  using right = namespace("soakr");
  for (const ns of [left, right]) {
    ns.sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
  }
  const [a, b] = [uniqueName("soaka"), uniqueName("soakb")];
  const forwarder = new Child(deno, [
    "run",
    "--allow-ffi",
    "--allow-read",
    `${root}examples/forward.ts`,
    a,
    b,
    "--quiet",
  ]);
  const children = [forwarder];
  try {
    await forwarder.line(new RegExp(`^ready ${a} ${b}$`));
    sh(`ip link set ${a} netns ${left.name} && ip link set ${b} netns ${right.name}`);
    for (const [ns, device, address] of [[left, a, LEFT], [right, b, RIGHT]] as const) {
      ns.sh(`ip addr add ${address}/24 dev ${device} && ip link set ${device} up`);
    }
    const role = (ns: Namespace, name: string, options = {}) =>
      new Child("ip", [
        "netns",
        "exec",
        ns.name,
        deno,
        "run",
        "--allow-net",
        // tests/kernel.ts, imported for the orchestrator, reads the environment on load.
        "--allow-env",
        "--unstable-net",
        script,
        "--role",
        name,
        "--seconds",
        String(SECONDS),
      ], options);
    const receiver = role(right, "receiver", { stdin: true });
    children.push(receiver);
    await receiver.line(/^listening$/);
    console.log(
      `soak: ${SECONDS} s of numbered UDP (${WINDOW} in flight, 16–1215 bytes) ` +
        `${LEFT} > ${RIGHT} through examples/forward.ts --quiet`,
    );
    const sender = role(left, "sender", { stderr: true });
    children.push(sender);
    const sent = await sender.done();
    if (sent.code !== 0) throw new Error(`the sender exited with ${sent.code}: ${sent.stderr}`);
    const sending = JSON.parse(sender.lines.at(-1)!);
    await receiver.process.stdin.close();
    const got = await receiver.done();
    if (got.code !== 0) throw new Error(`the receiver exited with ${got.code}: ${got.stderr}`);
    const receiving = JSON.parse(receiver.lines.at(-1)!);
    const kernel = {
      left: drops(left, a),
      right: drops(right, b),
      udpLeft: udpInErrors(left),
      udpRight: udpInErrors(right),
    };
    forwarder.kill("SIGTERM");
    const stopped = await forwarder.done();
    if (stopped.code !== 0) throw new Error(`the forwarder exited with ${stopped.code}`);
    const forwarded = Number(/^forwarded (\d+) packets$/.exec(forwarder.lines.at(-1) ?? "")?.[1]);
    // Where a datagram on its way from sender to receiver is counted when dropped: the
    // left device's queue to the forwarder, the right device's input, the receiving socket.
    const counted = kernel.left.tx + kernel.right.rx + kernel.udpRight;
    const lost = sending.sent - receiving.received;
    const result = {
      seconds: SECONDS,
      sent: sending.sent,
      forwarded,
      received: receiving.received,
      acks: receiving.acks,
      lost,
      kernelDrops: kernel,
      duplicated: receiving.duplicated,
      reordered: receiving.reordered,
      corrupted: receiving.corrupted,
      windowStalls: sending.stalls,
    };
    console.log(
      `soak: sent ${result.sent}, forwarded ${forwarded} (both ways, ${result.acks} acks ` +
        `included), received ${result.received}`,
    );
    console.log(
      `soak: kernel drops: ${a} rx ${kernel.left.rx} tx ${kernel.left.tx}, ${b} rx ` +
        `${kernel.right.rx} tx ${kernel.right.tx}, UDP InErrors left ${kernel.udpLeft} right ` +
        `${kernel.udpRight}`,
    );
    const problems = [
      lost > counted && `${lost - counted} lost beyond the ${counted} the kernel counted`,
      lost < 0 && `${-lost} more received than sent`,
      result.duplicated > 0 && `${result.duplicated} duplicated`,
      result.reordered > 0 && `${result.reordered} reordered`,
      result.corrupted > 0 && `${result.corrupted} corrupted`,
      result.sent === 0 && "nothing sent",
    ].filter(Boolean);
    console.log(
      `soak: lost ${lost} (kernel counted ${counted}), duplicated ${result.duplicated}, ` +
        `reordered ${result.reordered}, corrupted ${result.corrupted}: ` +
        (problems.length === 0 ? "ok" : `FAILED: ${problems.join("; ")}`),
    );
    console.log(`soak result ${JSON.stringify(result)}`);
    return problems.length === 0 ? 0 : 1;
  } finally {
    for (const child of children) child.kill();
    await Promise.all(children.map((child) => child.done()));
    clearTimeout(watchdog);
  }
}

if (values.role === "sender") await sender();
else if (values.role === "receiver") await receiver();
else Deno.exit(await soak());
