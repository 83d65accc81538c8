/**
 * The library's responder in the latency cases of `forward.ts`, the same
 * work as `forward.c pong`: every IPv4 UDP datagram read from the device goes
 * back with its addresses and ports swapped. Prints "ready" once attached;
 * SIGTERM ends it.
 *
 *   deno run --allow-ffi bench/ts_pong.ts DEV [--busy-poll MICROSECONDS]
 *
 * @module
 */
import { TunInterface } from "../mod.ts";

const [name, flag, value] = Deno.args;
if (name === undefined || (flag !== undefined && flag !== "--busy-poll")) {
  console.error("usage: ts_pong.ts DEV [--busy-poll MICROSECONDS]");
  Deno.exit(2);
}

using tun = TunInterface.open({ name, busyPoll: Number(value ?? 0) });
Deno.addSignalListener("SIGTERM", () => tun.close());
const buffer = new Uint8Array(tun.readBufferSize);
console.log("ready");

/** Swaps `length` bytes at `a` with those at `b`. */
function swap(a: number, b: number, length: number): void {
  for (let i = 0; i < length; i++) {
    const byte = buffer[a + i];
    buffer[a + i] = buffer[b + i];
    buffer[b + i] = byte;
  }
}

for (;;) {
  const length = await tun.readInto(buffer);
  if (length === null) break;
  if (length < 28 || buffer[0] >> 4 !== 4 || buffer[9] !== 17) continue;
  // Swapping both pairs leaves every one's-complement sum, so both checksums, as they were.
  const udp = (buffer[0] & 0x0f) * 4;
  swap(12, 16, 4);
  swap(udp, udp + 2, 2);
  await tun.write(buffer.subarray(0, length));
}
