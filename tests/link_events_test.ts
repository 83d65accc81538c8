import { assert, assertEquals, assertRejects } from "./assert.ts";
import { interfaceExists, kernelTest, openFdCount, sh, uniqueName, within } from "./kernel.ts";
import { TunInterface, type TunLinkEvent, watchLinks } from "../mod.ts";
import { watchLinkEvents } from "../src/link_events.ts";

// The issue asks for 100 ms; under a loaded 2-core machine only a generous
// bound is safe to assert, and the worst latency seen is printed.
const BOUND_MS = 1000;

/** The next event that `accept` takes, with how long it took; fails after `ms`. */
async function nextMatching(
  events: AsyncIterator<TunLinkEvent>,
  accept: (event: TunLinkEvent) => boolean,
  what: string,
  ms = BOUND_MS,
): Promise<{ event: TunLinkEvent; skipped: TunLinkEvent[] }> {
  const skipped: TunLinkEvent[] = [];
  const search = async () => {
    for (let i = 0; i < 100; i++) {
      const result = await events.next();
      if (result.done) throw new Error(`${what}: the watch ended`);
      if (accept(result.value)) return { event: result.value, skipped };
      skipped.push(result.value);
    }
    throw new Error(`${what}: not among 100 events`);
  };
  return await within(search(), ms, what);
}

kernelTest(
  "watchLinks reports a TUN device's add, up, down, MTU change and delete promptly",
  async () => {
    const events = watchLinks();
    const latencies: Record<string, number> = {};
    const timed = async (
      what: string,
      act: () => void,
      accept: (event: TunLinkEvent) => boolean,
    ): Promise<TunLinkEvent> => {
      const start = performance.now();
      act();
      const { event } = await nextMatching(events, accept, what);
      latencies[what] = performance.now() - start;
      return event;
    };
    try {
      let tun: TunInterface | undefined;
      const name = uniqueName("evt");
      const added = await timed(
        "add",
        () => tun = TunInterface.open({ name }),
        (e) => e.name === name,
      );
      assertEquals(added.kind, "added");
      assertEquals(added.index, tun!.index);
      assertEquals(added.up, false);
      const up = await timed("up", () => tun!.up(), (e) => e.name === name && e.up);
      assertEquals(up.kind, "changed");
      assertEquals(up.carrier, true);
      const down = await timed("down", () => tun!.down(), (e) => e.name === name && !e.up);
      assertEquals(down.kind, "changed");
      const mtu = await timed(
        "mtu",
        () => tun!.setMtu(1400),
        (e) => e.name === name && e.mtu === 1400,
      );
      assertEquals(mtu.kind, "changed");
      const removed = await timed("delete", () => tun!.close(), (e) => e.kind === "removed");
      assertEquals(removed, { ...removed, name, index: added.index, mtu: 1400 });
      const worst = Math.max(...Object.values(latencies));
      console.log(
        `link event latency (ms): ${
          Object.entries(latencies).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")
        }; worst ${worst.toFixed(1)}`,
      );
    } finally {
      await events.return!();
    }
  },
);

kernelTest(
  "watchLinks reports a change only when name, state, carrier or MTU changed",
  async () => {
    const events = watchLinks();
    try {
      using tun = TunInterface.open({ name: uniqueName("evq") });
      await nextMatching(events, (e) => e.kind === "added", "add");
      // Setting what is already set makes the kernel send RTM_NEWLINK anyway.
      tun.setMtu(tun.mtu);
      tun.down();
      sh(`ip link set ${tun.name} txqueuelen 700`);
      tun.setMtu(1300);
      const { event, skipped } = await nextMatching(events, (e) => e.mtu === 1300, "mtu");
      assertEquals(skipped, []);
      assertEquals(event.kind, "changed");
    } finally {
      await events.return!();
    }
  },
);

kernelTest("watchLinks knows TUN devices that existed before it began", async () => {
  const name = uniqueName("evp");
  sh(`ip tuntap add mode tap name ${name}`);
  const index = Number(sh(`cat /sys/class/net/${name}/ifindex`));
  const events = watchLinks();
  try {
    sh(`ip link set ${name} mtu 1280`);
    const changed = await nextMatching(events, () => true, "change");
    assertEquals(changed.event, {
      kind: "changed",
      name,
      index,
      up: false,
      carrier: false,
      mtu: 1280,
    });
    sh(`ip link del ${name}`);
    const removed = await nextMatching(events, () => true, "delete");
    assertEquals(removed.event.kind, "removed");
    assertEquals(removed.event.index, index);
  } finally {
    await events.return!();
    if (interfaceExists(name)) sh(`ip link del ${name}`);
  }
});

kernelTest("watchLinks leaves out links that are not TUN/TAP unless asked for all", async () => {
  const tunOnly = watchLinks();
  const all = watchLinks({ all: true });
  const veth = uniqueName("evv");
  try {
    sh(`ip link add ${veth}a type veth peer name ${veth}b && ip link set ${veth}a up`);
    // A TUN device after the veth pair: the first thing the TUN watch reports.
    using tun = TunInterface.open({ name: uniqueName("evm") });
    const first = await nextMatching(tunOnly, () => true, "first TUN-only event");
    assertEquals([first.event.kind, first.event.name], ["added", tun.name]);
    const { skipped } = await nextMatching(all, (e) => e.name === tun.name, "TUN in all");
    const names = new Set(skipped.filter((e) => e.kind === "added").map((e) => e.name));
    assert(names.has(`${veth}a`) && names.has(`${veth}b`), [...names].join(", "));
  } finally {
    await tunOnly.return!();
    await all.return!();
    sh(`ip link del ${veth}a`);
  }
});

/** Makes the isolate's shared epoll set, so that fd counts see only the watch. */
async function warmUp(): Promise<void> {
  await watchLinks().return!();
}

kernelTest("aborting watchLinks rejects the pending step and closes the socket", async () => {
  await warmUp();
  const before = openFdCount();
  const controller = new AbortController();
  const events = watchLinks({ signal: controller.signal });
  assertEquals(openFdCount(), before + 1);
  const pending = events.next();
  setTimeout(() => controller.abort(new Error("enough")), 20);
  await assertRejects(() => pending, Error, "enough");
  assertEquals(openFdCount(), before);
  await assertRejects(() => events.next(), Error, "enough");
});

kernelTest("breaking out of watchLinks closes the socket", async () => {
  await warmUp();
  const before = openFdCount();
  const name = uniqueName("evb");
  const watch = (async () => {
    for await (const event of watchLinks()) {
      if (event.name === name) return event;
    }
  })();
  // Let the watch reach its wait before the device appears.
  await new Promise((resolve) => setTimeout(resolve, 20));
  using _tun = TunInterface.open({ name });
  const event = await within(watch, BOUND_MS, "added");
  assertEquals(event?.kind, "added");
  assertEquals(openFdCount(), before + 1); // the device's fd only
});

kernelTest("watchLinks with an aborted signal opens nothing that stays open", async () => {
  await warmUp();
  const before = openFdCount();
  const events = watchLinks({ signal: AbortSignal.abort(new Error("already")) });
  assertEquals(openFdCount(), before);
  await assertRejects(() => events.next(), Error, "already");
});

kernelTest("watchLinkEvents follows one device and ends once it is deleted", async () => {
  using other = TunInterface.open({ name: uniqueName("evo") });
  const tun = TunInterface.open({ name: uniqueName("evd") });
  await warmUp();
  const before = openFdCount();
  const events = watchLinkEvents(tun.index);
  other.setMtu(1234);
  tun.setMtu(1420);
  const changed = await nextMatching(events, () => true, "change");
  assertEquals([changed.event.kind, changed.event.name, changed.event.mtu], [
    "changed",
    tun.name,
    1420,
  ]);
  tun.close();
  const removed = await nextMatching(events, () => true, "delete");
  assertEquals(removed.event.kind, "removed");
  assertEquals(await within(events.next(), BOUND_MS, "end"), { done: true, value: undefined });
  assertEquals(openFdCount(), before - 1); // the device's fd and the watch's socket are gone
});

kernelTest("watchLinkEvents of an index no link has ends at once", async () => {
  await warmUp();
  const before = openFdCount();
  const events = watchLinkEvents(0x7ffffff0);
  assertEquals(await within(events.next(), BOUND_MS, "end"), { done: true, value: undefined });
  assertEquals(openFdCount(), before);
});

/** Drops counted on this namespace's sockets in the link group (`/proc/net/netlink`). */
function linkGroupDrops(): number {
  // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  return Deno.readTextFileSync("/proc/net/netlink").trim().split("\n").slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1] === "0" && (parseInt(fields[3], 16) & 1) !== 0)
    .reduce((sum, fields) => sum + Number(fields[8]), 0);
}

/** Runs `ip -batch` over `commands`. */
function ipBatch(commands: string[], flags = ""): void {
  const batch = Deno.makeTempFileSync();
  try {
    Deno.writeTextFileSync(batch, commands.join("\n") + "\n");
    sh(`ip ${flags} -batch ${batch}`);
  } finally {
    Deno.removeSync(batch);
  }
}

kernelTest("watchLinks catches up after the kernel dropped messages it did not read", async () => {
  const events = watchLinks();
  const prefix = uniqueName("evf");
  const count = 150;
  const names = Array.from({ length: count }, (_, i) => `${prefix}x${i}`);
  try {
    // Far more messages than the socket's buffer holds, none read meanwhile;
    // the even-numbered devices are deleted again.
    const dropsBefore = linkGroupDrops();
    ipBatch([
      ...names.map((name) => `tuntap add mode tun name ${name}`),
      ...names.filter((_, i) => i % 2 === 0).map((name) => `link del ${name}`),
    ]);
    assert(linkGroupDrops() > dropsBefore, "the kernel dropped no message: nothing to catch up");
    const expected = names.filter((_, i) => i % 2 === 1).sort().join();
    const live = new Map<number, string>();
    await within(
      (async () => {
        while ([...live.values()].sort().join() !== expected) {
          const { value: event } = await events.next() as IteratorYieldResult<TunLinkEvent>;
          if (event.kind === "removed") live.delete(event.index);
          else live.set(event.index, event.name);
        }
      })(),
      10_000,
      "catching up",
    );
  } finally {
    await events.return!();
    ipBatch(names.filter((_, i) => i % 2 === 1).map((name) => `link del ${name}`), "-force");
  }
});

kernelTest("tun.events() reports the device's changes and ends when it is deleted", async () => {
  const tun = TunInterface.open({ name: uniqueName("tev") });
  const events = tun.events();
  tun.setMtu(1400);
  const changed = await within(events.next(), 1000, "change");
  assertEquals(changed.value?.kind, "changed");
  assertEquals(changed.value?.mtu, 1400);
  tun.close();
  assertEquals((await within(events.next(), 1000, "delete")).value?.kind, "removed");
  assertEquals((await within(events.next(), 1000, "end")).done, true);
});
