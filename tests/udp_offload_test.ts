import { TunError, type UdpAddress, UdpSocket } from "../udp/mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "./assert.ts";
import { kernelTest, sh, uniqueName, within } from "./kernel.ts";
import { buffers, receiveAll, rejection } from "./udp_helpers.ts";

/** A train: `length` bytes counting up, so every segment's place shows. */
function train(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => i & 0xff);
}

/**
 * A veth whose far end nobody answers: datagrams to 192.0.2.3 leave through
 * it (a static neighbour spares ARP), so a qdisc on it holds them.
 */
function outbound(): { device: string; peer: UdpAddress } & Disposable {
  const device = uniqueName("udpv");
  sh(
    `ip link add ${device} type veth peer name ${device}p && ` +
      `ip addr add 192.0.2.1/24 dev ${device} && ip link set ${device} up && ` +
      `ip link set ${device}p up && ` +
      `ip neigh add 192.0.2.3 lladdr 02:00:00:00:00:03 dev ${device}`,
  );
  return {
    device,
    peer: { hostname: "192.0.2.3", port: 9 },
    [Symbol.dispose]: () => sh(`ip link del ${device}`),
  };
}

for (const hostname of ["127.0.0.1", "::1"]) {
  kernelTest(
    `a GSO train arrives as separate datagrams at a socket without GRO (${hostname})`,
    async () => {
      using receiver = UdpSocket.bind({ hostname });
      using sender = UdpSocket.bind({ hostname });
      assert(sender.gso, "this kernel has UDP GSO");
      const packet = train(14100);
      await sender.sendBatch([packet], { to: receiver.localAddress, segmentSize: 1400 });
      const { packets: received, segmentSizes } = await receiveAll(receiver, 11);
      assertEquals(segmentSizes, Array(11).fill(0));
      assertEquals(received.map((datagram) => datagram.length), [...Array(10).fill(1400), 100]);
      for (let i = 0; i < 11; i++) {
        assertEquals(received[i], packet.subarray(i * 1400, i * 1400 + received[i].length));
      }
    },
  );

  kernelTest(
    `a GRO socket receives a GSO train coalesced, with its segment size (${hostname})`,
    async () => {
      using receiver = UdpSocket.bind({ hostname, gro: true });
      using sender = UdpSocket.bind({ hostname });
      assert(receiver.gro, "this kernel has UDP GRO");
      const packets = [train(14100), train(3000), train(500)];
      await sender.sendBatch(packets, { to: receiver.localAddress, segmentSize: 1400 });
      const received = await receiveAll(receiver, 3, 65535);
      assertEquals(received.packets, packets);
      const got = received.packets.map((packet, i) => [packet.length, received.segmentSizes[i]]);
      // On loopback the train reaches the socket as it was built; the packet that
      // fits one segment is an ordinary datagram.
      assertEquals(got, [[14100, 1400], [3000, 1400], [500, 0]]);
    },
  );
}

kernelTest("a GSO train of UDP_MAX_SEGMENTS (128) segments arrives whole", async () => {
  using receiver = UdpSocket.bind({ hostname: "127.0.0.1", receiveBufferSize: 4 << 20 });
  using sender = UdpSocket.bind({ hostname: "127.0.0.1" });
  await sender.sendBatch([new Uint8Array(128 * 100)], {
    to: receiver.localAddress,
    segmentSize: 100,
  });
  const { packets } = await receiveAll(receiver, 128);
  assertStrictEquals(packets.length, 128);
});

kernelTest("sendBatch waits for room in a full send buffer and then completes", async () => {
  using link = outbound();
  using sender = UdpSocket.bind({ hostname: "192.0.2.1", sendBufferSize: 4096 });
  // 8 bits a second: what enters the queue stays there, holding the send buffer.
  sh(`tc qdisc add dev ${link.device} root tbf rate 8bit burst 1600 limit 10000000`);
  const packets = Array.from({ length: 50 }, () => new Uint8Array(1000));
  let settled = false;
  const sending = sender.sendBatch(packets, { to: link.peer }).finally(() => settled = true);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert(!settled, "sendBatch finished although the send buffer is full");
  // Deleting the qdisc drops what it held, which frees the send buffer.
  sh(`tc qdisc del dev ${link.device} root`);
  assertStrictEquals(await within(sending, 5000, "sendBatch after the qdisc went"), 50);
});

kernelTest("a sendBatch that fails part-way says how many packets were sent", async () => {
  using link = outbound();
  using sender = UdpSocket.bind({ hostname: "192.0.2.1" });
  // Segments of 2000 bytes cannot leave through an MTU of 1500: the kernel
  // refuses the train (EMSGSIZE on recent kernels, EINVAL on older ones) but
  // sends the two small packets before it.
  const packets = [new Uint8Array(100), new Uint8Array(100), new Uint8Array(4000)];
  const error = await rejection(sender.sendBatch(packets, { to: link.peer, segmentSize: 2000 }));
  assert(error instanceof TunError, String(error));
  assertStrictEquals(error.written, 2);
  assert(error.code === "EMSGSIZE" || error.code === "EINVAL", error.code);
  assertMatch(
    error.message,
    new RegExp(
      String.raw`^Cannot send from UDP socket 192\.0\.2\.1:\d+ to 192\.0\.2\.3:9 ` +
        String.raw`\(2 packets of the batch were sent before\): E(MSGSIZE|INVAL)`,
    ),
  );
});

kernelTest("a send with no route fails with the kernel's error and written 0", async () => {
  using sender = UdpSocket.bind();
  const error = await rejection(
    sender.sendBatch([new Uint8Array(10)], { to: { hostname: "198.51.100.1", port: 9 } }),
  );
  assert(error instanceof TunError, String(error));
  assertStrictEquals(error.code, "ENETUNREACH");
  assertStrictEquals(error.written, 0);
});

kernelTest("a send queued behind a waiting one goes to its own destination", async () => {
  using link = outbound();
  using local = UdpSocket.bind({ hostname: "127.0.0.1" });
  using sender = UdpSocket.bind({ sendBufferSize: 4096 });
  sh(`tc qdisc add dev ${link.device} root tbf rate 8bit burst 1600 limit 10000000`);
  const waiting = sender.sendBatch(
    Array.from({ length: 50 }, () => new Uint8Array(1000)),
    { to: link.peer },
  );
  // Called while the first one waits for room, not before it started to.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const queued = sender.send(new Uint8Array([42]), local.localAddress);
  await new Promise((resolve) => setTimeout(resolve, 50));
  sh(`tc qdisc del dev ${link.device} root`);
  assertStrictEquals(await within(waiting, 5000, "the waiting send"), 50);
  assertStrictEquals(await within(queued, 5000, "the queued send"), 1);
  const slots = buffers(64, 2048);
  const sizes = new Uint32Array(64);
  const n = await within(local.recvBatch(slots, sizes), 5000, "recvBatch");
  assertEquals([n, sizes[0], slots[0][0]], [1, 1, 42]);
});

for (const hostname of ["127.0.0.1", "::1"]) {
  kernelTest(`a connected pair exchanges GSO trains coalesced by GRO (${hostname})`, async () => {
    using left = UdpSocket.bind({ hostname, gro: true });
    using right = UdpSocket.bind({ hostname, gro: true });
    left.connect(right.localAddress);
    right.connect(left.localAddress);
    const packets = [train(14100), train(2800)];
    assertStrictEquals(await left.sendBatch(packets, { segmentSize: 1400 }), 2);
    assertStrictEquals(await right.sendBatch(packets, { segmentSize: 1400 }), 2);
    for (const [socket, from] of [[right, left], [left, right]]) {
      const received = await receiveAll(socket, 2, 65535);
      assertEquals(received.packets, packets);
      assertEquals(received.segmentSizes, [1400, 1400]);
      for (const address of received.from) assertEquals(address, from.localAddress);
    }
  });
}
