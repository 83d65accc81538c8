import { buildUdp, TunError, TunInterface } from "../mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "./assert.ts";
import { interfaceExists, kernelTest, quietDevice, sh, uniqueName, within } from "./kernel.ts";

const PEER = { transport: "udp", hostname: "192.0.2.99", port: 9 } as const;

/** A socket on the device's address that numbers what it sends: a u32 at the payload's start. */
function numberedSender(port: number) {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port });
  const payload = new Uint8Array(32);
  const view = new DataView(payload.buffer);
  return {
    socket,
    async send(from: number, count: number) {
      for (let i = from; i < from + count; i++) {
        view.setUint32(0, i);
        await socket.send(payload, PEER);
      }
    },
    [Symbol.dispose]: () => socket.close(),
  };
}

/** The number a {@linkcode numberedSender} put in an IPv4/UDP packet. */
const sequenceOf = (packet: Uint8Array) =>
  new DataView(packet.buffer, packet.byteOffset + 28, 4).getUint32(0);

function buffersFor(tun: TunInterface, count: number): Uint8Array[] {
  return Array.from({ length: count }, () => new Uint8Array(tun.readBufferSize));
}

kernelTest(
  "readBatch delivers every packet exactly once and in order across batches of any size",
  async () => {
    using tun = quietDevice("batch");
    tun.setTxQueueLength(10_000);
    using sender = numberedSender(41000);
    const total = 3000;
    // Half queued before reading starts, half sent while batches are being read.
    await sender.send(0, total / 2);
    const sending = sender.send(total / 2, total / 2);
    const seen: number[] = [];
    const batchSizes = [64, 1, 7, 64, 13];
    for (let round = 0; seen.length < total && round < 10_000; round++) {
      const buffers = buffersFor(tun, batchSizes[round % batchSizes.length]);
      const sizes = new Uint32Array(buffers.length);
      const count = await within(tun.readBatch(buffers, sizes), 5000, "readBatch");
      assert(count !== null && count >= 1 && count <= buffers.length, `count ${count}`);
      for (let i = 0; i < count; i++) {
        assertStrictEquals(sizes[i], 20 + 8 + 32);
        seen.push(sequenceOf(buffers[i]));
      }
    }
    await sending;
    assertEquals(seen, Array.from({ length: total }, (_, i) => i));
  },
);

kernelTest(
  "readBatch waits when nothing is queued and returns as soon as one packet arrives",
  async () => {
    using tun = quietDevice("bwait");
    using sender = numberedSender(41001);
    const buffers = buffersFor(tun, 64);
    const sizes: number[] = [];
    const pending = tun.readBatch(buffers, sizes);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await sender.send(7, 1);
    assertStrictEquals(await within(pending, 2000, "readBatch"), 1);
    assertStrictEquals(sequenceOf(buffers[0]), 7);
    assertStrictEquals(sizes[0], 60);
  },
);

kernelTest("readInto reads one packet into the caller's buffer and nothing else", async () => {
  using tun = quietDevice("into");
  using sender = numberedSender(41002);
  await sender.send(1, 2);
  const buffer = new Uint8Array(tun.readBufferSize).fill(0xee);
  assertStrictEquals(await tun.readInto(buffer), 60);
  assertStrictEquals(sequenceOf(buffer), 1);
  assertStrictEquals(buffer[60], 0xee);
  assertStrictEquals(await tun.readInto(buffer), 60);
  assertStrictEquals(sequenceOf(buffer), 2);
});

kernelTest(
  "a buffer shorter than readBufferSize is a RangeError before any read, and the packet stays",
  async () => {
    using tun = quietDevice("short");
    using sender = numberedSender(41003);
    await sender.send(5, 1);
    const short = new Uint8Array(tun.readBufferSize - 1);
    await assertRejects(() => tun.readInto(short), RangeError);
    await assertRejects(
      () => tun.readBatch([new Uint8Array(tun.readBufferSize), short], new Uint32Array(2)),
      /Buffer 1 must hold at least 1500 bytes/,
    );
    await assertRejects(
      () => tun.readBatch(buffersFor(tun, 2), new Uint32Array(1)),
      RangeError,
    );
    await assertRejects(() => tun.readBatch([], []), RangeError);
    // deno-lint-ignore no-explicit-any
    await assertRejects(() => tun.readBatch("x" as any, []), TypeError);
    // deno-lint-ignore no-explicit-any
    await assertRejects(() => tun.readInto([1, 2] as any), TypeError);
    const buffer = new Uint8Array(tun.readBufferSize);
    assertStrictEquals(await tun.readInto(buffer), 60);
    assertStrictEquals(sequenceOf(buffer), 5);
  },
);

kernelTest("readBufferSize is the MTU plus every header the device puts before packets", () => {
  using plain = TunInterface.open({ name: uniqueName("rbs") });
  assertStrictEquals(plain.readBufferSize, 1500);
  plain.setMtu(9000);
  assertStrictEquals(plain.readBufferSize, 9000);
  using headers = TunInterface.open({
    name: uniqueName("rbsh"),
    packetInfo: true,
    vnetHeader: true,
  });
  assertStrictEquals(headers.readBufferSize, 1500 + 4 + 10);
  using tap = TunInterface.open({ name: uniqueName("rbst"), mode: "tap" });
  assertStrictEquals(tap.readBufferSize, 1500 + 18);
  using offload = TunInterface.open({
    name: uniqueName("rbso"),
    vnetHeader: true,
    offload: { checksum: true, tso4: true },
  });
  assertStrictEquals(offload.readBufferSize, 65535 + 10);
  using checksumOnly = TunInterface.open({
    name: uniqueName("rbsc"),
    vnetHeader: true,
    offload: { checksum: true },
  });
  assertStrictEquals(checksumOnly.readBufferSize, 1500 + 10);
});

kernelTest(
  "a packet the kernel cut short because the MTU grew elsewhere fails with EMSGSIZE",
  async () => {
    using tun = quietDevice("grow");
    const buffer = new Uint8Array(tun.readBufferSize);
    sh(`ip link set ${tun.name} mtu 3000`);
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 41004 });
    try {
      await socket.send(new Uint8Array(2000), PEER);
      const error = await assertRejectsTunError(() => tun.readInto(buffer));
      assertStrictEquals(error.code, "EMSGSIZE");
      assertMatch(error.message, /MTU grew/);
      assertStrictEquals(tun.readBufferSize, 3000);
    } finally {
      socket.close();
    }
  },
);

kernelTest(
  "a packet of exactly the MTU fills a readBufferSize buffer and arrives whole",
  async () => {
    using tun = quietDevice("full");
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 41006 });
    try {
      await socket.send(new Uint8Array(1500 - 28).fill(7), PEER);
      await socket.send(new Uint8Array(1500 - 28).fill(8), PEER);
      const buffer = new Uint8Array(tun.readBufferSize);
      assertStrictEquals(await tun.readInto(buffer), 1500);
      assertStrictEquals(buffer[1499], 7);
      const packet = await tun.read();
      assertStrictEquals(packet?.length, 1500);
      assertStrictEquals(packet[1499], 8);
    } finally {
      socket.close();
    }
  },
);

kernelTest("close settles a pending readBatch with null; later batches give null", async () => {
  using tun = quietDevice("bclose");
  const buffers = buffersFor(tun, 8);
  const pending = tun.readBatch(buffers, new Uint32Array(8));
  await new Promise((resolve) => setTimeout(resolve, 20));
  tun.close();
  assertStrictEquals(await within(pending, 50, "readBatch after close"), null);
  assertStrictEquals(await tun.readBatch(buffers, new Uint32Array(8)), null);
  assertStrictEquals(await tun.readInto(buffers[0]), null);
});

kernelTest("aborting a pending readBatch rejects it and loses no packet", async () => {
  using tun = quietDevice("babort");
  using sender = numberedSender(41005);
  const buffers = buffersFor(tun, 8);
  const controller = new AbortController();
  const pending = tun.readBatch(buffers, new Uint32Array(8), { signal: controller.signal });
  await new Promise((resolve) => setTimeout(resolve, 20));
  const reason = new Error("enough");
  controller.abort(reason);
  await assertRejects(() => within(pending, 50, "aborted readBatch"), (e) => e === reason);
  await sender.send(11, 1);
  const sizes = new Uint32Array(8);
  assertStrictEquals(await within(tun.readBatch(buffers, sizes), 2000, "readBatch"), 1);
  assertStrictEquals(sequenceOf(buffers[0]), 11);
});

kernelTest("close returns with the device gone and its name free, even with a read pending", () => {
  const name = uniqueName("free");
  const tun = TunInterface.open({ name });
  const pending = tun.read();
  tun.close();
  assert(!interfaceExists(name), "the device outlived close()");
  // The name can be taken again at once.
  TunInterface.open({ name, exclusive: true }).close();
  return pending.then((packet) => assertStrictEquals(packet, null));
});

/** A UDP datagram from 192.0.2.99:9 to the socket at 192.0.2.1:`port`, numbered `n`. */
function datagramTo(port: number, n: number, size = 32): Uint8Array {
  const payload = new Uint8Array(size);
  new DataView(payload.buffer).setUint32(0, n);
  return buildUdp({
    source: "192.0.2.99",
    destination: "192.0.2.1",
    sourcePort: 9,
    destinationPort: port,
    payload,
  });
}

async function receiveNumbers(socket: Deno.DatagramConn, count: number): Promise<number[]> {
  const numbers: number[] = [];
  for (let i = 0; i < count; i++) {
    const [data] = await within(socket.receive(), 2000, `datagram ${i}`);
    numbers.push(new DataView(data.buffer, data.byteOffset).getUint32(0));
  }
  return numbers;
}

kernelTest("writeBatch writes every packet in order and resolves to the count", async () => {
  using tun = quietDevice("wbatch");
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 41010 });
  try {
    const packets = Array.from({ length: 200 }, (_, i) => datagramTo(41010, i, 16 + (i % 50)));
    assertStrictEquals(await tun.writeBatch(packets.slice(0, 100)), 100);
    // Behind a single write, and an empty batch in between.
    const single = tun.write(packets[100]);
    assertStrictEquals(await tun.writeBatch([]), 0);
    assertStrictEquals(await tun.writeBatch(packets.slice(101)), 99);
    assertStrictEquals(await single, packets[100].length);
    assertEquals(await receiveNumbers(socket, 200), Array.from({ length: 200 }, (_, i) => i));
  } finally {
    socket.close();
  }
});

kernelTest("writeBatch checks every packet before it writes any", async () => {
  using tun = quietDevice("wcheck");
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 41011 });
  try {
    const good = datagramTo(41011, 1);
    await assertRejects(() => tun.writeBatch([good, new Uint8Array(0)]), /Packet 1 must be 1 to/);
    await assertRejects(() => tun.writeBatch([good, new Uint8Array(65536)]), RangeError);
    // deno-lint-ignore no-explicit-any
    await assertRejects(() => tun.writeBatch([good, "x" as any]), TypeError);
    // deno-lint-ignore no-explicit-any
    await assertRejects(() => tun.writeBatch(good as any), TypeError);
    await tun.write(datagramTo(41011, 2));
    // Only the marker arrives: nothing of the refused batches was written.
    assertEquals(await receiveNumbers(socket, 1), [2]);
  } finally {
    socket.close();
  }
});

kernelTest(
  "a writeBatch the kernel refuses part-way says how many packets went before",
  async () => {
    using tun = quietDevice("wfail");
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 41012 });
    try {
      // A TUN device takes only IPv4 or IPv6: a packet of version 0 is EINVAL.
      const notIp = new Uint8Array(40);
      const batch = [datagramTo(41012, 0), datagramTo(41012, 1), notIp, datagramTo(41012, 3)];
      const error = await assertRejectsTunError(() => tun.writeBatch(batch));
      assertStrictEquals(error.code, "EINVAL");
      assertStrictEquals(error.written, 2);
      assertMatch(error.message, /2 packets of the batch were written before/);
      await tun.write(datagramTo(41012, 4));
      assertEquals(await receiveNumbers(socket, 3), [0, 1, 4]);
    } finally {
      socket.close();
    }
  },
);

kernelTest("writeBatch after close rejects with EBADF and writes nothing", async () => {
  const tun = quietDevice("wclosed");
  tun.close();
  const error = await assertRejectsTunError(() => tun.writeBatch([datagramTo(1, 1)]));
  assertStrictEquals(error.code, "EBADF");
});

kernelTest(
  "detachQueue sends every flow to the other queues and attachQueue takes its share back",
  async () => {
    const name = uniqueName("mq");
    using first = TunInterface.open({ name, multiQueue: true });
    using second = TunInterface.open({ name, multiQueue: true });
    sh(`sysctl -qw net.ipv6.conf.${name}.disable_ipv6=1`);
    sh(`ip addr add 192.0.2.1/24 dev ${name} && ip link set ${name} up`);
    first.detachQueue();
    assertThrows(() => first.detachQueue(), /already detached/);
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 41020 });
    const sendFlows = async () => {
      // 64 flows (destination ports): with two queues, both get some.
      for (let port = 1; port <= 64; port++) {
        await socket.send(new Uint8Array(8), { ...PEER, port });
      }
    };
    try {
      const buffers = buffersFor(first, 64);
      const waiting = first.readBatch(buffers, new Uint32Array(64));
      await sendFlows();
      let onSecond = 0;
      while (onSecond < 64) {
        const count = await within(second.readBatch(buffers, new Uint32Array(64)), 2000, "queue");
        onSecond += count ?? 0;
      }
      assertStrictEquals(onSecond, 64);
      first.attachQueue();
      await sendFlows();
      const onFirst = await within(waiting, 2000, "the queue attached again");
      assert(onFirst !== null && onFirst > 0 && onFirst < 64, `${onFirst} on the first queue`);
    } finally {
      socket.close();
    }
  },
);

kernelTest("queue calls on a handle that is not multi-queue are a TypeError", () => {
  using tun = TunInterface.open({ name: uniqueName("sq") });
  let error: unknown;
  try {
    tun.detachQueue();
  } catch (caught) {
    error = caught;
  }
  assert(error instanceof TypeError, String(error));
  assertMatch((error as Error).message, /not multi-queue/);
});

kernelTest("with busyPoll a read still waits, and gets the packet that arrives", async () => {
  using tun = quietDevice("busy", { busyPoll: 200 });
  using sender = numberedSender(41030);
  const pending = tun.read();
  await new Promise((resolve) => setTimeout(resolve, 20));
  await sender.send(9, 1);
  const packet = await within(pending, 2000, "read");
  assertStrictEquals(packet && sequenceOf(packet), 9);
  const buffer = new Uint8Array(tun.readBufferSize);
  const into = tun.readInto(buffer);
  await sender.send(10, 1);
  assertStrictEquals(await within(into, 2000, "readInto"), 60);
  tun.close();
});

kernelTest("offload and busyPoll are checked before any syscall", () => {
  const name = uniqueName("offchk");
  const cases: [Record<string, unknown>, ErrorConstructor, RegExp][] = [
    [{ offload: { checksum: true } }, RangeError, /needs vnetHeader: true/],
    [{ vnetHeader: true, offload: { tso4: true } }, RangeError, /checksum must be true/],
    [{ vnetHeader: true, offload: { checksum: true, ecn: true } }, RangeError, /ecn needs/],
    [{ vnetHeader: true, offload: { checksm: true } }, TypeError, /no option "checksm"/],
    [{ vnetHeader: true, offload: { checksum: 1 } }, TypeError, /must be a boolean/],
    [{ vnetHeader: true, offload: true }, TypeError, /must be an object/],
    [{ busyPoll: -1 }, RangeError, /busyPoll/],
    [{ busyPoll: "50" }, TypeError, /busyPoll/],
  ];
  for (const [options, type, message] of cases) {
    let error: unknown;
    try {
      TunInterface.open({ name, ...options }).close();
    } catch (caught) {
      error = caught;
    }
    assert(error instanceof type, `${JSON.stringify(options)}: ${error}`);
    assertMatch((error as Error).message, message);
  }
  assert(!interfaceExists(name));
});

async function assertRejectsTunError(fn: () => Promise<unknown>): Promise<TunError> {
  let error: unknown;
  await assertRejects(fn, (caught) => {
    error = caught;
    return caught instanceof TunError;
  });
  return error as TunError;
}
