/**
 * Helpers of the UdpSocket kernel tests.
 *
 * @module
 */

import type { UdpAddress, UdpSocket } from "../udp/mod.ts";
import { assert } from "./assert.ts";
import { within } from "./kernel.ts";

/** The error `promise` rejects with (failing when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("Expected a rejection");
}

/** `count` receive buffers of `size` bytes. */
export function buffers(count: number, size = 2048): Uint8Array[] {
  return Array.from({ length: count }, () => new Uint8Array(size));
}

/** What {@linkcode receiveAll} received, in order. */
export interface Received {
  packets: Uint8Array[];
  from: UdpAddress[];
  /** The GRO segment size of each, 0 when it was not coalesced. */
  segmentSizes: number[];
}

/** Receives in batches of up to 16 until `count` datagrams arrived. */
export async function receiveAll(
  socket: UdpSocket,
  count: number,
  size = 2048,
): Promise<Received> {
  const received: Received = { packets: [], from: [], segmentSizes: [] };
  const slots = buffers(16, size);
  const sizes = new Uint32Array(16);
  const segmentSizes = new Uint32Array(16);
  const addresses: UdpAddress[] = [];
  while (received.packets.length < count) {
    // A segment size the socket did not write shows as 0xffffffff.
    segmentSizes.fill(0xffffffff);
    const n = await within(
      socket.recvBatch(slots, sizes, { addresses, segmentSizes }),
      5000,
      "recvBatch",
    );
    assert(n !== null && n >= 1);
    for (let i = 0; i < n; i++) {
      received.packets.push(slots[i].slice(0, sizes[i]));
      received.from.push({ ...addresses[i] });
      received.segmentSizes.push(segmentSizes[i]);
    }
  }
  return received;
}
