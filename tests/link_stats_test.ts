import { buildUdp, tunDeviceInfo, tunDeviceStats, TunError, TunInterface } from "../mod.ts";
import type { TunDeviceStats } from "../mod.ts";
import { readLinkStats } from "../src/link_stats.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "./assert.ts";
import { tuntap } from "./cli_run.ts";
import { ipJson, isIpv4Udp, kernelTest, quietDevice, readUntil, uniqueName } from "./kernel.ts";

type Direction = Record<string, number>;

// Where `ip -s -s -j link show` prints each counter. ip leaves out the
// compressed, nohandler and otherhost counters while they are 0.
const IP_NAMES: Record<keyof TunDeviceStats, ["rx" | "tx", string]> = {
  rxPackets: ["rx", "packets"],
  txPackets: ["tx", "packets"],
  rxBytes: ["rx", "bytes"],
  txBytes: ["tx", "bytes"],
  rxErrors: ["rx", "errors"],
  txErrors: ["tx", "errors"],
  rxDropped: ["rx", "dropped"],
  txDropped: ["tx", "dropped"],
  multicast: ["rx", "multicast"],
  collisions: ["tx", "collisions"],
  rxLengthErrors: ["rx", "length_errors"],
  rxOverErrors: ["rx", "over_errors"],
  rxCrcErrors: ["rx", "crc_errors"],
  rxFrameErrors: ["rx", "frame_errors"],
  rxFifoErrors: ["rx", "fifo_errors"],
  rxMissedErrors: ["rx", "missed_errors"],
  txAbortedErrors: ["tx", "aborted_errors"],
  txCarrierErrors: ["tx", "carrier_errors"],
  txFifoErrors: ["tx", "fifo_errors"],
  txHeartbeatErrors: ["tx", "heartbeat_errors"],
  txWindowErrors: ["tx", "window_errors"],
  rxCompressed: ["rx", "compressed"],
  txCompressed: ["tx", "compressed"],
  rxNohandler: ["rx", "nohandler"],
  rxOtherhostDropped: ["rx", "otherhost_dropped"],
};
const ALWAYS_PRINTED = ["packets", "bytes", "errors", "dropped"];

/** The counters of `name` as `ip -s -s -j link show` prints them, in tuntap's shape. */
function ipStats(name: string): TunDeviceStats {
  const { stats64 } = ipJson<{ stats64: { rx: Direction; tx: Direction } }[]>(
    `-s -s link show dev ${name}`,
  )[0];
  for (const key of ALWAYS_PRINTED) {
    assert(key in stats64.rx && key in stats64.tx, JSON.stringify(stats64));
  }
  const stats = {} as TunDeviceStats;
  for (const [key, [direction, ipName]] of Object.entries(IP_NAMES)) {
    stats[key as keyof TunDeviceStats] = stats64[direction][ipName] ?? 0;
  }
  return stats;
}

/** `after - before`, for the counters that changed. */
function changes(before: TunDeviceStats, after: TunDeviceStats): Partial<TunDeviceStats> {
  const delta: Partial<TunDeviceStats> = {};
  for (const key of Object.keys(after) as (keyof TunDeviceStats)[]) {
    if (after[key] !== before[key]) delta[key] = after[key] - before[key];
  }
  return delta;
}

const sum = (packets: Uint8Array[]) => packets.reduce((total, p) => total + p.length, 0);

kernelTest(
  "tunDeviceStats counts what the program read as tx and what it wrote as rx, as ip -s does",
  async () => {
    using tun = quietDevice("stats");
    const before = tunDeviceStats(tun.name);
    assertEquals(before, ipStats(tun.name));

    // N datagrams the kernel routes into the device, read by the program.
    const sent = 7;
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 0 });
    const port = (socket.addr as Deno.NetAddr).port;
    const read: Uint8Array[] = [];
    const written: Uint8Array[] = [];
    try {
      for (let i = 0; i < sent; i++) {
        await socket.send(new TextEncoder().encode(`to the program ${i}`.repeat(i + 1)), {
          transport: "udp",
          hostname: "192.0.2.2",
          port: 9,
        });
      }
      for (let i = 0; i < sent; i++) read.push(await readUntil(tun, (p) => isIpv4Udp(p)));

      // M packets the program writes, each received by the socket (so none
      // is answered with an ICMP error that would count as tx).
      for (let i = 0; i < 5; i++) {
        const packet = buildUdp({
          source: "192.0.2.2",
          destination: "192.0.2.1",
          sourcePort: 9,
          destinationPort: port,
          payload: new Uint8Array(10 + 100 * i),
        });
        await tun.write(packet);
        written.push(packet);
        await socket.receive();
      }
    } finally {
      socket.close();
    }

    // Back to back: nothing moves between the two reads.
    const after = tunDeviceStats(tun.name);
    assertEquals(after, ipStats(tun.name));
    assertEquals(changes(before, after), {
      txPackets: sent,
      txBytes: sum(read),
      rxPackets: written.length,
      rxBytes: sum(written),
    });
  },
);

kernelTest(
  "packets routed into a full queue count as txDropped, a refused write as rxDropped",
  async () => {
    using tun = quietDevice("drops");
    tun.setTxQueueLength(4);
    const before = tunDeviceStats(tun.name);
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 0 });
    try {
      for (let i = 0; i < 10; i++) {
        await socket.send(new Uint8Array(8), { transport: "udp", hostname: "192.0.2.2", port: 9 });
      }
    } finally {
      socket.close();
    }
    // Nothing read yet: four wait in the queue, six were dropped.
    assertEquals(changes(before, tunDeviceStats(tun.name)), { txDropped: 6 });
    for (let i = 0; i < 4; i++) await readUntil(tun, (p) => isIpv4Udp(p));
    // An IP version the kernel does not know: the write is refused and counted.
    await assertRejects(tun.write(new Uint8Array(28)), (error) => error instanceof TunError);
    const after = tunDeviceStats(tun.name);
    assertEquals(changes(before, after), {
      txDropped: 6,
      txPackets: 4,
      txBytes: 4 * 36,
      rxDropped: 1,
    });
    assertEquals(after, ipStats(tun.name));
  },
);

kernelTest("a handle's Link reads the same counters, and a closed one is refused", async () => {
  using tun = quietDevice("statslink");
  await tun.write(new Uint8Array(28)).catch(() => {});
  const calls: string[] = [];
  const link = {
    index: tun.index,
    device: `TUN device "${tun.name}"`,
    closed: false,
    verify: (syscall: string, action: string) => void calls.push(`${syscall}: ${action}`),
  };
  const stats = readLinkStats(link);
  assertStrictEquals(stats.rxDropped, 1);
  assertEquals(stats, tunDeviceStats(tun.name));
  // The index is checked before it is used: it may name another device by now.
  assertEquals(calls, [
    `netlink(RTM_GETLINK): read the counters of TUN device "${tun.name}"`,
  ]);
  assertThrows(
    () => readLinkStats({ ...link, closed: true }),
    (error) =>
      error instanceof TunError && error.code === "EBADF" &&
      error.message.startsWith(`Cannot read the counters of TUN device "${tun.name}": EBADF`),
  );
});

kernelTest("tunDeviceStats refuses what tunDeviceInfo refuses, with the same errors", () => {
  using tap = TunInterface.open({ name: uniqueName("statsok"), mode: "tap" });
  for (const name of ["lo", "nosuchdev9", "a/b", "tun%d", "", "x".repeat(16)]) {
    const failure = (read: (name: string) => unknown) => {
      try {
        read(name);
      } catch (error) {
        return error as Error;
      }
      throw new Error(`${name} was not refused`);
    };
    const info = failure(tunDeviceInfo);
    const stats = failure(tunDeviceStats);
    assertStrictEquals(stats.constructor, info.constructor, name);
    assertStrictEquals(
      stats.message.replace("read the counters of TUN/TAP device", "read TUN/TAP device"),
      info.message,
    );
    if (info instanceof TunError) assertStrictEquals((stats as TunError).code, info.code);
  }
  assertEquals(Object.keys(tunDeviceStats(tap.name)), Object.keys(IP_NAMES));
});

kernelTest("tuntap show prints the counters, and --json ends with them", async () => {
  using tun = quietDevice("clistats");
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 0 });
  const read: Uint8Array[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      await socket.send(new Uint8Array(20), { transport: "udp", hostname: "192.0.2.2", port: 9 });
      read.push(await readUntil(tun, (p) => isIpv4Udp(p)));
    }
  } finally {
    socket.close();
  }
  await assertRejects(tun.write(new Uint8Array(28)));

  const json = tuntap("show", tun.name, "--json");
  assertStrictEquals(json.code, 0, json.stderr);
  const shown = JSON.parse(json.stdout);
  assertStrictEquals(Object.keys(shown).at(-1), "stats");
  assertEquals(shown.stats, tunDeviceStats(tun.name));
  assertEquals(shown.stats, ipStats(tun.name));

  const text = tuntap("show", tun.name);
  assertStrictEquals(text.code, 0, text.stderr);
  assertMatch(
    text.stdout,
    /\nrx +0 packets, 0 bytes, 0 errors, 1 dropped\n +\(written by the program\)\n/,
  );
  assertMatch(
    text.stdout,
    new RegExp(
      `\ntx +3 packets, ${sum(read)} bytes, 0 errors, 0 dropped\n +\\(read by the program\\)\n$`,
    ),
  );
});

kernelTest("a write whose virtio_net_hdr the kernel refuses counts as rxFrameErrors", async () => {
  using tun = TunInterface.open({ name: uniqueName("statsvnet"), vnetHeader: true, up: true });
  const before = tunDeviceStats(tun.name);
  const packet = buildUdp({
    source: "192.0.2.2",
    destination: "192.0.2.1",
    sourcePort: 9,
    destinationPort: 9,
  });
  const framed = new Uint8Array(10 + packet.length);
  framed[1] = 0x7f; // gso_type: no such GSO type
  framed.set(packet, 10);
  await assertRejects(tun.write(framed), (error) => error instanceof TunError);
  const after = tunDeviceStats(tun.name);
  assertEquals(changes(before, after), { rxFrameErrors: 1 });
  assertEquals(after, ipStats(tun.name));
});

kernelTest(
  "tun.stats() counts what the handle read and wrote, as tunDeviceStats does",
  async () => {
    using tun = quietDevice("tstat");
    const before = tun.stats();
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 41200 });
    try {
      await socket.send(new Uint8Array(10), { transport: "udp", hostname: "192.0.2.9", port: 9 });
      await readUntil(tun, (packet) => isIpv4Udp(packet));
      await tun.write(buildUdp({
        source: "192.0.2.9",
        destination: "192.0.2.1",
        sourcePort: 9,
        destinationPort: 41200,
        payload: new Uint8Array(4),
      }));
      await socket.receive();
    } finally {
      socket.close();
    }
    const after = tun.stats();
    assertStrictEquals(after.txPackets - before.txPackets, 1);
    assertStrictEquals(after.rxPackets - before.rxPackets, 1);
    assertEquals(after, tunDeviceStats(tun.name));
    tun.close();
    assertThrows(() => tun.stats(), TunError);
  },
);
