/**
 * Leaks: open/close cycles, reads interrupted by `close()`, aborted reads
 * and aborted batches leave the fd count and the memory where they started,
 * and the finalizer closes a forgotten handle's fds.
 *
 * Memory is only meaningful after a garbage collection, and `gc()` needs
 * `--expose-gc`, which `deno test` cannot be given per file: the cycles run
 * in a `deno run --v8-flags=--expose-gc` child and report back in JSON
 * (`--allow-all`: Deno asks for it to list `/proc/self/fd`).
 *
 * @module
 */
import { assert, assertStrictEquals } from "../assert.ts";
import { kernelTest, runScript, sh, uniqueName } from "../kernel.ts";

const CYCLES = 10_000;
// Memory may wander a little (code compiled, caches warmed): not a leak.
const MEMORY_SLACK = 2 * 1024 * 1024;

interface Phase {
  cycles: number;
  ms: number;
  fds: [number, number];
  memory: [number, number];
}

interface Report {
  phases: Record<string, Phase>;
  finalizer: { fds: [number, number, number]; devicesLeft: number; handles: number };
}

const script = (name: string, forgotten: string) => `
import { TunInterface } from "tuntap";

const gc = (globalThis as unknown as { gc: () => void }).gc;
const fdCount = () => [...Deno.readDirSync("/proc/self/fd")].length;
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
async function memory(): Promise<number> {
  // Finalizers and freed ArrayBuffers take a few turns to go.
  for (let i = 0; i < 4; i++) {
    gc();
    await tick();
  }
  const usage = Deno.memoryUsage();
  return usage.heapUsed + usage.external;
}

const phases: Record<string, unknown> = {};
async function phase(label: string, body: () => Promise<void>): Promise<void> {
  // One round first, so that what is made once (libc, code, the first slab) is not counted.
  await body();
  const fds = fdCount();
  const before = await memory();
  const start = performance.now();
  for (let i = 0; i < ${CYCLES}; i++) await body();
  const ms = performance.now() - start;
  phases[label] = { cycles: ${CYCLES}, ms, fds: [fds, fdCount()], memory: [before, await memory()] };
}

const name = ${JSON.stringify(name)};
// Persistent, so that the cycles measure the handle, not the kernel making devices.
TunInterface.open({ name, persist: true }).close();

await phase("open/close", async () => {
  TunInterface.open({ name }).close();
});
await phase("read interrupted by close()", async () => {
  const tun = TunInterface.open({ name });
  const read = tun.read();
  tun.close();
  if (await read !== null) throw new Error("the read did not end with null");
});
{
  using tun = TunInterface.open({ name });
  await phase("aborted read", async () => {
    const controller = new AbortController();
    const read = tun.read({ signal: controller.signal });
    controller.abort();
    await read.then(() => { throw new Error("not aborted"); }, () => {});
  });
  const buffers = [new Uint8Array(tun.readBufferSize), new Uint8Array(tun.readBufferSize)];
  const sizes = new Uint32Array(2);
  await phase("aborted readBatch", async () => {
    const controller = new AbortController();
    const batch = tun.readBatch(buffers, sizes, { signal: controller.signal });
    controller.abort();
    await batch.then(() => { throw new Error("not aborted"); }, () => {});
  });
}
TunInterface.open({ name, persist: false }).close();

// Handles nobody closes: the finalizer must close their fds (and so delete the devices).
await memory();
const fdsBefore = fdCount();
const handles = 5;
(() => {
  for (let i = 0; i < handles; i++) TunInterface.open({ name: ${JSON.stringify(forgotten)} + i });
})();
const fdsHeld = fdCount();
for (let i = 0; i < 50 && fdCount() > fdsBefore; i++) await memory();
let devicesLeft = 0;
for (let i = 0; i < handles; i++) {
  try {
    Deno.statSync("/sys/class/net/" + ${JSON.stringify(forgotten)} + i);
    devicesLeft++;
  } catch {
    // gone, as it should be
  }
}
console.log(JSON.stringify({
  phases,
  finalizer: { fds: [fdsBefore, fdsHeld, fdCount()], devicesLeft, handles },
}));
`;

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;

kernelTest(
  `${CYCLES} open/close cycles, interrupted reads, aborted reads and batches leak no fd ` +
    `and no memory; the finalizer closes a forgotten handle's fds`,
  () => {
    const name = uniqueName("leak");
    const forgotten = uniqueName("lost");
    const result = runScript(script(name, forgotten), {
      permissions: ["--allow-all", "--v8-flags=--expose-gc"],
    });
    assertStrictEquals(result.code, 0, result.stderr);
    const report: Report = JSON.parse(result.stdout.trim().split("\n").pop()!);
    for (const [label, phase] of Object.entries(report.phases)) {
      console.log(
        `${label}: ${phase.cycles} cycles in ${(phase.ms / 1000).toFixed(1)} s; fds ` +
          `${phase.fds[0]} -> ${phase.fds[1]}; memory (heap + external after gc) ` +
          `${mib(phase.memory[0])} -> ${mib(phase.memory[1])}`,
      );
      assertStrictEquals(phase.fds[1], phase.fds[0], `${label}: fds`);
      assert(phase.memory[1] - phase.memory[0] <= MEMORY_SLACK, `${label}: memory grew`);
    }
    const { fds, devicesLeft, handles } = report.finalizer;
    console.log(
      `finalizer: ${handles} forgotten handles; fds ${fds.join(" -> ")}; ` +
        `${devicesLeft} devices left`,
    );
    assert(fds[1] > fds[0], "the handles held no fd");
    assertStrictEquals(fds[2], fds[0], "the finalizer left fds open");
    assertStrictEquals(devicesLeft, 0);
    assert(!sh("ip -br link").includes(name));
  },
);
