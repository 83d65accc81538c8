/**
 * Concurrency: reads of every kind and writes of every kind at once, over
 * sequence-numbered packets. Every packet is delivered exactly once and in
 * the kernel's order: each reader sees increasing numbers, and together
 * they see all of them once; the writes reach the kernel in call order.
 *
 * @module
 */
import { buildUdp } from "../../mod.ts";
import { assert, assertEquals } from "../assert.ts";
import { kernelTest, quietDevice, within } from "../kernel.ts";

const TOTAL = 4000;
const WRITE_ROUNDS = 40;
const PEER = { transport: "udp", hostname: "192.0.2.99", port: 9 } as const;

/** The number in an IPv4/UDP packet's first 4 payload bytes. */
const sequenceOf = (packet: Uint8Array) =>
  new DataView(packet.buffer, packet.byteOffset + 28, 4).getUint32(0);

const increasing = (numbers: number[]) => numbers.every((n, i) => i === 0 || n > numbers[i - 1]);

kernelTest(
  "concurrent read, readBatch, iterators and write/writeBatch: every packet once, in order",
  async () => {
    using tun = quietDevice("conc");
    tun.setTxQueueLength(TOTAL * 2);

    // Readers of every kind, all waiting on the device at once.
    const seen: Record<string, number[]> = {};
    const reader = (label: string, next: () => Promise<number[] | null>) => {
      const numbers: number[] = seen[label] = [];
      return (async () => {
        for (let i = 0; i < TOTAL; i++) {
          const got = await next();
          if (got === null) return;
          numbers.push(...got);
        }
      })();
    };
    const one = async () => {
      const packet = await tun.read();
      return packet && [sequenceOf(packet)];
    };
    const batch = (size: number) => {
      const buffers = Array.from({ length: size }, () => new Uint8Array(tun.readBufferSize));
      const sizes = new Uint32Array(size);
      return async () => {
        const count = await tun.readBatch(buffers, sizes);
        return count === null ? null : buffers.slice(0, count).map(sequenceOf);
      };
    };
    const iterate = () => {
      const iterator = tun.packets();
      return async () => {
        const step = await iterator.next();
        return step.done ? null : [sequenceOf(step.value)];
      };
    };
    const readers = [
      reader("read A", one),
      reader("read B", one),
      reader("readBatch 1", batch(1)),
      reader("readBatch 16", batch(16)),
      reader("iterator A", iterate()),
      reader("iterator B", iterate()),
    ];

    // Sent by the kernel (a socket on the device's network), read above.
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 42000 });
    // Written by the program to a second socket, which receives them.
    const receiver = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 42001 });
    try {
      const payload = new Uint8Array(16);
      const view = new DataView(payload.buffer);
      const sending = (async () => {
        for (let i = 0; i < TOTAL; i++) {
          view.setUint32(0, i);
          await socket.send(payload, PEER);
        }
      })();

      // Writes: rounds of write and writeBatch calls made at once (not awaited one by
      // one), then the round's datagrams received before the next, so the socket's
      // buffer never overflows.
      const packet = (n: number) => {
        const data = new Uint8Array(4);
        new DataView(data.buffer).setUint32(0, n);
        return buildUdp({
          source: "192.0.2.99",
          destination: "192.0.2.1",
          sourcePort: 9,
          destinationPort: 42001,
          payload: data,
        });
      };
      const received: number[] = [];
      let next = 0;
      for (let round = 0; round < WRITE_ROUNDS; round++) {
        const calls: Promise<number>[] = [];
        for (const size of [1, 7, 1, 16, 1]) {
          const packets = Array.from({ length: size }, () => packet(next++));
          calls.push(size === 1 ? tun.write(packets[0]) : tun.writeBatch(packets));
        }
        await Promise.all(calls);
        while (received.length < next) {
          const [data] = await within(receiver.receive(), 5000, "a written datagram");
          received.push(new DataView(data.buffer, data.byteOffset).getUint32(0));
        }
      }
      await sending;
      // Every packet sent is read before the device closes (or the wait times out).
      const deadline = performance.now() + 10_000;
      const count = () => Object.values(seen).reduce((sum, numbers) => sum + numbers.length, 0);
      while (count() < TOTAL && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      tun.close();
      await within(Promise.all(readers), 2000, "the readers ending");

      const all = Object.values(seen).flat().sort((a, b) => a - b);
      assertEquals(
        all,
        Array.from({ length: TOTAL }, (_, i) => i),
        "read: complete, no duplicates",
      );
      for (const [label, numbers] of Object.entries(seen)) {
        assert(increasing(numbers), `${label} saw packets out of the kernel's order`);
      }
      assertEquals(received, Array.from({ length: next }, (_, i) => i), "written: in call order");
      console.log(
        `concurrency: ${TOTAL} packets read by ${readers.length} readers (` +
          Object.entries(seen).map(([label, numbers]) => `${label} ${numbers.length}`).join(", ") +
          `), each in order, none lost or duplicated; ${next} packets written by ` +
          `${WRITE_ROUNDS * 5} concurrent write/writeBatch calls, received in call order`,
      );
    } finally {
      socket.close();
      receiver.close();
    }
  },
);
