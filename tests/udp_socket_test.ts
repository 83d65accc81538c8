import { TunError, type UdpAddress, UdpSocket } from "../udp/mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "./assert.ts";
import { kernelTest, openFdCount, runScript, within } from "./kernel.ts";
import { buffers, receiveAll, rejection } from "./udp_helpers.ts";

/** `count` packets of distinct lengths and contents: packet i is `100 + i` bytes of `i`. */
function numbered(count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => new Uint8Array(100 + i).fill(i));
}

for (const hostname of ["127.0.0.1", "::1"]) {
  kernelTest(
    `a batch sent with sendBatch arrives whole and in order over ${hostname}`,
    async () => {
      using receiver = UdpSocket.bind({ hostname });
      using sender = UdpSocket.bind({ hostname });
      const packets = numbered(40);
      assertStrictEquals(await sender.sendBatch(packets, { to: receiver.localAddress }), 40);
      const { packets: received, from } = await receiveAll(receiver, 40);
      assertEquals(received, packets);
      for (const address of from) assertEquals(address, sender.localAddress);
    },
  );
}

kernelTest("localAddress reports the bound address and the port the kernel picked", () => {
  using v4 = UdpSocket.bind({ hostname: "127.0.0.1" });
  using v6 = UdpSocket.bind({ hostname: "::1" });
  using any = UdpSocket.bind();
  assertEquals(v4.localAddress.hostname, "127.0.0.1");
  assertEquals(v6.localAddress.hostname, "::1");
  assertEquals(any.localAddress.hostname, "0.0.0.0");
  for (const socket of [v4, v6, any]) assert(socket.localAddress.port > 0);
  using fixed = UdpSocket.bind({ hostname: "127.0.0.1", port: 4789 });
  assertEquals(fixed.localAddress, { hostname: "127.0.0.1", port: 4789 });
});

kernelTest("a dual-stack socket on :: talks to IPv4 peers and reports them as IPv4", async () => {
  using dual = UdpSocket.bind({ hostname: "::" });
  using v4 = UdpSocket.bind({ hostname: "127.0.0.1" });
  const to = { hostname: "127.0.0.1", port: dual.localAddress.port };
  await v4.send(new Uint8Array([1, 2, 3]), to);
  const received = await within(dual.receive(), 5000, "receive");
  assert(received !== null);
  assertEquals([...received[0]], [1, 2, 3]);
  assertEquals(received[1], v4.localAddress);
  await dual.send(new Uint8Array([4]), received[1]);
  const back = await within(v4.receive(), 5000, "receive");
  assertEquals(back?.[1], { hostname: "127.0.0.1", port: dual.localAddress.port });
});

for (const hostname of ["127.0.0.1", "::1"]) {
  kernelTest(`UdpSocket and Deno.listenDatagram exchange datagrams over ${hostname}`, async () => {
    using socket = UdpSocket.bind({ hostname });
    const deno = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
    try {
      const denoAddress = deno.addr as Deno.NetAddr;
      const packets = numbered(10);
      await socket.sendBatch(packets, {
        to: { hostname: denoAddress.hostname, port: denoAddress.port },
      });
      for (const packet of packets) {
        const [data, from] = await within(deno.receive(), 5000, "Deno receive");
        assertEquals(data, packet);
        assertEquals((from as Deno.NetAddr).port, socket.localAddress.port);
      }
      for (const packet of packets) {
        await deno.send(packet, { transport: "udp", ...socket.localAddress });
      }
      const { packets: received, from } = await receiveAll(socket, 10);
      assertEquals(received, packets);
      for (const address of from) {
        assertEquals(address, { hostname, port: denoAddress.port });
      }
    } finally {
      deno.close();
    }
  });
}

kernelTest("addresses given to recvBatch are filled in place, one per message", async () => {
  using receiver = UdpSocket.bind({ hostname: "127.0.0.1" });
  using first = UdpSocket.bind({ hostname: "127.0.0.1" });
  using second = UdpSocket.bind({ hostname: "127.0.0.1" });
  await first.send(new Uint8Array([1]), receiver.localAddress);
  await second.send(new Uint8Array([2]), receiver.localAddress);
  const kept = { hostname: "x", port: 1 };
  const addresses: UdpAddress[] = [kept];
  const slots = buffers(4);
  const sizes: number[] = [];
  let got = 0;
  const senders: UdpAddress[] = [];
  while (got < 2) {
    const n = await within(receiver.recvBatch(slots, sizes, { addresses }), 5000, "recvBatch");
    assert(n !== null);
    for (let i = 0; i < n; i++) senders[slots[i][0] - 1] = { ...addresses[i] };
    if (got === 0) assertStrictEquals(addresses[0], kept);
    got += n;
  }
  assertEquals(senders, [first.localAddress, second.localAddress]);
});

kernelTest("a bad addresses entry is refused before recvBatch takes any datagram", async () => {
  using receiver = UdpSocket.bind({ hostname: "127.0.0.1" });
  using sender = UdpSocket.bind({ hostname: "127.0.0.1" });
  await sender.send(new Uint8Array([7]), receiver.localAddress);
  const slots = buffers(4);
  const sizes = new Uint32Array(4);
  const bad = [null] as unknown as UdpAddress[];
  const error = await rejection(receiver.recvBatch(slots, sizes, { addresses: bad }));
  assert(error instanceof TypeError, String(error));
  // The datagram is still queued: the failed call took nothing.
  const n = await within(receiver.recvBatch(slots, sizes), 5000, "recvBatch");
  assertEquals([n, sizes[0], slots[0][0]], [1, 1, 7]);
});

kernelTest("bad arguments are refused before any system call", async () => {
  const fds = openFdCount();
  assertThrows(() => UdpSocket.bind({ hostname: "localhost" }), TypeError);
  assertThrows(() => UdpSocket.bind({ hostname: "256.0.0.1" }), RangeError);
  assertThrows(() => UdpSocket.bind({ port: 65536 }), RangeError);
  assertThrows(() => UdpSocket.bind({ port: 1.5 }), RangeError);
  assertThrows(() => UdpSocket.bind({ receiveBufferSize: 0 }), RangeError);
  // deno-lint-ignore no-explicit-any
  assertThrows(() => UdpSocket.bind({ gro: "yes" as any }), TypeError);
  assertStrictEquals(openFdCount(), fds);

  using socket = UdpSocket.bind({ hostname: "127.0.0.1" });
  const to = { hostname: "127.0.0.1", port: 9 };
  // deno-lint-ignore no-explicit-any
  const loose = socket as any;
  await assertRejects(() => socket.recvBatch([], []), RangeError);
  await assertRejects(() => loose.recvBatch("no", []), TypeError);
  await assertRejects(() => loose.recvBatch([new Uint8Array(0)], [0]), RangeError);
  await assertRejects(() => socket.recvBatch(buffers(4), new Uint32Array(2)), RangeError);
  await assertRejects(() => loose.recvBatch(buffers(1), [], { addresses: {} }), TypeError);
  await assertRejects(() => loose.sendBatch([new Uint8Array(1)]), TypeError);
  await assertRejects(() => loose.sendBatch(["x"], { to }), TypeError);
  await assertRejects(() => socket.sendBatch([new Uint8Array(65508)], { to }), RangeError);
  await assertRejects(
    () => socket.sendBatch([new Uint8Array(1)], { to: { hostname: "::1", port: 9 } }),
    RangeError,
  );
  await assertRejects(
    () => socket.sendBatch([new Uint8Array(1)], { to: { hostname: "127.0.0.1", port: 0 } }),
    RangeError,
  );
  await assertRejects(
    () => socket.sendBatch([new Uint8Array(1)], { to, segmentSize: 0 }),
    RangeError,
  );
  await assertRejects(
    () => socket.sendBatch([new Uint8Array(1000 * 129)], { to, segmentSize: 1000 }),
    RangeError,
  );
  assertThrows(() => {
    socket.receiveBufferSize = -1;
  }, RangeError);
  assertStrictEquals(openFdCount(), fds + 0 + 1);
});

kernelTest("close wakes a pending recvBatch with null and frees the fd", async () => {
  const fds = openFdCount();
  const socket = UdpSocket.bind({ hostname: "127.0.0.1" });
  const pending = socket.recvBatch(buffers(2), new Uint32Array(2));
  const received = socket.receive();
  await new Promise((resolve) => setTimeout(resolve, 50));
  socket.close();
  socket.close();
  assertStrictEquals(await within(pending, 5000, "recvBatch after close"), null);
  assertStrictEquals(await within(received, 5000, "receive after close"), null);
  assertStrictEquals(await socket.recvBatch(buffers(1), [0]), null);
  assertStrictEquals(openFdCount(), fds);
  const error = await rejection(socket.send(new Uint8Array(1), { hostname: "127.0.0.1", port: 9 }));
  assert(error instanceof TunError);
  assertMatch(
    error.message,
    /^Cannot send from UDP socket 127\.0\.0\.1:\d+ to 127\.0\.0\.1:9: EBADF/,
  );
});

kernelTest("an aborted recvBatch rejects with the signal's reason", async () => {
  using socket = UdpSocket.bind({ hostname: "127.0.0.1" });
  const controller = new AbortController();
  const pending = socket.recvBatch(buffers(1), [0], { signal: controller.signal });
  controller.abort(new Error("stop"));
  await assertRejects(() => pending, /stop/);
});

kernelTest("a datagram longer than its buffer rejects with EMSGSIZE", async () => {
  using receiver = UdpSocket.bind({ hostname: "127.0.0.1" });
  using sender = UdpSocket.bind({ hostname: "127.0.0.1" });
  await sender.send(new Uint8Array(300), receiver.localAddress);
  const error = await rejection(
    within(receiver.recvBatch([new Uint8Array(100)], [0]), 5000, "recvBatch"),
  );
  assert(error instanceof TunError);
  assertStrictEquals(error.code, "EMSGSIZE");
  assertMatch(error.message, /^Cannot receive on UDP socket 127\.0\.0\.1:\d+: EMSGSIZE.*300 bytes/);
});

kernelTest("buffer sizes are settable and read back as the kernel reports them", () => {
  using socket = UdpSocket.bind({
    hostname: "127.0.0.1",
    receiveBufferSize: 4 << 20,
    sendBufferSize: 1 << 20,
  });
  // As root SO_*BUFFORCE passes the sysctl caps; the kernel reports double.
  assert(socket.receiveBufferSize >= 4 << 20, `${socket.receiveBufferSize}`);
  assert(socket.sendBufferSize >= 1 << 20, `${socket.sendBufferSize}`);
  socket.receiveBufferSize = 32 << 20;
  assertStrictEquals(socket.receiveBufferSize, 64 << 20);
  socket.sendBufferSize = 8192;
  assertStrictEquals(socket.sendBufferSize, 16384);
});

kernelTest("Deno.inspect shows the address, family and state", () => {
  const socket = UdpSocket.bind({ hostname: "::1", port: 4790 });
  assertMatch(Deno.inspect(socket), /UdpSocket \{.*localAddress: "\[::1\]:4790".*closed: false/s);
  socket.close();
  assertMatch(Deno.inspect(socket), /closed: true/);
});

kernelTest(
  "views into one ArrayBuffer and tiny buffers are sent and filled at their offsets",
  async () => {
    using receiver = UdpSocket.bind({ hostname: "127.0.0.1" });
    using sender = UdpSocket.bind({ hostname: "127.0.0.1" });
    const slab = new Uint8Array(4096);
    for (let i = 0; i < slab.length; i++) slab[i] = i * 7;
    // Views at odd offsets, and arrays small enough for V8 to keep on its heap.
    const packets = [slab.subarray(3, 40), slab.subarray(1000, 1001), new Uint8Array([9, 8, 7])];
    await sender.sendBatch(packets, { to: receiver.localAddress });
    const target = new Uint8Array(8192);
    const slots = [target.subarray(5, 2000), target.subarray(4001, 4002), new Uint8Array(16)];
    const sizes = new Uint32Array(3);
    let got = 0;
    while (got < 3) {
      const n = await within(
        receiver.recvBatch(slots.slice(got), sizes.subarray(got)),
        5000,
        "recvBatch",
      );
      assert(n !== null);
      got += n;
    }
    assertEquals([...sizes], [37, 1, 3]);
    for (let i = 0; i < 3; i++) assertEquals(slots[i].subarray(0, sizes[i]), packets[i]);
    assertStrictEquals(target[4], 0);
    assertStrictEquals(target[5 + 37], 0);
  },
);

kernelTest("receive fills the given buffer and returns a view of the datagram", async () => {
  using receiver = UdpSocket.bind({ hostname: "::1" });
  using sender = UdpSocket.bind({ hostname: "::1" });
  assertStrictEquals(await sender.send(new Uint8Array([5, 6]), receiver.localAddress), 2);
  const buffer = new Uint8Array(64);
  const received = await within(receiver.receive(buffer), 5000, "receive");
  assert(received !== null);
  assertStrictEquals(received[0].buffer, buffer.buffer);
  assertEquals([...received[0]], [5, 6]);
  assertEquals(received[1], sender.localAddress);
});

kernelTest("sends made one after another keep their order and destinations", async () => {
  using a = UdpSocket.bind({ hostname: "127.0.0.1" });
  using b = UdpSocket.bind({ hostname: "127.0.0.1" });
  using sender = UdpSocket.bind({ hostname: "127.0.0.1" });
  const sends = [
    sender.sendBatch([new Uint8Array([1])], { to: a.localAddress }),
    sender.send(new Uint8Array([2]), b.localAddress),
    sender.sendBatch([new Uint8Array([3])], { to: a.localAddress }),
  ];
  await within(Promise.all(sends), 5000, "sends");
  const first = await within(a.receive(), 5000, "receive a");
  const second = await within(b.receive(), 5000, "receive b");
  const third = await within(a.receive(), 5000, "receive a again");
  assertEquals([first?.[0][0], second?.[0][0], third?.[0][0]], [1, 2, 3]);
});

kernelTest("buffer sizes of a closed socket fail with EBADF without a system call", () => {
  const socket = UdpSocket.bind({ hostname: "127.0.0.1" });
  socket.close();
  assertThrows(() => socket.receiveBufferSize, /^TunError: Cannot read the receive buffer size/);
  assertThrows(() => {
    socket.sendBufferSize = 4096;
  }, /EBADF \(bad file descriptor\): the socket is closed/);
});

kernelTest("a forgotten socket's fd is closed by the finalizer, and batches leak nothing", () => {
  const shared = Deno.env.get("TUNTAP_SHARED_DIR")!;
  const result = runScript(
    `
import { UdpSocket } from ${JSON.stringify(`${shared}/repo/udp/mod.ts`)};
const gc = (globalThis as unknown as { gc: () => void }).gc;
// The sockets open now, by their inode: the runtime opens fds of its own (sockets too) as it
// likes, so the test follows the sockets it made rather than a count.
const sockets = () =>
  new Set([...Deno.readDirSync("/proc/self/fd")].flatMap(({ name }) => {
    try {
      const target = Deno.readLinkSync(\`/proc/self/fd/\${name}\`);
      return target.startsWith("socket:") ? [target] : [];
    } catch {
      return []; // closed since the listing
    }
  }));
const settle = async () => {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};
using receiver = UdpSocket.bind({ hostname: "127.0.0.1", receiveBufferSize: 1 << 20 });
using sender = UdpSocket.bind({ hostname: "127.0.0.1" });
const packets = Array.from({ length: 32 }, () => new Uint8Array(200));
const buffers = Array.from({ length: 32 }, () => new Uint8Array(2048));
const sizes = new Uint32Array(32);
const round = async () => {
  await sender.sendBatch(packets, { to: receiver.localAddress });
  for (let got = 0; got < 32;) got += (await receiver.recvBatch(buffers, sizes))!;
};
await round();
await settle();
const before = Deno.memoryUsage();
for (let i = 0; i < 2000; i++) await round();
await settle();
const after = Deno.memoryUsage();
const openBefore = sockets();
(() => {
  for (let i = 0; i < 5; i++) UdpSocket.bind({ hostname: "127.0.0.1" });
})();
const forgotten = [...sockets()].filter((socket) => !openBefore.has(socket));
const stillOpen = () => forgotten.filter((socket) => sockets().has(socket)).length;
// Finalizers run when the collector gets to them: up to 250 rounds (≈5 s) on a busy machine.
for (let i = 0; i < 250 && stillOpen() > 0; i++) await settle();
console.log(JSON.stringify({
  growth: after.heapUsed + after.external - before.heapUsed - before.external,
  forgotten: forgotten.length,
  stillOpen: stillOpen(),
}));
`,
    // --allow-all: Deno asks for it to list /proc/self/fd.
    { permissions: ["--allow-all", "--v8-flags=--expose-gc"] },
  );
  assertStrictEquals(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assertEquals([report.forgotten, report.stillOpen], [5, 0]);
  // 64,000 datagrams through the batches: nothing kept per datagram.
  assert(report.growth < 2 * 1024 * 1024, `memory grew by ${report.growth} bytes`);
});

kernelTest("an empty datagram is sent and received with size 0", async () => {
  using receiver = UdpSocket.bind({ hostname: "127.0.0.1" });
  using sender = UdpSocket.bind({ hostname: "127.0.0.1" });
  await sender.sendBatch([new Uint8Array(0), new Uint8Array([1])], { to: receiver.localAddress });
  const { packets } = await receiveAll(receiver, 2);
  assertEquals(packets.map((packet) => packet.length), [0, 1]);
});

kernelTest("binding an address in use or not of this host fails with a TunError and no fd", () => {
  using taken = UdpSocket.bind({ hostname: "127.0.0.1" });
  const fds = openFdCount();
  const inUse = assertThrowsError(() => UdpSocket.bind(taken.localAddress));
  assertMatch(
    inUse.message,
    new RegExp(
      `^Cannot bind UDP socket 127\\.0\\.0\\.1:${taken.localAddress.port}: EADDRINUSE ` +
        `\\(address already in use\\): another socket has`,
    ),
  );
  const foreign = assertThrowsError(() => UdpSocket.bind({ hostname: "192.0.2.1" }));
  assertMatch(foreign.message, /^Cannot bind UDP socket 192\.0\.2\.1:0: EADDRNOTAVAIL/);
  assertStrictEquals(openFdCount(), fds);
});

function assertThrowsError(fn: () => unknown): TunError {
  try {
    fn();
  } catch (error) {
    assert(error instanceof TunError, String(error));
    return error;
  }
  throw new Error("Expected a TunError");
}

kernelTest("without root, buffer sizes fall back to the sysctl-capped options", () => {
  const shared = Deno.env.get("TUNTAP_SHARED_DIR")!;
  const result = runScript(
    `
import { UdpSocket } from ${JSON.stringify(`${shared}/repo/udp/mod.ts`)};
using socket = UdpSocket.bind({ hostname: "127.0.0.1", receiveBufferSize: 256 << 20 });
socket.sendBufferSize = 256 << 20;
console.log(JSON.stringify([socket.receiveBufferSize, socket.sendBufferSize]));
`,
    { uid: 1000 },
  );
  assertStrictEquals(result.code, 0, result.stderr);
  const [receive, send] = JSON.parse(result.stdout);
  const rmemMax = Number(Deno.readTextFileSync("/proc/sys/net/core/rmem_max"));
  const wmemMax = Number(Deno.readTextFileSync("/proc/sys/net/core/wmem_max"));
  assertStrictEquals(receive, 2 * rmemMax);
  assertStrictEquals(send, 2 * wmemMax);
});

kernelTest(
  "a connected socket sends without a destination and receives only from its peer",
  async () => {
    using socket = UdpSocket.bind({ hostname: "127.0.0.1" });
    using peer = UdpSocket.bind({ hostname: "127.0.0.1" });
    using stranger = UdpSocket.bind({ hostname: "127.0.0.1" });
    assertStrictEquals(socket.remoteAddress, undefined);
    socket.connect(peer.localAddress);
    assertEquals(socket.remoteAddress, peer.localAddress);
    assertStrictEquals(await socket.sendBatch(numbered(3)), 3);
    assertStrictEquals(await socket.send(new Uint8Array([7])), 1);
    const { packets, from } = await receiveAll(peer, 4);
    assertEquals(packets, [...numbered(3), new Uint8Array([7])]);
    for (const address of from) assertEquals(address, socket.localAddress);

    // The stranger's datagram goes first, yet only the peer's is delivered.
    await stranger.send(new Uint8Array([1]), socket.localAddress);
    await peer.send(new Uint8Array([2]), socket.localAddress);
    const received = await within(socket.receive(), 5000, "receive");
    assertEquals(received, [new Uint8Array([2]), peer.localAddress]);
    const more = socket.recvBatch(buffers(4), new Uint32Array(4), {
      signal: AbortSignal.timeout(200),
    });
    assertStrictEquals((await rejection(more)).name, "TimeoutError");
  },
);

kernelTest(
  "a connected socket given a destination sends there, as Linux sendmsg does",
  async () => {
    using socket = UdpSocket.bind({ hostname: "::" });
    using peer = UdpSocket.bind({ hostname: "::1" });
    using other = UdpSocket.bind({ hostname: "127.0.0.1" });
    socket.connect(peer.localAddress);
    await socket.sendBatch([new Uint8Array([1])], { to: other.localAddress });
    await socket.send(new Uint8Array([2]), peer.localAddress);
    await socket.send(new Uint8Array([3]));
    assertEquals((await receiveAll(other, 1)).packets, [new Uint8Array([1])]);
    assertEquals((await receiveAll(peer, 2)).packets, [new Uint8Array([2]), new Uint8Array([3])]);
    // Connecting again moves to another peer, of either family on a dual-stack socket.
    socket.connect(other.localAddress);
    assertEquals(socket.remoteAddress, other.localAddress);
    await socket.send(new Uint8Array([4]));
    assertEquals((await receiveAll(other, 1)).packets, [new Uint8Array([4])]);
  },
);

kernelTest(
  "connect refuses bad peers before any system call and reports the kernel's errors",
  () => {
    using socket = UdpSocket.bind({ hostname: "127.0.0.1" });
    const { port } = socket.localAddress;
    // deno-lint-ignore no-explicit-any
    const loose = socket as any;
    assertThrows(() => loose.connect(undefined), TypeError);
    assertThrows(() => socket.connect({ hostname: "localhost", port: 9 }), TypeError);
    assertThrows(() => socket.connect({ hostname: "127.0.0.1", port: 0 }), RangeError);
    assertThrows(() => socket.connect({ hostname: "127.0.0.1", port: 65536 }), RangeError);
    assertThrows(() => socket.connect({ hostname: "::1", port: 9 }), {
      name: "RangeError",
      message: `Cannot connect the IPv4 UDP socket 127.0.0.1:${port} to the IPv6 address ::1: ` +
        `bind to "::" for both families`,
    });
    const unreachable = assertThrowsError(() =>
      socket.connect({ hostname: "198.51.100.1", port: 9 })
    );
    assertMatch(
      unreachable.message,
      new RegExp(
        String.raw`^Cannot connect UDP socket 127\.0\.0\.1:${port} to 198\.51\.100\.1:9: ` +
          String.raw`ENETUNREACH \(.*\): no route to 198\.51\.100\.1`,
      ),
    );
    assertStrictEquals(socket.remoteAddress, undefined);
    socket.close();
    const closed = assertThrowsError(() => socket.connect({ hostname: "127.0.0.1", port: 9 }));
    assertMatch(closed.message, /^Cannot connect UDP socket .* to 127\.0\.0\.1:9: EBADF/);
  },
);

kernelTest(
  "a connected socket reports its peer's port unreachable once, as ECONNREFUSED",
  async () => {
    using socket = UdpSocket.bind({ hostname: "127.0.0.1" });
    const gone = UdpSocket.bind({ hostname: "127.0.0.1" });
    const to = gone.localAddress;
    gone.close();
    socket.connect(to);
    await socket.send(new Uint8Array([1]));
    const error = await rejection(
      within(socket.recvBatch(buffers(1), [0]), 5000, "the refused receive"),
    );
    assert(error instanceof TunError, String(error));
    assertStrictEquals(error.code, "ECONNREFUSED");
    assertMatch(
      error.message,
      new RegExp(
        String.raw`^Cannot receive on UDP socket 127\.0\.0\.1:\d+: ECONNREFUSED .*: nothing ` +
          String.raw`listened at 127\.0\.0\.1:${to.port} when an earlier datagram arrived`,
      ),
    );
    // Reported once: the next call goes on as usual.
    using peer = UdpSocket.bind(to);
    await socket.send(new Uint8Array([2]));
    assertEquals((await receiveAll(peer, 1)).packets, [new Uint8Array([2])]);
  },
);

kernelTest("Deno.inspect shows a connected socket's peer", () => {
  using socket = UdpSocket.bind({ hostname: "::" });
  assert(!Deno.inspect(socket).includes("remoteAddress"));
  socket.connect({ hostname: "::1", port: 4789 });
  assertMatch(Deno.inspect(socket), /remoteAddress: "\[::1\]:4789"/);
});
