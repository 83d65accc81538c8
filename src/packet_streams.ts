/**
 * A device's packets as web streams, over its {@linkcode PacketIo}.
 *
 * @module
 */
import type { PacketIo } from "./packet_io.ts";

// Packets one pull hands over when the kernel has them queued: a pull costs
// more than a read, and this few never make a slow consumer hold much.
const PULL_BATCH = 16;

/**
 * A pull-based stream of packets: nothing is read until the consumer asks,
 * and then at most {@linkcode PULL_BATCH} packets that are already queued,
 * so a slow consumer leaves packets in the kernel's queue. `cancel` runs
 * when the consumer cancels the stream.
 */
export function packetReadable(io: PacketIo, cancel: () => void): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      const packet = (!io.closed && io.readNow()) || await io.read(undefined);
      if (!packet) return controller.close();
      controller.enqueue(packet);
      try {
        for (let i = 1; i < PULL_BATCH && !io.closed; i++) {
          const next = io.readNow();
          if (!next) break;
          controller.enqueue(next);
        }
      } catch {
        // Erroring the stream now would drop what it holds: the next pull fails instead.
      }
    },
    cancel,
  }, { highWaterMark: 0 });
}

/**
 * A stream that writes each chunk as one packet. A chunk the kernel has room
 * for is written at once, without a promise; only a full queue makes the
 * stream wait.
 */
export function packetWritable(io: PacketIo): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    write: (packet) => {
      if (io.tryWrite(packet) < 0) return io.write(packet).then(() => {});
    },
  }, { highWaterMark: 1 });
}
