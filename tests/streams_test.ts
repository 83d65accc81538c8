import { summarize, TunError, TunInterface } from "../mod.ts";
import { assert, assertEquals, assertRejects, assertStrictEquals } from "./assert.ts";
import { ipJson, kernelTest, namespace, quietDevice, sh, uniqueName } from "./kernel.ts";

const encoder = new TextEncoder();

function configureIn(ns: { sh(c: string): string }, name: string, cidr: string): void {
  ns.sh(`ip addr add ${cidr} dev ${name} && ip link set ${name} up`);
}

kernelTest("pipeTo between two TUN devices in two namespaces carries UDP both ways", async () => {
  using left = namespace("left");
  using right = namespace("right");
  const a = TunInterface.open({ name: uniqueName("pipea") });
  const b = TunInterface.open({ name: uniqueName("pipeb") });
  sh(`ip link set ${a.name} netns ${left.name} && ip link set ${b.name} netns ${right.name}`);
  configureIn(left, a.name, "198.51.100.1/24");
  configureIn(right, b.name, "198.51.100.2/24");
  const forward = a.readable.pipeTo(b.writable).catch(() => {});
  const back = b.readable.pipeTo(a.writable).catch(() => {});
  try {
    const server = right.deno(`
      const socket = Deno.listenDatagram({ transport: "udp", hostname: "198.51.100.2", port: 7000 });
      const timer = setTimeout(() => Deno.exit(3), 8000);
      for (let i = 0; i < 3; i++) {
        const [data, from] = await socket.receive();
        await socket.send(data, from);
      }
      clearTimeout(timer);
      socket.close();`);
    const client = await left.deno(`
      const socket = Deno.listenDatagram({ transport: "udp", hostname: "198.51.100.1", port: 7001 });
      const timer = setTimeout(() => Deno.exit(3), 8000);
      const decoder = new TextDecoder();
      for (let i = 0; i < 3; i++) {
        // Resend until the server is up: the first datagram may beat it.
        const message = new TextEncoder().encode("hello " + i);
        const to = { transport: "udp", hostname: "198.51.100.2", port: 7000 };
        const resend = setInterval(() => socket.send(message, to), 200);
        await socket.send(message, to);
        const [data] = await socket.receive();
        clearInterval(resend);
        console.log(decoder.decode(data));
      }
      clearTimeout(timer);
      socket.close();`);
    await server;
    assertEquals(client.trim().split("\n"), ["hello 0", "hello 1", "hello 2"]);
  } finally {
    a.close();
    b.close();
    await Promise.all([forward, back]);
  }
});

kernelTest(
  "a slow reader of 100,000 packets leaves them to the kernel, not in memory",
  async () => {
    using tun = TunInterface.open({ name: uniqueName("slow") });
    sh(`ip addr add 192.0.2.1/24 dev ${tun.name} && ip link set ${tun.name} up`);
    const dropped = () => ipJson(`-s link show ${tun.name}`)[0].stats64.tx.dropped as number;
    const droppedBefore = dropped();
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 40100 });
    const reader = tun.readable.getReader();
    const memory = () => Deno.memoryUsage().heapUsed + Deno.memoryUsage().external;
    const memoryBefore = memory();
    try {
      const payload = new Uint8Array(1000);
      const to = { transport: "udp", hostname: "192.0.2.99", port: 9 } as const;
      let pulled = 0;
      for (let i = 0; i < 100_000; i++) {
        await socket.send(payload, to);
        if (i % 10_000 === 0) {
          await reader.read();
          pulled++;
        }
      }
      const grown = memory() - memoryBefore;
      // Buffered here, 100,000 packets of 1 KB would be 100 MB.
      assert(grown < 30_000_000, `memory grew by ${grown} bytes`);
      assert(dropped() - droppedBefore > 90_000, `the kernel dropped ${dropped() - droppedBefore}`);
      assertStrictEquals(pulled, 10);
    } finally {
      reader.releaseLock();
      socket.close();
    }
  },
);

kernelTest(
  "aborting a pending read settles within 50 ms and the next packet still arrives",
  async () => {
    using tun = quietDevice("abort");
    const controller = new AbortController();
    const pending = tun.read({ signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const start = performance.now();
    const reason = new Error("enough");
    controller.abort(reason);
    const outcome = await pending.then(
      (packet) => `the read resolved first, with ${packet && summarize(packet, "ip")}`,
      (error) => error,
    );
    assert(outcome === reason, String(outcome));
    const elapsed = performance.now() - start;
    assert(elapsed < 50, `settled after ${elapsed.toFixed(1)} ms`);
    assert(!tun.closed);

    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 40101 });
    try {
      await socket.send(encoder.encode("after abort"), {
        transport: "udp",
        hostname: "192.0.2.50",
        port: 9,
      });
      const packet = await tun.read({ signal: AbortSignal.timeout(5000) });
      assertEquals(new TextDecoder().decode(packet!.subarray(28)), "after abort");
    } finally {
      socket.close();
    }
  },
);

kernelTest("an already-aborted signal rejects at once and leaves the queued packet", async () => {
  using tun = quietDevice("preab");
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 40102 });
  try {
    await socket.send(encoder.encode("queued"), {
      transport: "udp",
      hostname: "192.0.2.51",
      port: 9,
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const aborted = AbortSignal.abort();
    await assertRejects(() => tun.read({ signal: aborted }), { name: "AbortError" });
    const iterator = tun.packets({ signal: aborted });
    await assertRejects(() => iterator.next(), { name: "AbortError" });
    const packet = await tun.read({ signal: AbortSignal.timeout(5000) });
    assertEquals(new TextDecoder().decode(packet!.subarray(28)), "queued");
  } finally {
    socket.close();
  }
});

kernelTest("cancelling the readable closes the device; closing the writable does not", async () => {
  const tun = TunInterface.open({ name: uniqueName("cancel") });
  await tun.writable.close();
  assert(!tun.closed);
  await tun.readable.cancel();
  assert(tun.closed);
});

kernelTest("a failed write errors the writable with the TunError", async () => {
  const tun = TunInterface.open({ name: uniqueName("werr") });
  const writer = tun.writable.getWriter();
  tun.close();
  await assertRejects(() => writer.write(new Uint8Array(20)), TunError);
  await assertRejects(() => writer.closed, TunError);
});
