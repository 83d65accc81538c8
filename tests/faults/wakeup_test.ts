/**
 * Regressions of issue 11, items 1 and 2: a wait never gets stuck, and
 * `close()` releases the device before it returns. Each fails on the
 * waiting of before commit 85ba12d (one `poll()` on the device fd whose
 * events were fixed by the waiters present when it started, and a device fd
 * kept open until that poll returned); the last one also fails on that
 * commit's per-handle epoll fd and eventfd, which stayed open until the
 * event loop turned.
 *
 * @module
 */
import { TunError, TunInterface } from "../../mod.ts";
import { assert, assertEquals, assertStrictEquals } from "../assert.ts";
import {
  interfaceExists,
  ipJson,
  kernelTest,
  openFdCount,
  sh,
  uniqueName,
  within,
} from "../kernel.ts";
import { throttle } from "./backpressure.ts";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise with whether (and when) it settled. */
function watch<T>(promise: Promise<T>) {
  const state = { settled: false, at: 0, promise };
  promise.then(
    () => {},
    () => {},
  ).finally(() => {
    state.settled = true;
    state.at = performance.now();
  });
  return state;
}

function tapDevice(prefix: string): TunInterface {
  return TunInterface.open({ name: uniqueName(prefix), mode: "tap" });
}

const rxPackets = (name: string): number =>
  ipJson(`-s link show dev ${name}`)[0].stats64.rx.packets;

kernelTest(
  "writes waiting for room finish once room comes, with a read pending and no frame arriving",
  async () => {
    using tap = tapDevice("wroom");
    using pressure = throttle(tap);
    // The read first: a poll fixed to its waiters would then watch input only.
    const read = watch(tap.read());
    pressure.fill();
    const writes = [
      watch(tap.write(pressure.frame(1))),
      watch(tap.writeBatch([pressure.frame(2), pressure.frame(3)])),
      watch(tap.write(pressure.frame(4))),
    ];
    await pause(100);
    assert(writes.every((write) => !write.settled), "the writes did not wait");
    pressure.release();
    assertEquals(
      await within(Promise.all(writes.map((write) => write.promise)), 1000, "writes"),
      [100, 2, 100],
    );
    assert(!read.settled, "a frame arrived: the test is not quiet");
    tap.close();
    assertStrictEquals(await read.promise, null);
  },
);

kernelTest("writes waiting for room alone finish once room comes", async () => {
  using tap = tapDevice("wroom");
  using pressure = throttle(tap);
  pressure.fill();
  const write = watch(tap.write(pressure.frame(1)));
  await pause(100);
  assert(!write.settled, "the write did not wait");
  pressure.release();
  assertStrictEquals(await within(write.promise, 1000, "write"), 100);
});

kernelTest("a read started while writes wait gets the frame that arrives", async () => {
  using tap = tapDevice("rwait");
  using pressure = throttle(tap);
  pressure.fill();
  // The write first: a poll fixed to its waiters would then watch output only.
  const write = watch(tap.write(pressure.frame(1)));
  await pause(50);
  const read = tap.read();
  await pause(50);
  pressure.arrive();
  const frame = await within(read, 1000, "the read");
  assert(frame !== null);
  // The peer's frame, to the MAC the TAP writes from.
  assertEquals([...frame.subarray(0, 14)], [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0x42, 0x88, 0xb5]);
  assert(!write.settled, "the write should still wait for room");
  pressure.release();
  assertStrictEquals(await within(write.promise, 1000, "write"), 100);
});

kernelTest(
  "deleting the device with writes waiting settles the writes and a read at once",
  async () => {
    let worst = 0;
    for (let round = 0; round < 3; round++) {
      using tap = tapDevice("wdel");
      using pressure = throttle(tap);
      pressure.fill();
      // Writes first, then the read: the kernel wakes with EPOLLIN alone on deletion.
      const pending = [
        watch(tap.write(pressure.frame(1))),
        watch(tap.writeBatch([pressure.frame(2), pressure.frame(3)])),
        watch(tap.read()),
      ];
      await pause(50);
      assert(pending.every((each) => !each.settled), "nothing should have settled yet");
      const start = performance.now();
      sh(`ip link del ${tap.name}`);
      const outcomes = await within(
        Promise.allSettled(pending.map((each) => each.promise)),
        1000,
        "after deletion",
      );
      const settleMs = Math.max(...pending.map((each) => each.at)) - start;
      worst = Math.max(worst, settleMs);
      for (const outcome of outcomes) {
        assertStrictEquals(outcome.status, "rejected");
        const error = (outcome as PromiseRejectedResult).reason;
        assert(error instanceof TunError, String(error));
        assertStrictEquals(error.code, "EBADFD");
        assert(/deleted/.test(error.message), error.message);
      }
      tap.close();
    }
    console.log(`deleted with writes waiting: all settled, worst ${worst.toFixed(1)} ms`);
    assert(worst <= 1000, `worst settle ${worst} ms`);
  },
);

kernelTest(
  "close() while writeBatch waits rejects it with a TunError saying how many were written",
  async () => {
    using tap = tapDevice("wbclose");
    using pressure = throttle(tap);
    const before = rxPackets(tap.name);
    const frames = Array.from({ length: 1000 }, (_, i) => pressure.frame(i));
    const batch = watch(tap.writeBatch(frames));
    await pause(100);
    assert(!batch.settled, "the batch did not wait");
    // What the kernel took: the frames the TAP received from the program.
    const taken = rxPackets(tap.name) - before;
    tap.close();
    const error = await within(batch.promise.then(() => undefined, (e) => e), 1000, "batch");
    assert(error instanceof TunError, String(error));
    assertStrictEquals(error.code, "EBADF");
    assertStrictEquals(error.written, taken);
    assert(taken > 0 && taken < frames.length, `taken ${taken}`);
    console.log(`writeBatch closed while waiting: written ${error.written} of ${frames.length}`);
  },
);

kernelTest("read(), close(), open() of the same name succeeds 200 times out of 200", async () => {
  const name = uniqueName("reopen");
  let failures = 0;
  // Persistent, so that the loop does not wait for the kernel to delete and
  // create a device each time: the second open still fails with EBUSY while
  // the first fd is attached.
  for (let i = 0; i < 200; i++) {
    const a = TunInterface.open({ name, persist: i === 0 ? true : undefined });
    const read = a.read();
    a.close();
    try {
      TunInterface.open({ name }).close();
    } catch (error) {
      failures++;
      if (!(error instanceof TunError)) throw error;
    }
    assertStrictEquals(await read, null);
  }
  console.log(`read, close, open: ${200 - failures}/200 opens succeeded`);
  assertStrictEquals(failures, 0);
  TunInterface.open({ name, persist: false }).close();
  assert(!interfaceExists(name));
});

kernelTest("await using ends its block with the device gone and its name free", async () => {
  const name = uniqueName("ausing");
  let read: Promise<Uint8Array | null>;
  {
    await using tun = TunInterface.open({ name });
    read = tun.read();
  }
  assert(!interfaceExists(name), "the device outlived its block");
  TunInterface.open({ name, exclusive: true }).close();
  assertStrictEquals(await read, null);
});

kernelTest(
  "close() gives back every fd at once, even when the event loop never turns",
  async () => {
    const name = uniqueName("fdnow");
    TunInterface.open({ name, persist: true }).close();
    try {
      const before = openFdCount();
      // Only microtasks in between: a poll that ends later cannot release anything here.
      for (let i = 0; i < 100; i++) {
        const tun = TunInterface.open({ name });
        const read = tun.read();
        tun.close();
        assertStrictEquals(await read, null);
      }
      const after = openFdCount();
      console.log(
        `100 reads interrupted by close() without a macrotask: fds ${before} -> ${after}`,
      );
      assertStrictEquals(after, before);
    } finally {
      TunInterface.open({ name, persist: false }).close();
    }
  },
);
