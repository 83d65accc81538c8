/**
 * {@linkcode TunInterface}: one attached TUN or TAP device.
 *
 * @module
 */
import {
  IFF_NO_PI,
  IFF_TAP,
  IFF_TUN,
  IFF_TUN_EXCL,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  TUNGETIFF,
  TUNSETGROUP,
  TUNSETIFF,
  TUNSETOFFLOAD,
  TUNSETOWNER,
  TUNSETPERSIST,
} from "../ffi/constants.ts";
import { EAGAIN, EBADF, EEXIST, EINTR, EINVAL, ENODEV, errno } from "../ffi/errno.ts";
import { ifr_name, ifreq, set_ifr_flags } from "../ffi/ifreq.ts";
import { cstring, libc } from "../ffi/libc.ts";
import { Readiness } from "./readiness.ts";
import { check, ioctl, ioctlValue } from "./syscall.ts";
import { TunError } from "./tun_error.ts";
import {
  describe,
  validateId,
  validateInterfaceName,
  validateOptionalBoolean,
} from "./validate.ts";

/** The kind of device: `"tun"` carries IP packets, `"tap"` Ethernet frames. */
export type TunMode = "tun" | "tap";

/** Options for {@linkcode TunInterface.open}. */
export interface TunOpenOptions {
  /**
   * The interface name, at most 15 bytes. A kernel template such as
   * `"tap%d"` lets the kernel number it; omitted, the kernel picks
   * `tunN` or `tapN`. A name that exists is attached to, one that does not
   * is created.
   */
  name?: string;
  /** `"tun"` (IP packets, the default) or `"tap"` (Ethernet frames). */
  mode?: TunMode;
  /**
   * With `true`, every packet read or written starts with the 4-byte
   * packet-information header (`u16 flags`, `be16 protocol`). Default `false`.
   */
  packetInfo?: boolean;
  /**
   * `true` makes the device outlive this handle, `false` makes it go away
   * when the last handle closes, omitted leaves it as it is.
   */
  persist?: boolean;
  /**
   * `true` refuses to attach a device that already exists (`IFF_TUN_EXCL`):
   * the call either creates the device or fails with `EEXIST`.
   */
  exclusive?: boolean;
  /** The uid that may attach the device without CAP_NET_ADMIN. */
  owner?: number;
  /** The gid whose members may attach the device without CAP_NET_ADMIN. */
  group?: number;
}

/** Options for {@linkcode TunInterface.read} and {@linkcode TunInterface.packets}. */
export interface TunReadOptions {
  /**
   * Aborting rejects the pending read with the signal's reason. The device
   * stays open and no packet is lost: the next read gets the next packet.
   */
  signal?: AbortSignal;
}

/** The largest packet `write()` accepts: the largest an IP length field can say. */
export const MAX_PACKET_SIZE = 65535;

// Room for the largest frame and every header the kernel may put before it.
const READ_BUFFER_SIZE = 65536 + 64;
const READ_BUFFER_SIZE_N = BigInt(READ_BUFFER_SIZE);

interface HeldFds {
  fd: number;
  eventFd: number;
}

// Holds fd numbers only: holding the instance would keep it alive forever.
const forgotten = new FinalizationRegistry<HeldFds>(({ fd, eventFd }) => {
  libc().close(fd);
  libc().close(eventFd);
});

/**
 * An attached TUN or TAP device: read packets the kernel routes into it,
 * write packets for the kernel to receive.
 *
 * The fd is non-blocking. Reads and writes are synchronous system calls,
 * and waiting is a single `poll()` on Deno's blocking pool that `close()`
 * interrupts, so a pending read never holds up closing.
 *
 * @example Answer every UDP datagram routed into the device
 * ```ts ignore
 * import { TunInterface } from "@tuntap/tuntap";
 *
 * using tun = TunInterface.open({ name: "tun0" });
 * for await (const packet of tun) {
 *   console.log(`${packet.length} bytes from the kernel`);
 * }
 * ```
 */
export class TunInterface {
  readonly #fd: number;
  readonly #readiness: Readiness;
  readonly #name: string;
  readonly #mode: TunMode;
  readonly #packetInfo: boolean;
  readonly #readBuffer = new Uint8Array(READ_BUFFER_SIZE);
  #closed = false;
  #writeTail: Promise<unknown> | undefined;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  private constructor(
    fd: number,
    readiness: Readiness,
    name: string,
    mode: TunMode,
    packetInfo: boolean,
  ) {
    this.#fd = fd;
    this.#readiness = readiness;
    this.#name = name;
    this.#mode = mode;
    this.#packetInfo = packetInfo;
    forgotten.register(this, { fd, eventFd: readiness.eventFd }, this);
  }

  /**
   * Opens `/dev/net/tun` and attaches a device, creating it when the name
   * does not exist. Arguments are checked before any system call; when a
   * kernel call fails, the fd is closed, a device this call created is gone
   * again, and a {@linkcode TunError} is thrown.
   *
   * @example Create a TAP device the kernel names
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tap = TunInterface.open({ mode: "tap" });
   * console.log(tap.name); // "tap0"
   * ```
   */
  static open(options: TunOpenOptions = {}): TunInterface {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Options must be an object, got ${describe(options)}`,
      );
    }
    const name = options.name === undefined
      ? undefined
      : validateInterfaceName(options.name, "Device name");
    const mode = options.mode ?? "tun";
    if (mode !== "tun" && mode !== "tap") {
      throw new TypeError(`Mode must be "tun" or "tap", got ${describe(mode)}`);
    }
    const packetInfo = validateOptionalBoolean(options.packetInfo, "packetInfo") ?? false;
    const persist = validateOptionalBoolean(options.persist, "persist");
    const exclusive = validateOptionalBoolean(options.exclusive, "exclusive") ?? false;
    const owner = options.owner === undefined ? undefined : validateId(options.owner, "owner");
    const group = options.group === undefined ? undefined : validateId(options.group, "group");

    const kind = mode.toUpperCase();
    let label = name ?? `${mode}%d`;
    const describeDevice = () => `${kind} device "${label}"`;
    const fd = check(
      libc().open(cstring("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0),
      "open(/dev/net/tun)",
      () => `open /dev/net/tun for ${describeDevice()}`,
    );
    let readiness: Readiness;
    try {
      readiness = new Readiness(fd, describeDevice);
    } catch (error) {
      libc().close(fd);
      throw error;
    }
    try {
      const wanted = (mode === "tap" ? IFF_TAP : IFF_TUN) | (packetInfo ? 0 : IFF_NO_PI) |
        (exclusive ? IFF_TUN_EXCL : 0);
      try {
        ioctl(fd, TUNSETIFF, set_ifr_flags(ifreq(name), wanted), `attach ${describeDevice()}`, {
          [EINVAL]: `a device named "${label}" exists and is not a ${kind} device of this kind ` +
            `(TUN or TAP, single or multi-queue)`,
        });
      } catch (error) {
        // IFF_TUN_EXCL answers EBUSY for "exists"; say what it means.
        if (exclusive && error instanceof TunError && error.code === "EBUSY") {
          throw new TunError({
            errno: EEXIST,
            syscall: error.syscall,
            action: `create ${describeDevice()}`,
            hint: "a device with this name already exists",
          });
        }
        throw error;
      }
      const attached = ifreq();
      ioctl(fd, TUNGETIFF, attached, `read back ${describeDevice()}`);
      label = ifr_name(attached);
      // Only the name is read back. The flags are not worth checking:
      // TUNGETIFF reports IFF_NOFILTER, the same bit as IFF_NO_PI, and a
      // single-queue attach always takes the flags asked for (a multi-queue
      // device, which keeps its own, refuses this attach with EINVAL).
      // An offload mask set by an earlier user survives on a persistent
      // device; without a vnet header it must be off or reads break.
      ioctlValue(fd, TUNSETOFFLOAD, 0, `clear offloads of ${describeDevice()}`);
      if (owner !== undefined) {
        ioctlValue(
          fd,
          TUNSETOWNER,
          owner,
          `set the owner of ${describeDevice()} to ${owner}`,
        );
      }
      if (group !== undefined) {
        ioctlValue(
          fd,
          TUNSETGROUP,
          group,
          `set the group of ${describeDevice()} to ${group}`,
        );
      }
      // Last, so that every failure above leaves a device this call created
      // non-persistent, and closing the fd removes it.
      if (persist !== undefined) {
        ioctlValue(
          fd,
          TUNSETPERSIST,
          persist ? 1 : 0,
          `make ${describeDevice()} ${persist ? "persistent" : "non-persistent"}`,
        );
      }
    } catch (error) {
      readiness.close();
      throw error;
    }
    return new TunInterface(fd, readiness, label, mode, packetInfo);
  }

  /**
   * Removes a persistent TUN or TAP device by name: attaches it (as TUN,
   * else as TAP) and clears its persistence, so it goes away when this
   * handle closes. A name that does not exist fails with `ENODEV`, one that
   * is not a TUN/TAP device with `EINVAL`, one attached elsewhere with `EBUSY`.
   *
   * @example Remove a device left by `tuntap create`
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * TunInterface.destroy("tun0");
   * ```
   */
  static destroy(name: string): void {
    validateInterfaceName(name, "Device name");
    if (name.includes("%")) throw new RangeError(`Cannot destroy a template name "${name}"`);
    // Attaching creates a missing device, so look first.
    if (libc().if_nametoindex(cstring(name)) === 0) {
      throw new TunError({
        errno: ENODEV,
        syscall: "if_nametoindex",
        action: `destroy device "${name}"`,
        hint: "there is no interface of that name in this network namespace",
      });
    }
    let tun: TunInterface;
    try {
      tun = TunInterface.open({ name, mode: "tun", persist: false });
    } catch (error) {
      if (!(error instanceof TunError && error.code === "EINVAL")) throw error;
      try {
        tun = TunInterface.open({ name, mode: "tap", persist: false });
      } catch (error) {
        if (!(error instanceof TunError && error.code === "EINVAL")) throw error;
        throw new TunError({
          errno: EINVAL,
          syscall: error.syscall,
          action: `destroy device "${name}"`,
          hint: "it is not a TUN/TAP device",
        });
      }
    }
    tun.close();
  }

  /** The kernel's name for the device, e.g. `"tun0"`. */
  get name(): string {
    return this.#name;
  }

  /** `"tun"` or `"tap"`. */
  get mode(): TunMode {
    return this.#mode;
  }

  /** Whether packets carry the 4-byte packet-information header. */
  get packetInfo(): boolean {
    return this.#packetInfo;
  }

  /** Whether {@linkcode TunInterface.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The next packet the kernel sent into the device, as a fresh array of
   * exactly its length; `null` once the device is closed.
   *
   * @example Read one packet, giving up after a second
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * const packet = await tun.read({ signal: AbortSignal.timeout(1000) });
   * ```
   */
  async read(options?: TunReadOptions): Promise<Uint8Array | null> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    const buffer = this.#readBuffer;
    while (!this.#closed) {
      const length = Number(libc().read(this.#fd, buffer, READ_BUFFER_SIZE_N));
      if (length >= 0) return buffer.slice(0, length);
      const code = errno();
      if (code !== EAGAIN && code !== EINTR) {
        throw this.#error(code, "read", "read from");
      }
      if (!await this.#readiness.wait("read", signal)) break;
    }
    return null;
  }

  /**
   * Writes one whole packet (with its packet-information header when
   * `packetInfo` is set) and resolves to the bytes written. When the kernel
   * has no room it waits until there is: no packet is dropped silently.
   *
   * @example Hand the kernel an IPv4 packet
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * declare const packet: Uint8Array;
   * await tun.write(packet);
   * ```
   */
  async write(packet: Uint8Array): Promise<number> {
    if (!(packet instanceof Uint8Array)) {
      throw new TypeError(
        `Packet must be a Uint8Array, got ${describe(packet)}`,
      );
    }
    if (packet.length === 0 || packet.length > MAX_PACKET_SIZE) {
      throw new RangeError(
        `Packet must be 1 to ${MAX_PACKET_SIZE} bytes long, got ${packet.length}`,
      );
    }
    if (this.#closed) throw this.#error(EBADF, "write", "write to");
    if (this.#writeTail === undefined) {
      const written = this.#tryWrite(packet);
      if (written >= 0) return written;
    }
    // Queue behind earlier writes that are waiting, so packets keep their order.
    const result = (this.#writeTail ?? Promise.resolve()).then(() => this.#writeWhenReady(packet));
    const tail = result.then(() => {}, () => {});
    this.#writeTail = tail;
    tail.then(() => {
      if (this.#writeTail === tail) this.#writeTail = undefined;
    });
    return await result;
  }

  /** Written bytes, or -1 when the kernel would block. */
  #tryWrite(packet: Uint8Array): number {
    const written = Number(
      libc().write(this.#fd, packet, BigInt(packet.length)),
    );
    if (written >= 0) return written;
    const code = errno();
    if (code === EAGAIN || code === EINTR) return -1;
    throw this.#error(code, "write", "write to");
  }

  async #writeWhenReady(packet: Uint8Array): Promise<number> {
    while (!this.#closed) {
      const written = this.#tryWrite(packet);
      if (written >= 0) return written;
      if (!await this.#readiness.wait("write")) break;
    }
    throw this.#error(EBADF, "write", "write to");
  }

  /**
   * Yields packets until the device is closed. With a signal, aborting
   * rejects the pending step with the signal's reason and leaves the device
   * open.
   *
   * @example Stop listening after five seconds
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * try {
   *   for await (const packet of tun.packets({ signal: AbortSignal.timeout(5000) })) {
   *     console.log(packet.length);
   *   }
   * } catch (error) {
   *   if ((error as DOMException).name !== "TimeoutError") throw error;
   * }
   * ```
   */
  async *packets(
    options?: TunReadOptions,
  ): AsyncGenerator<Uint8Array, void, undefined> {
    while (true) {
      const packet = await this.read(options);
      if (packet === null) return;
      yield packet;
    }
  }

  /** Yields packets until the device is closed: `for await (const p of tun)`. */
  [Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    return this.packets();
  }

  /**
   * The packets as a stream, one chunk per packet. It is pull-based: nothing
   * is read from the device until the consumer asks, so a slow consumer
   * leaves packets in the kernel's queue (which drops and counts them)
   * rather than in memory. Cancelling the stream closes the device.
   *
   * @example Forward every packet from one device to another
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using a = TunInterface.open();
   * using b = TunInterface.open();
   * await a.readable.pipeTo(b.writable);
   * ```
   */
  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const packet = await this.read();
        if (packet === null) controller.close();
        else controller.enqueue(packet);
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  /**
   * A stream that writes each chunk as one packet; a failed write errors it
   * with the {@linkcode TunError}. Closing or aborting the stream leaves the
   * device open: it has no write side to shut on its own.
   *
   * @example Write packets from a generator
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * declare const packets: Uint8Array[];
   * await ReadableStream.from(packets).pipeTo(tun.writable);
   * ```
   */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: async (packet) => {
        await this.write(packet);
      },
    }, { highWaterMark: 1 });
    return this.#writable;
  }

  /**
   * Detaches from the device (which goes away unless it is persistent).
   * Idempotent. Every pending read resolves `null` at once, iterators end,
   * waiting writes reject, and the fd is released as soon as no `poll()`
   * can still be watching it.
   *
   * @example Close from a signal handler
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * const tun = TunInterface.open();
   * Deno.addSignalListener("SIGINT", () => tun.close());
   * for await (const _packet of tun) { }
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    forgotten.unregister(this);
    this.#readiness.close();
  }

  /** Calls {@linkcode TunInterface.close}, so `using tun = …` works. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Calls {@linkcode TunInterface.close}, so `await using tun = …` works. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #error(code: number, syscall: string, verb: string): TunError {
    return new TunError({
      errno: code,
      syscall,
      action: `${verb} ${this.#mode.toUpperCase()} device "${this.#name}"`,
    });
  }
}
