/**
 * The tunnel of `examples/udp_tunnel.ts` built the way Deno alone allows:
 * the library's TUN device without offload on one side, and
 * `Deno.listenDatagram` on the other, one IP packet per UDP datagram (plain
 * encapsulation, no crypto). Deno's socket sends and receives one datagram
 * per call and cannot size its buffers, which is what issue 13's user had.
 * The baseline of the tunnel case in `tunnel.ts`.
 *
 *   deno run --allow-ffi --allow-net --unstable-net bench/datagram_tunnel.ts \
 *     DEV MTU LOCAL_IP LOCAL_PORT REMOTE_IP REMOTE_PORT
 *
 * Prints "ready", then relays both ways until SIGTERM or SIGINT, and prints
 * its counters.
 *
 * @module
 */

import { TunInterface } from "../mod.ts";

const [name, mtu, localIp, localPort, remoteIp, remotePort] = Deno.args;
if (remotePort === undefined) {
  console.error("usage: datagram_tunnel.ts DEV MTU LOCAL_IP LOCAL_PORT REMOTE_IP REMOTE_PORT");
  Deno.exit(2);
}
const BATCH = 64;
const remote: Deno.NetAddr = { transport: "udp", hostname: remoteIp, port: Number(remotePort) };

const tun = TunInterface.open({ name, mtu: Number(mtu), up: true });
const socket = Deno.listenDatagram({
  transport: "udp",
  hostname: localIp,
  port: Number(localPort),
});
let sent = 0;
let received = 0;
let dropped = 0;
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  tun.close();
  socket.close();
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);

async function tunToUdp(): Promise<void> {
  const buffers = Array.from({ length: BATCH }, () => new Uint8Array(tun.readBufferSize));
  const sizes = new Uint32Array(BATCH);
  let count: number | null;
  while ((count = await tun.readBatch(buffers, sizes)) !== null) {
    for (let i = 0; i < count; i++) {
      try {
        await socket.send(buffers[i].subarray(0, sizes[i]), remote);
        sent++;
      } catch (error) {
        // The far side not listening yet (ICMP port unreachable) loses the packet.
        if (stopping || !(error instanceof Deno.errors.ConnectionRefused)) throw error;
        dropped++;
      }
    }
  }
}

async function udpToTun(): Promise<void> {
  for (;;) {
    let data: Uint8Array;
    try {
      [data] = await socket.receive();
    } catch (error) {
      if (stopping) return;
      if (error instanceof Deno.errors.ConnectionRefused) continue;
      throw error;
    }
    received++;
    await tun.write(data);
  }
}

const guard = (direction: Promise<void>) =>
  direction.catch((error) => {
    if (!stopping) throw error;
  }).finally(stop);
console.log("ready");
await Promise.all([guard(tunToUdp()), guard(udpToTun())]);
console.log(`sent ${sent} received ${received} dropped ${dropped}`);
