/**
 * The data path of an attached device: reads and writes, one packet or a
 * batch at a time, over its non-blocking fd.
 *
 * Every read and write is one synchronous system call. Only when the kernel
 * has nothing to read (or no room to write) does a call wait, through
 * {@linkcode Readiness}; a batch waits at most once per call and never when
 * a packet is queued. Inside a batch nothing is allocated per packet.
 *
 * @module
 */
import { EAGAIN, EBADF, EINTR, EMSGSIZE, errno } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import type { Readiness } from "./readiness.ts";
import { TunError } from "./tun_error.ts";
import { describe } from "./validate.ts";

/** The largest IP packet: the largest an IP length field can say. */
export const MAX_IP_PACKET = 65535;

// Slabs that read() cuts packets from. A slab is never written again once a
// packet is cut from it, so a packet's bytes never change, and it goes away
// when the last packet cut from it does.
const SLAB_SIZE = 256 * 1024;
// Packets start on 8-byte boundaries within a slab, as malloc'd buffers do.
const ALIGN = 7;

// A "usize" argument must be a BigInt for Deno's fast FFI path, and making
// one allocates: the lengths of packets and buffers are few, so each is made once.
const bigLengths: bigint[] = [];
function bigLength(length: number): bigint {
  return bigLengths[length] ??= BigInt(length);
}

/** What a {@linkcode PacketIo} needs to know about its device. */
export interface PacketIoOptions {
  /** The device fd, non-blocking. */
  fd: number;
  /** Its waiting, which also owns closing the fd. */
  readiness: Readiness;
  /** `TUN device "tun0"`, for messages. */
  device: string;
  /** The bytes the device puts before every IP packet (packet info, vnet header, Ethernet). */
  headerRoom: number;
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
  #readBufferSize = 0;
  // read() asks for readBufferSize bytes of its slab.
  #readCount = 0n;
  #closed = false;
  #slab = new Uint8Array(0);
  #slabAddress = 0;
  #slabUsed = 0;
  #writeTail: Promise<unknown> | undefined;

  constructor(options: PacketIoOptions) {
    this.#fd = options.fd;
    this.#readiness = options.readiness;
    this.#device = options.device;
    this.#headerRoom = options.headerRoom;
    this.#gso = options.gso;
    this.#readMtu = options.readMtu;
    this.#busyPollMs = options.busyPoll / 1000;
    this.#maxWrite = MAX_IP_PACKET + options.headerRoom;
    this.refreshReadBufferSize();
  }

  /** The least buffer length a read accepts: the largest packet plus every header. */
  get readBufferSize(): number {
    return this.#readBufferSize;
  }

  /** The largest buffer a write accepts. */
  get maxWriteSize(): number {
    return this.#maxWrite;
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

  /** The next packet as a view into a slab, or null once closed. */
  async read(signal: AbortSignal | undefined): Promise<Uint8Array | null> {
    signal?.throwIfAborted();
    const packet = this.#closed ? undefined : this.readNow();
    if (packet !== undefined) return packet;
    return await this.#readWhenReady(() => this.readNow(), signal);
  }

  /** The next queued packet, or undefined when the kernel has none now. */
  readNow(): Uint8Array | undefined {
    const room = this.#readBufferSize;
    if (this.#slab.length - this.#slabUsed < room) this.#newSlab(room);
    const start = this.#slabUsed;
    const address = BigInt(this.#slabAddress + start);
    const length = libc().read_address(this.#fd, address, this.#readCount);
    if (length < 0) return this.#readFailed();
    if (length === room) this.#checkWhole(length);
    this.#slabUsed = (start + length + ALIGN) & ~ALIGN;
    return new Uint8Array(this.#slab.buffer, start, length);
  }

  #newSlab(room: number): void {
    this.#slab = new Uint8Array(Math.max(SLAB_SIZE, 4 * room));
    this.#slabAddress = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#slab)));
    this.#slabUsed = 0;
  }

  /** One packet into `buffer`; its length, or null once closed. */
  async readInto(buffer: Uint8Array, signal: AbortSignal | undefined): Promise<number | null> {
    this.#checkReadBuffer(buffer, "Buffer");
    signal?.throwIfAborted();
    const length = this.#closed ? undefined : this.#readOne(buffer);
    if (length !== undefined) return length;
    return await this.#readWhenReady(() => this.#readOne(buffer), signal);
  }

  /**
   * As many queued packets as there are buffers for, at least one; the
   * count, or null once closed.
   */
  async readBatch(
    buffers: readonly Uint8Array[],
    sizes: Uint32Array | number[],
    signal: AbortSignal | undefined,
  ): Promise<number | null> {
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
    signal?.throwIfAborted();
    const count = this.#closed ? undefined : this.#readMany(buffers, sizes);
    if (count !== undefined) return count;
    return await this.#readWhenReady(() => this.#readMany(buffers, sizes), signal);
  }

  #readOne(buffer: Uint8Array): number | undefined {
    const length = libc().read(this.#fd, buffer, bigLength(buffer.length));
    if (length < 0) return this.#readFailed();
    if (length === buffer.length) this.#checkWhole(length);
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
      if (length === buffer.length) this.#checkWhole(length);
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
   * A read that filled its buffer may have been cut short by the kernel,
   * which truncates silently: that happens only when the MTU grew since the
   * buffer size was checked, so read the MTU again and say so if it did.
   */
  #checkWhole(length: number): void {
    if (this.refreshReadBufferSize() <= length) return;
    throw new TunError({
      errno: EMSGSIZE,
      syscall: "read",
      action: `read from ${this.#device}`,
      hint: `a packet was cut to the buffer's ${length} bytes because the MTU grew: ` +
        `buffers must now hold ${this.#readBufferSize} bytes (readBufferSize)`,
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
  async write(packet: Uint8Array): Promise<number> {
    this.#checkPacket(packet, "Packet");
    if (this.#closed) throw this.#error(EBADF, "write", "write to");
    if (this.#writeTail === undefined) {
      const written = this.#writeOne(packet);
      if (written >= 0) return written;
    }
    return await this.#enqueue(async () => {
      while (!this.#closed) {
        const written = this.#writeOne(packet);
        if (written >= 0) return written;
        if (!await this.#readiness.wait("write")) break;
      }
      throw this.#error(EBADF, "write", "write to");
    });
  }

  /** Writes every packet in order, waiting for room; resolves to the count. */
  async writeBatch(packets: readonly Uint8Array[]): Promise<number> {
    if (!Array.isArray(packets)) {
      throw new TypeError(`Packets must be an array of Uint8Array, got ${describe(packets)}`);
    }
    for (let i = 0; i < packets.length; i++) this.#checkPacket(packets[i], `Packet ${i}`);
    if (this.#closed) throw this.#error(EBADF, "write", "write to");
    let done = 0;
    if (this.#writeTail === undefined) {
      done = this.#writeMany(packets, 0);
      if (done === packets.length) return done;
    }
    return await this.#enqueue(async () => {
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
    if (this.#closed || this.#writeTail !== undefined) return -1;
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

  /** Runs `task` after every write queued before it, so packets keep their order. */
  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = (this.#writeTail ?? Promise.resolve()).then(task);
    const tail = result.then(() => {}, () => {});
    this.#writeTail = tail;
    tail.then(() => {
      if (this.#writeTail === tail) this.#writeTail = undefined;
    });
    return result;
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
