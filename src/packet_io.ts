/**
 * The data path of an attached device: reads and writes, one packet or a
 * batch at a time, over its non-blocking fd.
 *
 * Every read and write is one synchronous system call. Only when the kernel
 * has nothing to read (or no room to write) does a call wait, through
 * {@linkcode Readiness}: a batch never waits while a packet is queued, and
 * returns as soon as it has one. Inside a batch nothing is allocated per
 * packet.
 *
 * @module
 */
import { EAGAIN, EBADF, EINTR, EMSGSIZE, errno } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { type Readiness, WriteQueue } from "./readiness.ts";
import { TunError } from "./tun_error.ts";
import { describe } from "./validate.ts";

/** The largest IP packet: the largest an IP length field can say. */
export const MAX_IP_PACKET = 65535;

/** An Ethernet header, and the room for one with an 802.1Q tag, which the kernel may insert. */
export const ETHERNET_HEADER = 14;
export const ETHERNET_VLAN_ROOM = 18;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const IPV6_HEADER = 40;

// Slabs that read() cuts packets from. A slab is never written again once a
// packet is cut from it, so a packet's bytes never change, and it goes away
// when the last packet cut from it does.
const SLAB_SIZE = 256 * 1024;
// Packets start on 8-byte boundaries within a slab, as malloc'd buffers do.
const ALIGN = 7;

// A "usize" argument must be a BigInt for Deno's fast FFI path, and making
// one allocates: the lengths of packets and buffers are few, so each is made
// once. A dense array, since a sparse one would be a slow dictionary.
const bigLengths = new Array<bigint | undefined>(MAX_IP_PACKET + 1024).fill(undefined);
function bigLength(length: number): bigint {
  return length < bigLengths.length ? bigLengths[length] ??= BigInt(length) : BigInt(length);
}

/** What a {@linkcode PacketIo} needs to know about its device. */
export interface PacketIoOptions {
  /** The device fd, non-blocking. */
  fd: number;
  /** Its waiting, which also owns closing the fd. */
  readiness: Readiness;
  /** `TUN device "tun0"`, for messages. */
  device: string;
  /**
   * The most bytes the device puts before an IP packet: packet info, vnet
   * header, and for TAP an Ethernet header with room for a VLAN tag.
   */
  headerRoom: number;
  /** Whether packets are Ethernet frames (TAP). */
  ethernet: boolean;
  /** Whether reads may carry GSO super-packets (up to 64 KiB), whatever the MTU. */
  gso: boolean;
  /** Reads the device's MTU from the kernel. */
  readMtu: () => number;
  /** Microseconds to keep retrying a read before waiting in poll(); 0 waits at once. */
  busyPoll: number;
}

/** The reads and writes of one attached device. */
export class PacketIo {
  readonly #fd: number;
  readonly #readiness: Readiness;
  readonly #device: string;
  readonly #headerRoom: number;
  readonly #gso: boolean;
  readonly #readMtu: () => number;
  readonly #busyPollMs: number;
  readonly #maxWrite: number;
  // Where the IP header starts in what a read returns (after the Ethernet
  // header, which has a VLAN tag or not, on TAP).
  readonly #ipOffset: number;
  readonly #ethernet: boolean;
  #readBufferSize = 0;
  // read() asks for readBufferSize bytes of its slab.
  #readCount = 0n;
  #closed = false;
  #slab = new Uint8Array(0);
  #slabUsed = 0;
  readonly #writes = new WriteQueue();

  constructor(options: PacketIoOptions) {
    this.#fd = options.fd;
    this.#readiness = options.readiness;
    this.#device = options.device;
    this.#headerRoom = options.headerRoom;
    this.#gso = options.gso;
    this.#readMtu = options.readMtu;
    this.#busyPollMs = options.busyPoll / 1000;
    this.#maxWrite = MAX_IP_PACKET + options.headerRoom;
    this.#ethernet = options.ethernet;
    this.#ipOffset = options.headerRoom -
      (options.ethernet ? ETHERNET_VLAN_ROOM - ETHERNET_HEADER : 0);
    this.refreshReadBufferSize();
  }

  /** The least buffer length a read accepts: the largest packet plus every header. */
  get readBufferSize(): number {
    return this.#readBufferSize;
  }

  /** Reads the MTU again (after it changed) and returns the new read buffer size. */
  refreshReadBufferSize(): number {
    const packet = this.#gso ? MAX_IP_PACKET : this.#readMtu();
    this.#readBufferSize = packet + this.#headerRoom;
    this.#readCount = BigInt(this.#readBufferSize);
    return this.#readBufferSize;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stops every read and write; the caller closes the readiness (and so the fd). */
  close(): void {
    this.#closed = true;
  }

  // --- Reading -----------------------------------------------------------

  // The public calls are not async functions: with a packet queued, all a
  // call costs beyond the system call is one settled promise.

  /** The next packet as a view into a slab, or null once closed. */
  read(signal: AbortSignal | undefined): Promise<Uint8Array | null> {
    try {
      signal?.throwIfAborted();
      const packet = this.#closed ? undefined : this.readNow();
      if (packet !== undefined) return Promise.resolve(packet);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#readWhenReady(() => this.readNow(), signal);
  }

  /** The next queued packet, or undefined when the kernel has none now. */
  readNow(): Uint8Array | undefined {
    const room = this.#readBufferSize;
    if (this.#slab.length - this.#slabUsed < room) this.#newSlab(room);
    const start = this.#slabUsed;
    const length = libc().read(this.#fd, this.#slab.subarray(start), this.#readCount);
    if (length < 0) return this.#readFailed();
    if (length === room) this.#checkWhole(this.#slab, start, length);
    this.#slabUsed = (start + length + ALIGN) & ~ALIGN;
    return new Uint8Array(this.#slab.buffer, start, length);
  }

  #newSlab(room: number): void {
    this.#slab = new Uint8Array(Math.max(SLAB_SIZE, 4 * room));
    this.#slabUsed = 0;
  }

  /** One packet into `buffer`; its length, or null once closed. */
  readInto(buffer: Uint8Array, signal: AbortSignal | undefined): Promise<number | null> {
    try {
      this.#checkReadBuffer(buffer, "Buffer");
      signal?.throwIfAborted();
      const length = this.#closed ? undefined : this.#readOne(buffer);
      if (length !== undefined) return Promise.resolve(length);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#readWhenReady(() => this.#readOne(buffer), signal);
  }

  /**
   * As many queued packets as there are buffers for, at least one; the
   * count, or null once closed.
   */
  readBatch(
    buffers: readonly Uint8Array[],
    sizes: Uint32Array | number[],
    signal: AbortSignal | undefined,
  ): Promise<number | null> {
    try {
      this.#checkBatch(buffers, sizes);
      signal?.throwIfAborted();
      const count = this.#closed ? undefined : this.#readMany(buffers, sizes);
      if (count !== undefined) return Promise.resolve(count);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#readWhenReady(() => this.#readMany(buffers, sizes), signal);
  }

  #checkBatch(buffers: readonly Uint8Array[], sizes: Uint32Array | number[]): void {
    if (!Array.isArray(buffers)) {
      throw new TypeError(`Buffers must be an array of Uint8Array, got ${describe(buffers)}`);
    }
    if (buffers.length === 0) throw new RangeError("Buffers must not be empty");
    for (let i = 0; i < buffers.length; i++) this.#checkReadBuffer(buffers[i], `Buffer ${i}`);
    if (!(sizes instanceof Uint32Array) && !Array.isArray(sizes)) {
      throw new TypeError(`Sizes must be a Uint32Array or an array, got ${describe(sizes)}`);
    }
    // An array grows as lengths are written; a Uint32Array cannot.
    if (sizes instanceof Uint32Array && sizes.length < buffers.length) {
      throw new RangeError(
        `Sizes must have room for ${buffers.length} lengths (one per buffer), got ${sizes.length}`,
      );
    }
  }

  #readOne(buffer: Uint8Array): number | undefined {
    const length = libc().read(this.#fd, buffer, bigLength(buffer.length));
    if (length < 0) return this.#readFailed();
    if (length === buffer.length) this.#checkWhole(buffer, 0, length);
    return length;
  }

  #readMany(buffers: readonly Uint8Array[], sizes: Uint32Array | number[]): number | undefined {
    const fd = this.#fd;
    const read = libc().read;
    let count = 0;
    for (; count < buffers.length; count++) {
      const buffer = buffers[count];
      const length = read(fd, buffer, bigLength(buffer.length));
      if (length < 0) {
        // What was read is delivered; a failure shows again on the next call.
        if (count > 0) break;
        return this.#readFailed();
      }
      if (length === buffer.length) this.#checkWhole(buffer, 0, length);
      sizes[count] = length;
    }
    return count;
  }

  /** After a failed read: undefined for "nothing now", else the error. */
  #readFailed(): undefined {
    const code = errno();
    if (code === EAGAIN || code === EINTR) return undefined;
    throw this.#error(code, "read", "read from");
  }

  /**
   * A read that filled its buffer may have been cut short: the kernel
   * truncates silently, which happens when the MTU grew since the buffer
   * size was checked. The packet's own IP header tells, without a system
   * call: it is cut short when it claims more bytes than arrived.
   */
  #checkWhole(buffer: Uint8Array, start: number, length: number): void {
    let ip = start + this.#ipOffset;
    if (this.#ethernet) {
      let type = (buffer[ip - 2] << 8) | buffer[ip - 1];
      if (type === ETHERTYPE_VLAN) {
        type = (buffer[ip + 2] << 8) | buffer[ip + 3];
        ip += 4;
      }
      if (type !== ETHERTYPE_IPV4 && type !== ETHERTYPE_IPV6) return;
    }
    const version = buffer[ip] >> 4;
    const claimed = version === 4
      ? (buffer[ip + 2] << 8) | buffer[ip + 3]
      : version === 6
      ? IPV6_HEADER + ((buffer[ip + 4] << 8) | buffer[ip + 5])
      : 0;
    if (claimed <= start + length - ip) return;
    // The MTU cannot be read once the device moved to another namespace.
    let size: string;
    try {
      size = `: buffers must now hold ${this.refreshReadBufferSize()} bytes (readBufferSize)`;
    } catch {
      size = `: use buffers of ${MAX_IP_PACKET + this.#headerRoom} bytes`;
    }
    throw new TunError({
      errno: EMSGSIZE,
      syscall: "read",
      action: `read from ${this.#device}`,
      hint: `a packet of ${claimed} bytes was cut to the buffer's ${length} because the ` +
        `device's MTU grew${size}`,
    });
  }

  #checkReadBuffer(buffer: unknown, what: string): void {
    if (!(buffer instanceof Uint8Array)) {
      throw new TypeError(`${what} must be a Uint8Array, got ${describe(buffer)}`);
    }
    if (buffer.length < this.#readBufferSize) {
      throw new RangeError(
        `${what} must hold at least ${this.#readBufferSize} bytes (readBufferSize: the MTU ` +
          `plus the headers ${this.#device} adds), got ${buffer.length}; the kernel would ` +
          `cut longer packets silently`,
      );
    }
  }

  /** Retries `attempt` after each wake-up (after spinning on it, with busyPoll). */
  async #readWhenReady<T>(
    attempt: () => T | undefined,
    signal: AbortSignal | undefined,
  ): Promise<T | null> {
    while (!this.#closed) {
      if (this.#busyPollMs > 0) {
        const end = performance.now() + this.#busyPollMs;
        do {
          const result = attempt();
          if (result !== undefined) return result;
        } while (performance.now() < end && !this.#closed);
      }
      if (!await this.#readiness.wait("read", signal)) break;
      const result = this.#closed ? undefined : attempt();
      if (result !== undefined) return result;
    }
    return null;
  }

  // --- Writing -----------------------------------------------------------

  /** Writes one packet, waiting for room; resolves to the bytes written. */
  write(packet: Uint8Array): Promise<number> {
    try {
      this.#checkPacket(packet, "Packet");
      if (this.#closed) throw this.#error(EBADF, "write", "write to");
      if (this.#writes.idle) {
        const written = this.#writeOne(packet);
        if (written >= 0) return Promise.resolve(written);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#writes.enqueue(async () => {
      while (!this.#closed) {
        const written = this.#writeOne(packet);
        if (written >= 0) return written;
        if (!await this.#readiness.wait("write")) break;
      }
      throw this.#error(EBADF, "write", "write to");
    });
  }

  /** Writes every packet in order, waiting for room; resolves to the count. */
  writeBatch(packets: readonly Uint8Array[]): Promise<number> {
    let done = 0;
    try {
      if (!Array.isArray(packets)) {
        throw new TypeError(`Packets must be an array of Uint8Array, got ${describe(packets)}`);
      }
      for (let i = 0; i < packets.length; i++) this.#checkPacket(packets[i], `Packet ${i}`);
      if (this.#closed) throw this.#error(EBADF, "write", "write to");
      if (this.#writes.idle) {
        done = this.#writeMany(packets, 0);
        if (done === packets.length) return Promise.resolve(done);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#writes.enqueue(async () => {
      while (!this.#closed) {
        done = this.#writeMany(packets, done);
        if (done === packets.length) return done;
        if (!await this.#readiness.wait("write")) break;
      }
      throw this.#error(EBADF, "write", "write to", done);
    });
  }

  /** Writes from `start` until done or the kernel has no room; the new count done. */
  #writeMany(packets: readonly Uint8Array[], start: number): number {
    const fd = this.#fd;
    const write = libc().write;
    let done = start;
    for (; done < packets.length; done++) {
      const packet = packets[done];
      if (write(fd, packet, bigLength(packet.length)) >= 0) continue;
      const code = errno();
      if (code === EAGAIN || code === EINTR) break;
      throw this.#error(code, "write", "write to", done);
    }
    return done;
  }

  /**
   * Writes one packet now if the kernel has room and no earlier write is
   * waiting: the bytes written, or -1 (then use {@linkcode PacketIo.write}).
   */
  tryWrite(packet: Uint8Array): number {
    this.#checkPacket(packet, "Packet");
    if (this.#closed || !this.#writes.idle) return -1;
    return this.#writeOne(packet);
  }

  /** Bytes written, or -1 when the kernel has no room now. */
  #writeOne(packet: Uint8Array): number {
    const written = libc().write(this.#fd, packet, bigLength(packet.length));
    if (written >= 0) return written;
    const code = errno();
    if (code === EAGAIN || code === EINTR) return -1;
    throw this.#error(code, "write", "write to");
  }

  #checkPacket(packet: unknown, what: string): asserts packet is Uint8Array {
    if (!(packet instanceof Uint8Array)) {
      throw new TypeError(`${what} must be a Uint8Array, got ${describe(packet)}`);
    }
    if (packet.length === 0 || packet.length > this.#maxWrite) {
      throw new RangeError(
        `${what} must be 1 to ${this.#maxWrite} bytes long, got ${packet.length}`,
      );
    }
  }

  #error(code: number, syscall: string, verb: string, written?: number): TunError {
    return new TunError({
      errno: code,
      syscall,
      action: written === undefined
        ? `${verb} ${this.#device}`
        : `${verb} ${this.#device} (${written} packets of the batch were written before)`,
      written,
    });
  }
}
