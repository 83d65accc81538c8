/**
 * The library's side of the benchmark: the work `tun_bench.c` does, through
 * the public API. bench/main.ts runs it as a child process with
 * `deno run --allow-ffi --allow-read --allow-env=TUNTAP_BENCH_MODULE`:
 *
 *   ts_bench.ts write write|writeBatch|writable DEV COUNT WARMUP SECONDS HEX
 *   ts_bench.ts read read|iterate|readable|readInto|readBatch DEV
 *                                              then lines "COUNT SECONDS" on stdin
 *
 * It speaks the same protocol as the C program (see tun_bench.c) and times
 * only what the C program times, so process start stays out of the number;
 * main.ts leaves JIT warm-up out with an untimed first batch.
 * `TUNTAP_BENCH_MODULE` names another copy of `mod.ts` to measure (a patched
 * scratch copy, say); `--allow-read` is there for that dynamic import.
 *
 * @module
 */

type Module = typeof import("../mod.ts");
type Tun = import("../mod.ts").TunInterface;

const moduleUrl = Deno.env.get("TUNTAP_BENCH_MODULE") ??
  new URL("../mod.ts", import.meta.url).href;
const { TunInterface } = await import(moduleUrl) as Module;

// The clock is read once per this many packets, as in tun_bench.c.
const CLOCK_EVERY = 1024;
// Packets per readBatch()/writeBatch() call.
const BATCH = 64;

function usage(): never {
  console.error(
    "usage: ts_bench.ts write write|writeBatch|writable DEV COUNT WARMUP SECONDS HEX\n" +
      "       ts_bench.ts read read|iterate|readable|readInto|readBatch DEV",
  );
  Deno.exit(2);
}

function whole(text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || !Number.isSafeInteger(value) || value < 0) usage();
  return value;
}

function unhex(hex: string): Uint8Array {
  if (hex.length === 0 || hex.length % 2 !== 0) usage();
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** Writes `count` packets (fewer when `seconds` run out); returns how many. */
type Writer = (packet: Uint8Array, count: number, seconds: number) => Promise<number>;

async function writeLoop(
  write: (packet: Uint8Array) => Promise<unknown>,
  packet: Uint8Array,
  count: number,
  seconds: number,
): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  while (done < count) {
    await write(packet);
    done++;
    if (done % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
  }
  return done;
}

function writers(tun: Tun): Record<string, Writer> {
  return {
    write: (packet, count, seconds) => writeLoop((p) => tun.write(p), packet, count, seconds),
    writeBatch: async (packet, count, seconds) => {
      // Copies, not one buffer 64 times: a real batch comes from many buffers.
      const batch = Array.from({ length: BATCH }, () => packet.slice());
      const deadline = performance.now() + seconds * 1000;
      let done = 0;
      let clock = CLOCK_EVERY;
      while (done < count) {
        const left = count - done;
        done += await tun.writeBatch(left >= BATCH ? batch : batch.slice(0, left));
        if (done >= clock) {
          clock += CLOCK_EVERY;
          if (performance.now() >= deadline) break;
        }
      }
      return done;
    },
    writable: async (packet, count, seconds) => {
      const writer = tun.writable.getWriter();
      try {
        return await writeLoop((p) => writer.write(p), packet, count, seconds);
      } finally {
        writer.releaseLock();
      }
    },
  };
}

async function runWrite(args: string[]): Promise<void> {
  const [variant, dev, count, warmup, seconds, hex] = args;
  if (hex === undefined) usage();
  const packet = unhex(hex);
  using tun = TunInterface.open({ name: dev, mode: "tun", packetInfo: false });
  const writer = writers(tun)[variant];
  if (writer === undefined) usage();
  await writer(packet, whole(warmup), whole(seconds));
  const start = performance.now();
  const packets = await writer(packet, whole(count), whole(seconds));
  const ns = Math.round((performance.now() - start) * 1e6);
  console.log(JSON.stringify({ packets, ns }));
}

interface ReadCount {
  packets: number;
  bytes: number;
}

/** Reads until `count` packets, `deadline` (performance.now() ms) or the device closes. */
type Reader = (count: number, deadline: number) => Promise<ReadCount>;

function readers(tun: Tun): Record<string, Reader> {
  // The loops are written out for each API: a shared loop calling an async
  // helper would add a promise per packet that the API itself does not cost.
  const buffer = new Uint8Array(tun.readBufferSize);
  const buffers = Array.from({ length: BATCH }, () => new Uint8Array(tun.readBufferSize));
  const sizes = new Uint32Array(BATCH);
  return {
    read: async (count, deadline) => {
      let packets = 0;
      let bytes = 0;
      while (packets < count) {
        const packet = await tun.read();
        if (packet === null) break;
        packets++;
        bytes += packet.length;
        if (packets % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
      }
      return { packets, bytes };
    },
    iterate: async (count, deadline) => {
      let packets = 0;
      let bytes = 0;
      if (count === 0) return { packets, bytes };
      // A fresh iterator per call: breaking out of the loop would end a shared one.
      for await (const packet of tun) {
        packets++;
        bytes += packet.length;
        if (packets >= count) break;
        if (packets % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
      }
      return { packets, bytes };
    },
    readable: async (count, deadline) => {
      let packets = 0;
      let bytes = 0;
      const reader = tun.readable.getReader();
      try {
        while (packets < count) {
          const { value, done } = await reader.read();
          if (done) break;
          packets++;
          bytes += value.length;
          if (packets % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
        }
      } finally {
        reader.releaseLock();
      }
      return { packets, bytes };
    },
    readInto: async (count, deadline) => {
      let packets = 0;
      let bytes = 0;
      while (packets < count) {
        const length = await tun.readInto(buffer);
        if (length === null) break;
        packets++;
        bytes += length;
        if (packets % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
      }
      return { packets, bytes };
    },
    readBatch: async (count, deadline) => {
      let packets = 0;
      let bytes = 0;
      let clock = CLOCK_EVERY;
      while (packets < count) {
        const left = count - packets;
        const n = await tun.readBatch(left >= BATCH ? buffers : buffers.slice(0, left), sizes);
        if (n === null) break;
        packets += n;
        for (let i = 0; i < n; i++) bytes += sizes[i];
        if (packets >= clock) {
          clock += CLOCK_EVERY;
          if (performance.now() >= deadline) break;
        }
      }
      return { packets, bytes };
    },
  };
}

/** Lines of stdin as they come. */
async function* stdinLines(): AsyncGenerator<string> {
  let pending = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    yield* parts;
  }
}

async function runRead(args: string[]): Promise<void> {
  const [variant, dev] = args;
  if (dev === undefined) usage();
  using tun = TunInterface.open({ name: dev, mode: "tun", packetInfo: false });
  const reader = readers(tun)[variant];
  if (reader === undefined) usage();
  console.log("ready");
  for await (const line of stdinLines()) {
    const [count, seconds] = line.trim().split(" ").map(Number);
    if (!(count >= 0 && seconds >= 0)) break;
    // When packets stop coming the loop waits in poll() and never reaches
    // its clock check; closing the device ends that wait.
    const backstop = setTimeout(() => tun.close(), seconds * 1000 + 1000);
    const start = performance.now();
    const { packets, bytes } = await reader(count, start + seconds * 1000);
    const ns = Math.round((performance.now() - start) * 1e6);
    clearTimeout(backstop);
    console.log(JSON.stringify({ packets, ns, bytes }));
    if (tun.closed) break;
  }
}

const [mode, ...rest] = Deno.args;
if (mode === "write") await runWrite(rest);
else if (mode === "read") await runRead(rest);
else usage();
