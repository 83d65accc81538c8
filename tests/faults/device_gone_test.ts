/**
 * Faults: the device deleted, or its network namespace destroyed, while
 * every kind of wait is pending. Each settles with `null` or a `TunError`
 * naming the cause, and `close()` afterwards is fine.
 *
 * @module
 */
import { TunError, TunInterface, type TunMode } from "../../mod.ts";
import { assert, assertStrictEquals } from "../assert.ts";
import { interfaceExists, kernelTest, sh, uniqueName, within } from "../kernel.ts";
import { throttle } from "./backpressure.ts";

type Fault = "device deleted" | "namespace destroyed";

/** How long the waits took to settle, in milliseconds, and how. */
interface Settled {
  /** From the start of the `ip` command that injects the fault (process start-up included). */
  fromCommand: number;
  /** From its return: the kernel's own work on the fault, and the library's. */
  afterCommand: number;
  /** What each wait settled with. */
  outcomes: string[];
}

interface Pending {
  what: string;
  promise: Promise<unknown>;
  /** When it settled (performance.now()), 0 until then. */
  at: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let worstMs = 0;
const ROUNDS = 3;

/**
 * Starts a read, a readBatch, an iterator step, a `readable` read and (on
 * TAP, where back-pressure can be made) waiting writes, injects the fault,
 * and checks how each settled.
 */
async function survive(mode: TunMode, fault: Fault): Promise<Settled> {
  const tun = TunInterface.open({ name: uniqueName(`f${mode}`), mode });
  const netns = fault === "namespace destroyed" ? uniqueName("fns") : undefined;
  try {
    // Moved only once attached: a device is created in the namespace of its opener.
    if (netns) sh(`ip netns add ${netns} && ip link set dev ${tun.name} netns ${netns}`);
    const inside = netns ? `ip netns exec ${netns} ` : "";
    using pressure = mode === "tap" ? throttle(tun, { netns }) : undefined;
    if (!pressure) {
      // No IPv6, so nothing reaches the device unasked.
      sh(`${inside}sysctl -qw net.ipv6.conf.${tun.name}.disable_ipv6=1`);
      sh(`${inside}ip link set ${tun.name} up`);
    }
    const buffers = [new Uint8Array(tun.readBufferSize), new Uint8Array(tun.readBufferSize)];
    const started: [string, Promise<unknown>][] = [
      ["read", tun.read()],
      ["readBatch", tun.readBatch(buffers, new Uint32Array(2))],
      ["iterator", tun.packets().next()],
      ["readable", tun.readable.getReader().read()],
    ];
    if (pressure) {
      pressure.fill();
      started.push(["write", tun.write(pressure.frame(1))]);
      started.push(["writeBatch", tun.writeBatch([pressure.frame(2), pressure.frame(3)])]);
    }
    const pending: Pending[] = started.map(([what, promise]) => {
      const each: Pending = { what, promise, at: 0 };
      promise.then(() => {}, () => {}).finally(() => each.at = performance.now());
      return each;
    });
    await pause(50);
    for (const each of pending) assertStrictEquals(each.at, 0, `${each.what} settled early`);

    const start = performance.now();
    sh(netns ? `ip netns del ${netns}` : `ip link del ${tun.name}`);
    const returned = performance.now();
    const outcomes = await within(
      Promise.allSettled(pending.map((each) => each.promise)),
      1000,
      `${mode}, ${fault}`,
    );
    const seen: string[] = [];
    for (const [i, outcome] of outcomes.entries()) {
      const { what } = pending[i];
      seen.push(
        `${what} ${outcome.status === "fulfilled" ? "null" : (outcome.reason as TunError).code}`,
      );
      if (outcome.status === "fulfilled") {
        const value = outcome.value as { done?: boolean } | null;
        // Only null (or an ended iterator or stream) says "closed".
        assert(value === null || value.done === true, `${what} got ${String(value)}`);
      } else {
        const error = outcome.reason;
        assert(error instanceof TunError, `${what}: ${String(error)}`);
        assertStrictEquals(error.code, "EBADFD", `${what}: ${error.message}`);
        assert(/deleted/.test(error.message), `${what}: ${error.message}`);
      }
    }
    const last = Math.max(...pending.map((each) => each.at));
    tun.close();
    assert(tun.closed);
    assertStrictEquals(await tun.read(), null);
    assert(!interfaceExists(tun.name));
    return {
      fromCommand: last - start,
      afterCommand: Math.max(0, last - returned),
      outcomes: seen,
    };
  } finally {
    tun.close();
    if (netns && sh("ip netns list").includes(netns)) sh(`ip netns del ${netns}`);
  }
}

for (const mode of ["tun", "tap"] as const) {
  for (const fault of ["device deleted", "namespace destroyed"] as const) {
    const writes = mode === "tap" ? ", writes" : "";
    kernelTest(
      `${mode.toUpperCase()}: ${fault} with reads, readBatch, an iterator, readable${writes} ` +
        `pending: all settle, close() is fine`,
      async () => {
        let worst = 0;
        let worstAfter = 0;
        let outcomes: string[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const settled = await survive(mode, fault);
          worst = Math.max(worst, settled.fromCommand);
          worstAfter = Math.max(worstAfter, settled.afterCommand);
          outcomes = settled.outcomes;
        }
        worstMs = Math.max(worstMs, worst);
        console.log(
          `${mode}, ${fault}: ${ROUNDS} faults survived (${outcomes.join(", ")}); worst settle ` +
            `${worst.toFixed(1)} ms from the ip command's start, ${worstAfter.toFixed(1)} ms ` +
            `after it returned; worst in this file so far ${worstMs.toFixed(1)} ms`,
        );
        assert(worst <= 1000, `worst settle ${worst} ms`);
      },
    );
  }
}
