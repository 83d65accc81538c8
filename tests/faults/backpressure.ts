/**
 * Real write back-pressure on a TAP device, for the fault tests.
 *
 * TUN and TAP writes practically never say EAGAIN: a written frame stops
 * counting against the device fd's send buffer as soon as the stack is done
 * with it. So the TAP becomes a bridge port beside a veth whose queue is
 * throttled to 8 bit/s: the bridge floods unknown-unicast frames into that
 * queue, where they stay charged to the fd's send buffer, which
 * `TUNSETSNDBUF` has shrunk to a few frames. Writes then fail with EAGAIN
 * and the library waits; deleting the qdisc drops what it held and frees
 * the room at once.
 *
 * The library exposes no fd, so the handle's fd is found by its link to
 * `/dev/net/tun` in `/proc/self/fd` and the name `TUNGETIFF` reports.
 *
 * @module
 */
import type { TunInterface } from "../../mod.ts";
import { sh, uniqueName } from "../kernel.ts";

const TUNGETIFF = 0x800454d2n;
const TUNSETSNDBUF = 0x400454d4n;
const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;

const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCKADDR_LL_SIZE = 20;
// An EtherType for local experiments: no stack on the way answers it.
const ETHERTYPE_EXPERIMENT = 0x88b5;

const libc = Deno.dlopen("libc.so.6", {
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "i32",
  },
});

/** The fd of this process attached to the TUN/TAP device `name`. */
export function deviceFd(name: string): number {
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    const fd = Number(entry.name);
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed since the listing
    }
    // The test runner binds its own node over /dev/net/tun: accept either path.
    if (!target.endsWith("/tun")) continue;
    const ifreq = new Uint8Array(IFREQ_SIZE);
    if (libc.symbols.ioctl(fd, TUNGETIFF, ifreq) !== 0) continue;
    const end = ifreq.indexOf(0);
    const attached = new TextDecoder().decode(ifreq.subarray(0, end < 0 ? IFNAMSIZ : end));
    if (attached === name) return fd;
  }
  throw new Error(`no fd of this process is attached to ${name}`);
}

/** Shrinks the send buffer of the fd attached to `name` (TUNSETSNDBUF). */
export function shrinkSendBuffer(name: string, bytes = 4096): void {
  const size = new Uint8Array(new Int32Array([bytes]).buffer);
  if (libc.symbols.ioctl(deviceFd(name), TUNSETSNDBUF, size) !== 0) {
    throw new Error(`TUNSETSNDBUF on ${name} failed`);
  }
}

/** Sends one raw Ethernet frame out of `link` (AF_PACKET). */
function sendFrame(link: string, frame: Uint8Array): void {
  const index = libc.symbols.if_nametoindex(new TextEncoder().encode(`${link}\0`));
  const socket = libc.symbols.socket(AF_PACKET, SOCK_RAW, 0);
  if (index === 0 || socket < 0) throw new Error(`cannot send a frame out of ${link}`);
  try {
    const address = new DataView(new ArrayBuffer(SOCKADDR_LL_SIZE));
    address.setUint16(0, AF_PACKET, true);
    address.setUint16(2, ETHERTYPE_EXPERIMENT);
    address.setInt32(4, index, true);
    address.setUint8(11, 6);
    const sent = libc.symbols.sendto(
      socket,
      frame,
      BigInt(frame.length),
      0,
      new Uint8Array(address.buffer),
      SOCKADDR_LL_SIZE,
    );
    if (sent !== frame.length) throw new Error(`cannot send a frame out of ${link}`);
  } finally {
    libc.symbols.close(socket);
  }
}

const tag = crypto.randomUUID().slice(0, 4);

/** A TAP device's back-pressure: throttled, then released; disposing removes the bridge and veth. */
export interface Backpressure extends Disposable {
  /** The bridge the TAP is a port of. */
  readonly bridge: string;
  /** The throttled veth (the other bridge port). */
  readonly veth: string;
  /** A frame of unknown unicast, which the bridge floods into the throttled veth. */
  frame(sequence?: number): Uint8Array;
  /**
   * Writes frames straight to the fd until the kernel says EAGAIN, so that
   * the next write through the library waits; the count written.
   */
  fill(limit?: number): number;
  /**
   * Sends one frame (60 bytes, EtherType 0x88b5) from the veth's peer to the
   * MAC the TAP's frames come from: the bridge learnt it on the TAP's port,
   * so the frame reaches the TAP alone.
   */
  arrive(): void;
  /** Deletes the qdisc: the frames it held are dropped and room comes at once. */
  release(): void;
}

/** Runs `ip` or `tc` in network namespace `netns`, or in this one. */
function inside(netns: string | undefined, command: string): string {
  return sh(netns ? `ip netns exec ${netns} ${command}` : command);
}

/**
 * Makes `tap` (already in `netns` when given) a bridge port beside a
 * throttled veth and shrinks its fd's send buffer. Everything is quiet: no
 * IPv6 and no multicast snooping, so no frame reaches the TAP unasked.
 */
export function throttle(tap: TunInterface, options: { netns?: string } = {}): Backpressure {
  const { netns } = options;
  // Each test file runs in an isolate of its own, with its own uniqueName counter.
  const bridge = uniqueName(`br${tag}`);
  const veth = uniqueName(`ve${tag}`);
  const peer = `${veth}p`;
  const quiet = (link: string) => inside(netns, `sysctl -qw net.ipv6.conf.${link}.disable_ipv6=1`);
  // Without snooping, the bridge joins no multicast group (224.0.0.106) and
  // so sends no IGMP report out of its ports.
  inside(netns, `ip link add ${bridge} type bridge mcast_snooping 0`);
  inside(netns, `ip link add ${veth} type veth peer name ${peer}`);
  for (const link of [bridge, veth, peer, tap.name]) quiet(link);
  inside(netns, `ip link set ${tap.name} master ${bridge} up`);
  inside(netns, `ip link set ${veth} master ${bridge} up`);
  inside(netns, `ip link set ${peer} up`);
  inside(netns, `ip link set ${bridge} up`);
  inside(netns, `tc qdisc add dev ${veth} root tbf rate 8bit burst 1600 limit 10000000`);
  shrinkSendBuffer(tap.name);
  return {
    bridge,
    veth,
    frame(sequence = 0) {
      // To 02:00:00:00:00:99 (never seen, so flooded) from 02:00:00:00:00:01,
      // the sequence in the payload.
      const frame = new Uint8Array(100);
      frame.set([2, 0, 0, 0, 0, 0x99, 2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
      new DataView(frame.buffer).setUint32(14, sequence);
      return frame;
    },
    fill(limit = 10_000) {
      const fd = deviceFd(tap.name);
      for (let i = 0; i < limit; i++) {
        const frame = this.frame(i);
        if (libc.symbols.write(fd, frame, BigInt(frame.length)) < 0) {
          if (i === 0) throw new Error(`the first write to ${tap.name} failed`);
          return i;
        }
      }
      throw new Error(`${limit} writes to ${tap.name} found room: no back-pressure`);
    },
    arrive() {
      if (netns) throw new Error("arrive() sends from this namespace only");
      // From 02:00:00:00:00:42 to the MAC the TAP's frames come from.
      const frame = new Uint8Array(60);
      frame.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0x42, 0x88, 0xb5]);
      sendFrame(peer, frame);
    },
    release() {
      inside(netns, `tc qdisc del dev ${veth} root`);
    },
    [Symbol.dispose]() {
      // Gone already when the namespace was.
      for (const link of [bridge, veth]) {
        try {
          inside(netns, `ip link del ${link}`);
        } catch {
          // gone with its namespace
        }
      }
    },
  };
}
