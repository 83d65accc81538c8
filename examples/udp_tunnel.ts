// A point-to-point tunnel: IP packets routed into a TUN device cross to the peer as UDP
// datagrams, one packet per datagram, and come out of the peer's TUN device. Plain
// encapsulation, no encryption or authentication: anyone on the path reads the packets.
// The socket is connected to --remote, so the kernel lets in only the peer's datagrams (a
// stranger's is dropped as if nothing listened) and sends without a route lookup each.
// Run one on each end:
//   sudo deno run --allow-ffi examples/udp_tunnel.ts --name tun0 --address 192.0.2.1/30 \
//     --local 198.51.100.1:4789 --remote 198.51.100.2:4789 [--mtu 1400] [--no-offload] [--quiet]
//   sudo deno run --allow-ffi examples/udp_tunnel.ts --name tun0 --address 192.0.2.2/30 \
//     --local 198.51.100.2:4789 --remote 198.51.100.1:4789
// then `ping 192.0.2.2` on the first host. --address and --route repeat (IPv6 too:
// --address 2001:db8::1/64; [2001:db8:1::1]:4789 for an endpoint). It prints "ready NAME …"
// and, on Ctrl-C or SIGTERM, its counters.
//
// Where the speed comes from (what wireguard-go does, without the crypto):
// - TUN offload: TCP arrives as super-packets of up to 64 KB (TSO), one read for dozens of
//   segments; gsoSplitInto cuts each into --mtu sized packets back to back in one buffer;
// - UDP GSO: that buffer goes out in one sendmmsg() message that the kernel cuts into one
//   datagram per packet (UDP_SEGMENT), so a super-packet costs one system call;
// - UDP GRO: the kernel hands back trains of datagrams of one size as one message; they are
//   cut into packets and groCoalesceInto merges each flow's segments back into super-packets,
//   written to the TUN device with a virtio-net header: one write for dozens of segments.
// One thread does it all. The buffers are allocated once, and the views of them (messages
// sent, packets received, merges written) are kept by position and handed out again while
// a batch is cut the way the last one was, so a steady stream allocates nothing per
// packet; what remains is, per super-packet read, its virtio-net header object and a view.
//   --mtu N        the TUN device's MTU (default 1400): the inner packets' size, which
//                  with 28 bytes of IPv4/UDP (48 for IPv6) must fit the path to the peer
//   --no-offload   no virtio-net header, TSO or GRO: one read, one datagram, one write per
//                  packet (what a tunnel does without them)
//   --quiet        no counters at the end
import { parseArgs } from "node:util";
import { TunError, TunInterface, type TunOffloadOptions } from "../mod.ts";
import {
  formatIp,
  groCoalesceInto,
  GSO_MAX_PACKET_SIZE,
  gsoSplitInto,
  parseIp,
  parseVirtioNetHeader,
  VIRTIO_NET_HDR_SIZE,
} from "../packet/mod.ts";
import { type UdpAddress, UdpSocket } from "../udp/mod.ts";
import { ViewCache } from "./udp_tunnel/view_cache.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    name: { type: "string", default: "tun0" },
    address: { type: "string", multiple: true, default: [] },
    route: { type: "string", multiple: true, default: [] },
    local: { type: "string" },
    remote: { type: "string" },
    mtu: { type: "string", default: "1400" },
    "no-offload": { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
  },
});
if (values.local === undefined || values.remote === undefined) {
  console.error("udp_tunnel: --local HOST:PORT and --remote HOST:PORT are required");
  Deno.exit(2);
}
const local = endpoint(values.local);
const remote = endpoint(values.remote);
const mtu = Number(values.mtu);
const offload = !values["no-offload"];
// Messages per recvmmsg() and packets per TUN read.
const BATCH = 64;
// Segments one UDP GSO send may carry (UDP_MAX_SEGMENTS of older kernels), and bytes: a
// train is one UDP datagram until the kernel cuts it, so within 65535 bytes of IPv4.
const MAX_SEGMENTS = 64;
const MAX_UDP_PAYLOAD = 65535 - 20 - 8;
// Packets one receive batch may hold: BATCH GRO trains of at most 64 datagrams.
const MAX_PACKETS = BATCH * 64;
// Packets a super-packet may split into (a 64 KB one into packets of 576 bytes: 123).
const MAX_SPLIT = 256;
// Generous socket buffers: the default ~200 KB overflows at gigabit rates.
const SOCKET_BUFFER = 4 << 20;

/** "198.51.100.1:4789" or "[2001:db8::1]:4789". */
function endpoint(text: string): UdpAddress {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  if (!match) {
    console.error(`udp_tunnel: "${text}" is not HOST:PORT`);
    Deno.exit(2);
  }
  return { hostname: formatIp(parseIp(match[1])), port: Number(match[2]) };
}

/** The device with checksum and TCP segmentation offload, and UDP's when the kernel has it. */
function openDevice(): TunInterface {
  const options = {
    name: values.name,
    mtu,
    addresses: values.address,
    routes: values.route,
    up: true,
  };
  if (!offload) return TunInterface.open(options);
  const full: TunOffloadOptions = {
    checksum: true,
    tso4: true,
    tso6: true,
    uso4: true,
    uso6: true,
  };
  try {
    return TunInterface.open({ ...options, vnetHeader: true, offload: full });
  } catch (error) {
    // USO needs Linux 6.2: without it, UDP crosses one datagram at a time.
    if (!(error instanceof TunError && error.code === "EINVAL")) throw error;
    const tcpOnly = { checksum: true, tso4: true, tso6: true };
    return TunInterface.open({ ...options, vnetHeader: true, offload: tcpOnly });
  }
}

/** The socket at --local, connected to --remote. */
function openSocket(): UdpSocket {
  const socket = UdpSocket.bind({
    hostname: local.hostname,
    port: local.port,
    receiveBufferSize: SOCKET_BUFFER,
    sendBufferSize: SOCKET_BUFFER,
    gro: offload,
  });
  try {
    socket.connect(remote);
    return socket;
  } catch (error) {
    socket.close();
    throw error;
  }
}

const tun = openDevice();
let socket: UdpSocket;
try {
  socket = openSocket();
} catch (error) {
  tun.close();
  throw error;
}
// UDP GSO and GRO need Linux 4.18 and 5.0; without them packets cross one by one.
const gso = offload && socket.gso;
const counters = { sent: 0, messages: 0, received: 0, dropped: 0 };
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  tun.close();
  socket.close();
};

/** Whether `error` is the peer's ICMP port unreachable, which the socket reports once. */
function refused(error: unknown): boolean {
  return error instanceof TunError && error.code === "ECONNREFUSED";
}

/** Reads the device, splits super-packets, sends each as one UDP GSO message. */
async function tunToUdp(): Promise<void> {
  // One region per read: with offload a 64 KB super-packet cut into MTU-sized packets
  // repeats its headers in each, so twice its size is room enough for any MTU of 576 and
  // up; without, a region holds the packet as read and is sent from where it lies.
  const regionLength = offload ? 2 * GSO_MAX_PACKET_SIZE : tun.readBufferSize;
  const bytes = new Uint8Array(BATCH * regionLength);
  const regions = Array.from(
    { length: BATCH },
    (_, i) => bytes.subarray(i * regionLength, (i + 1) * regionLength),
  );
  const reads = offload
    ? Array.from({ length: BATCH }, () => new Uint8Array(tun.readBufferSize))
    : regions;
  const sizes = new Uint32Array(BATCH);
  const lengths = new Uint32Array(MAX_SPLIT);
  const views = new ViewCache(bytes, offload ? BATCH * MAX_SPLIT : BATCH);
  const messages: Uint8Array[] = [];
  // The batch's nth message, a view of `length` bytes at `offset` of `bytes`.
  let n = 0;
  const push = (offset: number, length: number) => {
    messages.push(views.view(n++, offset, offset + length));
  };
  let count: number | null;
  while ((count = await tun.readBatch(reads, sizes)) !== null) {
    n = 0;
    if (!offload) {
      for (let i = 0; i < count; i++) push(i * regionLength, sizes[i]);
      counters.sent += count;
      await send(messages, 0);
      continue;
    }
    // Messages with one segment size go out in one sendmmsg(); a message of a single
    // datagram no longer than that size joins them (the kernel leaves it whole).
    let segmentSize = 0;
    let longestSingle = 0;
    for (let i = 0; i < count; i++) {
      const read = reads[i];
      let packets: number;
      try {
        packets = gsoSplitInto(
          read.subarray(VIRTIO_NET_HDR_SIZE, sizes[i]),
          parseVirtioNetHeader(read),
          mtu,
          regions[i],
          lengths,
        );
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        counters.dropped++;
        continue;
      }
      counters.sent += packets;
      const base = i * regionLength;
      const size = lengths[0];
      let total = 0;
      for (let p = 0; p < packets; p++) total += lengths[p];
      if (!gso) {
        // A kernel without UDP GSO: one message per packet, a sendmmsg() of at most 1024.
        if (messages.length + packets > 1024) await send(messages, 0);
        for (let p = 0, at = base; p < packets; at += lengths[p++]) push(at, lengths[p]);
        continue;
      }
      if (packets === 1) {
        if (segmentSize !== 0 && size > segmentSize) {
          await send(messages, segmentSize);
          segmentSize = longestSingle = 0;
        }
        longestSingle = Math.max(longestSingle, size);
        push(base, size);
        continue;
      }
      if ((segmentSize !== 0 && segmentSize !== size) || longestSingle > size) {
        await send(messages, segmentSize);
        longestSingle = 0;
      }
      segmentSize = size;
      // More than one send may carry goes in several messages.
      const step = Math.min(MAX_SEGMENTS, Math.floor(MAX_UDP_PAYLOAD / size)) * size;
      for (let at = 0; at < total; at += step) push(base + at, Math.min(total - at, step));
    }
    await send(messages, segmentSize);
  }
}

// The options of a GSO send, one object for all.
const trains = { segmentSize: 0 };

/** Sends `messages` to the peer (then empties the list): with `segmentSize`, GSO trains. */
async function send(messages: Uint8Array[], segmentSize: number): Promise<void> {
  if (messages.length === 0) return;
  trains.segmentSize = segmentSize;
  try {
    await socket.sendBatch(messages, segmentSize ? trains : undefined);
  } catch (error) {
    // The peer not listening yet (ICMP port unreachable) loses these packets.
    if (stopping || !refused(error)) throw error;
    counters.dropped += messages.length - ((error as TunError).written ?? 0);
  }
  counters.messages += messages.length;
  messages.length = 0;
}

/** Receives datagrams (GRO trains), merges each flow's segments, writes them to the device. */
async function udpToTun(): Promise<void> {
  const bytes = new Uint8Array(BATCH * GSO_MAX_PACKET_SIZE);
  const buffers = Array.from(
    { length: BATCH },
    (_, i) => bytes.subarray(i * GSO_MAX_PACKET_SIZE, (i + 1) * GSO_MAX_PACKET_SIZE),
  );
  const views = new ViewCache(bytes, MAX_PACKETS);
  const sizes = new Uint32Array(BATCH);
  const segmentSizes = new Uint32Array(BATCH);
  // No addresses: the connected socket receives the peer's datagrams alone.
  const options = { segmentSizes };
  // Each write is a packet or a merge of packets, plus a virtio-net header: the packets'
  // bytes and 10 more per packet are room enough.
  const merged = new Uint8Array(BATCH * GSO_MAX_PACKET_SIZE + VIRTIO_NET_HDR_SIZE * MAX_PACKETS);
  const mergedSizes = new Uint32Array(MAX_PACKETS);
  const mergedViews = new ViewCache(merged, MAX_PACKETS);
  const packets: Uint8Array[] = [];
  const writes: Uint8Array[] = [];
  for (;;) {
    let count: number | null;
    try {
      count = await socket.recvBatch(buffers, sizes, options);
    } catch (error) {
      // Reported once after a send the peer refused (the send side counts the loss).
      if (!stopping && refused(error)) continue;
      throw error;
    }
    if (count === null) return;
    packets.length = 0;
    for (let i = 0; i < count; i++) {
      const length = sizes[i];
      const step = segmentSizes[i] || length;
      const base = i * GSO_MAX_PACKET_SIZE;
      for (let at = 0; at < length; at += step) {
        // The kernel's GRO trains hold at most 64 datagrams: more is a peer gone wrong.
        if (packets.length === MAX_PACKETS) counters.dropped++;
        else {
          packets.push(views.view(packets.length, base + at, base + Math.min(length, at + step)));
        }
      }
    }
    if (packets.length === 0) continue;
    counters.received += packets.length;
    if (!offload) {
      await write(packets);
      continue;
    }
    writes.length = 0;
    const merges = groCoalesceInto(packets, merged, mergedSizes);
    for (let i = 0, at = 0; i < merges; at += mergedSizes[i++]) {
      writes.push(mergedViews.view(i, at, at + mergedSizes[i]));
    }
    await write(writes);
  }
}

/** Writes `writes` to the device; one it refuses is lost, and the rest go on. */
async function write(writes: Uint8Array[]): Promise<void> {
  for (let start = 0; start < writes.length;) {
    const batch = start === 0 ? writes : writes.slice(start);
    try {
      await tun.writeBatch(batch);
      return;
    } catch (error) {
      // EINVAL: a malformed packet from the peer; EIO: the device is down.
      if (!(error instanceof TunError && (error.code === "EINVAL" || error.code === "EIO"))) {
        throw error;
      }
      counters.dropped++;
      start += (error.written ?? 0) + 1;
    }
  }
}

Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
const guard = (direction: Promise<void>) =>
  direction.catch((error) => {
    // A batch caught between the device and the socket closing is lost, not an error.
    if (!stopping) throw error;
  }).finally(stop);
const done = Promise.all([guard(tunToUdp()), guard(udpToTun())]);
console.log(
  `ready ${tun.name} ${local.hostname}:${local.port} > ${remote.hostname}:${remote.port}` +
    (offload ? " offload" : ""),
);
await done;
if (!values.quiet) {
  const { sent, messages, received, dropped } = counters;
  console.log(
    `sent ${sent} packets in ${messages} messages, received ${received} packets, ` +
      `dropped ${dropped}`,
  );
}
