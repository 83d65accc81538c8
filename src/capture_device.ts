/**
 * Capture that observes: an `AF_PACKET` socket bound to a device sees a copy
 * of every packet that crosses it, in both directions, as tcpdump does, so
 * the program that owns the device keeps every packet.
 *
 * The socket is non-blocking and waits like a device does: reads are
 * synchronous `recvfrom` calls until EAGAIN, and only then does the capture
 * wait, in the isolate's one epoll poll ({@linkcode Readiness}).
 *
 * Timestamps are the kernel's, taken when the packet crossed the device
 * (`SIOCGSTAMPNS` after each read, one more syscall per packet but no
 * `recvmsg` and control messages), so they stay exact however late the
 * program reads a backlog. Only the first packets after the socket opens may
 * carry the time they were read instead, while the kernel turns its
 * timestamping on.
 *
 * @module
 */
import { inNetns, type TunNetns, validateNetns } from "./netns.ts";
import { AF_PACKET, MSG_TRUNC, SOCK_CLOEXEC, SOCK_RAW } from "../ffi/constants.ts";
import { EAGAIN, EINTR, ENETDOWN, errno } from "../ffi/errno.ts";
import { cstring, libc } from "../ffi/libc.ts";
import { SOCK_NONBLOCK } from "../ffi/netlink_multicast.ts";
import {
  decode_sockaddr_ll,
  ETH_P_ALL,
  PACKET_OUTGOING,
  SIOCGSTAMPNS,
  sizeof_sockaddr_ll,
  sockaddr_ll,
} from "../ffi/sockaddr_ll.ts";
import { SocketStream } from "./socket_stream.ts";
import { check, type Hints } from "./syscall.ts";
import { TunError } from "./tun_error.ts";
import { validateInterfaceName } from "./validate.ts";

/** One packet seen by {@linkcode captureDevice}. */
export interface CapturedPacket {
  /** When the kernel saw the packet cross the device, in nanoseconds since the Unix epoch. */
  timestampNs: bigint;
  /**
   * `"out"`: the host sent it out of the device (for a TUN/TAP device, it
   * goes to the program that owns the device); `"in"`: it came in through
   * the device (the program wrote it).
   */
  direction: "in" | "out";
  /**
   * The kernel's packet type (`sll_pkttype`): 0 to this host, 1 broadcast,
   * 2 multicast, 3 to another host, 4 outgoing. What a pcap of link type
   * LINUX_SLL2 records.
   */
  packetType: number;
  /** The packet: an IP packet on a TUN device, an Ethernet frame on a TAP device. */
  bytes: Uint8Array;
}

/** Options for {@linkcode captureDevice}. */
export interface CaptureDeviceOptions {
  /** Aborting ends the capture: the pending step rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * The network namespace the device is in (a name under `/run/netns`, or an
   * fd of one); the capture's socket is made there, the program stays put.
   */
  netns?: TunNetns;
}

// The largest packet a device passes (64 KiB with TSO/GSO) and then some:
// one read never cuts a packet.
const RECV_BUFFER_SIZE = 256 * 1024;
const recvBuffer = new Uint8Array(RECV_BUFFER_SIZE);
const address = new Uint8Array(sizeof_sockaddr_ll);
const addressLength = new Uint32Array(1);
const timespec = new BigInt64Array(2);
const timespecBytes = new Uint8Array(timespec.buffer);

const DOWN_RECHECK_MS = 200;
const RAW_HINT = "capturing needs CAP_NET_RAW (or root)";
const HINTS: Hints = { 1: RAW_HINT, 13: RAW_HINT };

/**
 * Observes every packet that crosses device `name`, in both directions,
 * through an `AF_PACKET` socket bound to it, without taking any from the
 * program that owns the device (unlike attaching, which for a multi-queue
 * device would take over the flows the kernel steers to the new queue).
 * Works on any interface, TUN/TAP or not. Needs `CAP_NET_RAW` (or root) and
 * `--allow-ffi`; a refusal is a {@linkcode TunError} that says so.
 *
 * The socket is opened and bound before this returns, so every packet from
 * then on is seen. The capture holds it until it ends: when the loop breaks,
 * when the signal is aborted (which also rejects the pending step with the
 * signal's reason), or when the device is deleted. A device taken down and
 * up again goes on being captured. If packets arrive faster than the
 * program reads them, the kernel drops the excess from the capture (never
 * from the device).
 *
 * @example Print the direction and length of packets on tun0 for ten seconds
 * ```ts ignore
 * import { captureDevice } from "@tuntap/tuntap";
 *
 * try {
 *   const signal = AbortSignal.timeout(10_000);
 *   for await (const { direction, bytes } of captureDevice("tun0", { signal })) {
 *     console.log(direction === "out" ? "to the program" : "from the program", bytes.length);
 *   }
 * } catch (error) {
 *   if ((error as DOMException).name !== "TimeoutError") throw error;
 * }
 * ```
 *
 * @param name The interface to observe.
 * @param options The abort signal.
 * @returns An iterator over the packets, in the order the kernel saw them.
 * @throws {TunError} If there is no such device (ENODEV) or capturing is
 *   not allowed (EPERM: needs CAP_NET_RAW).
 */
export function captureDevice(
  name: string,
  options: CaptureDeviceOptions = {},
): AsyncIterableIterator<CapturedPacket> {
  validateInterfaceName(name);
  const netns = options.netns === undefined ? undefined : validateNetns(options.netns);
  return new DeviceCapture(name, options.signal, netns).stream.iterator();
}

class DeviceCapture {
  readonly #name: string;
  readonly #index: number;
  readonly #netns: TunNetns | undefined;
  readonly #fd: number;
  readonly stream: SocketStream<CapturedPacket>;
  // The kernel said ENETDOWN: the device went down, or is being deleted.
  #down = false;

  constructor(name: string, signal: AbortSignal | undefined, netns: TunNetns | undefined) {
    const action = `capture on "${name}"`;
    this.#name = name;
    this.#netns = netns;
    // A packet socket belongs to the namespace it is made in, and so do the
    // indexes it binds to.
    const [index, fd] = this.#inNamespace(action, () => {
      const found = libc().if_nametoindex(cstring(name));
      const index = check(found === 0 ? -1 : found, "if_nametoindex", action);
      const fd = check(
        libc().socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL)),
        "socket(AF_PACKET)",
        action,
        HINTS,
      );
      return [index, fd];
    });
    this.#index = index;
    try {
      check(
        libc().bind(fd, sockaddr_ll(ETH_P_ALL, this.#index), sizeof_sockaddr_ll),
        "bind(AF_PACKET)",
        action,
        HINTS,
      );
      // Turns the kernel's receive timestamps on (ENOENT: nothing read yet).
      libc().ioctl(fd, BigInt(SIOCGSTAMPNS), timespecBytes);
    } catch (error) {
      libc().close(fd);
      throw error;
    }
    this.#fd = fd;
    this.stream = new SocketStream(fd, () => `the capture socket of "${name}"`, signal, {
      receive: () => this.#receive(),
      wait: () => this.#wait(),
    });
  }

  /**
   * Waits for packets. The kernel reports ENETDOWN once, when the device goes
   * down, and nothing more when it is then deleted: while it is down, look
   * every so often whether it is still there.
   */
  async #wait(): Promise<void> {
    const { readiness, signal: ending } = this.stream;
    if (!this.#down) {
      await readiness.wait("read", ending);
      return;
    }
    const recheck = new AbortController();
    const timer = setTimeout(() => recheck.abort(), DOWN_RECHECK_MS);
    const signal = ending ? AbortSignal.any([ending, recheck.signal]) : recheck.signal;
    try {
      await readiness.wait("read", signal);
    } catch (error) {
      if (ending?.aborted || !recheck.signal.aborted) throw error;
    } finally {
      clearTimeout(timer);
    }
    if (!this.#deviceExists()) this.stream.close();
  }

  /** Reads every queued packet, until EAGAIN or the capture ends. */
  #receive(): void {
    while (!this.stream.closed) {
      addressLength[0] = sizeof_sockaddr_ll;
      const length = libc().recvfrom(
        this.#fd,
        recvBuffer,
        BigInt(RECV_BUFFER_SIZE),
        MSG_TRUNC,
        address,
        new Uint8Array(addressLength.buffer),
      );
      if (length < 0) {
        const code = errno();
        if (code === EINTR) continue;
        if (code === EAGAIN) return;
        // Reported once when the device goes down, and when it is deleted.
        if (code === ENETDOWN) {
          this.#down = true;
          if (!this.#deviceExists()) this.stream.close();
          continue;
        }
        throw new TunError({
          errno: code,
          syscall: "recvfrom(AF_PACKET)",
          action: `capture on "${this.#name}"`,
        });
      }
      this.#down = false;
      const { pkttype } = decode_sockaddr_ll(address);
      this.stream.queue.push({
        timestampNs: this.#timestamp(),
        direction: pkttype === PACKET_OUTGOING ? "out" : "in",
        packetType: pkttype,
        bytes: recvBuffer.slice(0, Math.min(length, RECV_BUFFER_SIZE)),
      });
    }
  }

  /** The kernel's timestamp of the packet just read, or now if it has none. */
  #timestamp(): bigint {
    if (libc().ioctl(this.#fd, BigInt(SIOCGSTAMPNS), timespecBytes) === 0) {
      return timespec[0] * 1_000_000_000n + timespec[1];
    }
    return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
  }

  #deviceExists(): boolean {
    return this.#inNamespace(
      `find "${this.#name}"`,
      () => libc().if_nametoindex(cstring(this.#name)) === this.#index,
    );
  }

  #inNamespace<T>(action: string, call: () => T): T {
    return this.#netns === undefined ? call() : inNetns(this.#netns, action, call);
  }
}

function htons(value: number): number {
  return ((value & 0xff) << 8) | (value >> 8);
}
