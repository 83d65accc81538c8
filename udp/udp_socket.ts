/**
 * {@linkcode UdpSocket}: a non-blocking UDP socket driven by synchronous
 * FFI calls, batched with `recvmmsg`/`sendmmsg`, with UDP GSO and GRO.
 *
 * @module
 */
import {
  AF_INET,
  AF_INET6,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  MSG_TRUNC,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  SOL_UDP,
  UDP_GRO,
  UDP_SEGMENT,
} from "../ffi/constants.ts";
import { cmsg_space, write_cmsghdr } from "../ffi/cmsg.ts";
import {
  EADDRINUSE,
  EADDRNOTAVAIL,
  EAFNOSUPPORT,
  EAGAIN,
  EBADF,
  ECONNREFUSED,
  EINTR,
  EMSGSIZE,
  ENETUNREACH,
  EOPNOTSUPP,
  EPERM,
  errno,
} from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { UIO_MAXIOV } from "../ffi/mmsghdr.ts";
import { sizeof_sockaddr_in6 } from "../ffi/sockaddr_in.ts";
import { closeFds, Readiness, type ReadinessFds, WriteQueue } from "../src/readiness.ts";
import { check } from "../src/syscall.ts";
import { TunError } from "../src/tun_error.ts";
import { describe, validateInteger, validateOptionalBoolean } from "../src/validate.ts";
import { addressOf, CONTROL_SPACE, MessageBatch } from "./message_batch.ts";
import {
  familyOf,
  formatAddress,
  type ParsedHost,
  parseHost,
  SockaddrDecoder,
  type UdpAddress,
  validatePort,
  writeSockaddr,
} from "./socket_address.ts";

/**
 * Options for {@linkcode UdpSocket.bind}.
 *
 * @example A tunnel endpoint with room for bursts and GRO
 * ```ts ignore
 * import { type UdpBindOptions, UdpSocket } from "@tuntap/tuntap/udp";
 *
 * const options: UdpBindOptions = {
 *   hostname: "::",
 *   port: 4789,
 *   receiveBufferSize: 8 << 20,
 *   sendBufferSize: 8 << 20,
 *   gro: true,
 * };
 * using socket = UdpSocket.bind(options);
 * ```
 */
export interface UdpBindOptions {
  /**
   * The local IPv4 or IPv6 address to bind (a literal; names are not
   * resolved). Default `"0.0.0.0"`. An IPv6 socket (`"::"` included) is
   * dual-stack: `IPV6_V6ONLY` is cleared, so it also exchanges datagrams
   * with IPv4 peers, which it reports by their IPv4 addresses.
   */
  hostname?: string;
  /** The local port; 0 (the default) lets the kernel pick one. */
  port?: number;
  /** Bytes for the receive buffer, as {@linkcode UdpSocket.receiveBufferSize} sets it. */
  receiveBufferSize?: number;
  /** Bytes for the send buffer, as {@linkcode UdpSocket.sendBufferSize} sets it. */
  sendBufferSize?: number;
  /**
   * With `true`, turn on UDP GRO (`UDP_GRO`, Linux 5.0+): a receive may
   * return several datagrams of one sender coalesced into one buffer, with
   * their segment size in `segmentSizes`. Use buffers of 65535 bytes then.
   * Where the kernel lacks it ({@linkcode UdpSocket.gro} is `false`), the
   * socket binds without it. Default `false`.
   */
  gro?: boolean;
}

/**
 * Options for {@linkcode UdpSocket.recvBatch}.
 *
 * @example Senders and GRO segment sizes, made once and reused
 * ```ts ignore
 * import { type UdpAddress, type UdpReceiveOptions, UdpSocket } from "@tuntap/tuntap/udp";
 *
 * using socket = UdpSocket.bind({ port: 4789, gro: true });
 * const buffers = Array.from({ length: 32 }, () => new Uint8Array(65535));
 * const sizes = new Uint32Array(32);
 * const options: UdpReceiveOptions = {
 *   addresses: Array.from({ length: 32 }, (): UdpAddress => ({ hostname: "", port: 0 })),
 *   segmentSizes: new Uint32Array(32),
 *   signal: AbortSignal.timeout(10_000),
 * };
 * const count = await socket.recvBatch(buffers, sizes, options);
 * ```
 */
export interface UdpReceiveOptions {
  /** Rejects the wait with the signal's reason when aborted. */
  signal?: AbortSignal;
  /**
   * Filled with each datagram's sender, in place: `addresses[i]` is
   * updated (or created) for every message received. Omitted, no address
   * is decoded.
   */
  addresses?: UdpAddress[];
  /**
   * Filled with each message's GRO segment size (the size of every
   * datagram coalesced into it but perhaps the last, which may be
   * shorter), or 0 for a message that is one datagram.
   */
  segmentSizes?: Uint32Array | number[];
}

/**
 * Options for {@linkcode UdpSocket.sendBatch}.
 *
 * @example Trains of 1400-byte datagrams where the kernel cuts them
 * ```ts ignore
 * import { type UdpSendOptions, UdpSocket } from "@tuntap/tuntap/udp";
 *
 * using socket = UdpSocket.bind();
 * const options: UdpSendOptions = {
 *   to: { hostname: "192.0.2.2", port: 4789 },
 *   segmentSize: socket.gso ? 1400 : undefined,
 * };
 * await socket.sendBatch([new Uint8Array(1400)], options);
 * ```
 */
export interface UdpSendOptions {
  /**
   * Where every packet of the batch goes. Required unless the socket is
   * connected ({@linkcode UdpSocket.connect}); omitted, packets go to the
   * connected peer without a route lookup per datagram. Given on a
   * connected socket, packets go to `to` (as Linux `sendmsg` does), its
   * route looked up per datagram unless it is the peer's very address.
   */
  to?: UdpAddress;
  /**
   * UDP GSO (`UDP_SEGMENT`): each packet is sent as a train of datagrams
   * of this many bytes (the last may be shorter), cut by the kernel or the
   * NIC; a packet no longer than this goes as one datagram. At most
   * {@linkcode UDP_MAX_SEGMENTS} segments per packet. Needs
   * {@linkcode UdpSocket.gso}.
   */
  segmentSize?: number;
  /** Rejects a wait for room with the signal's reason when aborted. */
  signal?: AbortSignal;
}

/**
 * The most segments one GSO send may make (`UDP_MAX_SEGMENTS`: 64 before
 * Linux 6.9, 128 since): checked against 128 here; an older kernel refuses
 * more than 64 with EINVAL.
 *
 * @example The longest packet one GSO send takes
 * ```ts
 * import { UDP_MAX_SEGMENTS } from "@tuntap/tuntap/udp";
 *
 * const segmentSize = 1400;
 * const longest = Math.min(segmentSize * UDP_MAX_SEGMENTS, 65507); // 65507
 * ```
 */
export const UDP_MAX_SEGMENTS = 128;

// The largest UDP payload: what an IPv4 (or IPv6) length field leaves.
const MAX_PAYLOAD_4 = 65535 - 20 - 8;
const MAX_PAYLOAD_6 = 65535 - 8;
const RECEIVE_SIZE = 65535;
// The control buffer of a GSO send: one UDP_SEGMENT cmsg carrying a u16.
const SEGMENT_CONTROL_SPACE = cmsg_space(2);
const MAX_BUFFER_SIZE = 0x3fffffff;

// Kernel support for GSO and GRO: the same for every socket of the process.
let support: { gso: boolean; gro: boolean } | undefined;

function probeSupport(fd: number): { gso: boolean; gro: boolean } {
  if (support) return support;
  const value = new Uint8Array(4);
  const length = new Uint32Array([4]);
  const gso = libc().getsockopt(fd, SOL_UDP, UDP_SEGMENT, value, new Uint8Array(length.buffer));
  length[0] = 4;
  const gro = libc().getsockopt(fd, SOL_UDP, UDP_GRO, value, new Uint8Array(length.buffer));
  support = { gso: gso === 0, gro: gro === 0 };
  return support;
}

// Holds fd numbers only: holding the socket would keep it alive forever.
const forgotten = new FinalizationRegistry<ReadinessFds>(closeFds);

const CLOSED_HINT = "the socket is closed";
// A connected socket's sendBatch without options: to the peer, none made per call.
const TO_PEER: UdpSendOptions = Object.freeze({});

/**
 * A UDP socket for many datagrams per system call. Every call is a
 * synchronous, non-blocking system call; only when the kernel has nothing
 * to receive (or no room to send) does a call wait, in the one `poll()`
 * that TUN/TAP devices share, which {@linkcode UdpSocket.close} interrupts.
 * Inside a batch nothing is allocated per datagram.
 *
 * @example Echo every datagram, a batch at a time
 * ```ts ignore
 * import { type UdpAddress, UdpSocket } from "@tuntap/tuntap/udp";
 *
 * using socket = UdpSocket.bind({ hostname: "127.0.0.1", port: 4789 });
 * const buffers = Array.from({ length: 32 }, () => new Uint8Array(2048));
 * const sizes = new Uint32Array(32);
 * const addresses: UdpAddress[] = [];
 * let count;
 * while ((count = await socket.recvBatch(buffers, sizes, { addresses })) !== null) {
 *   for (let i = 0; i < count; i++) {
 *     await socket.send(buffers[i].subarray(0, sizes[i]), addresses[i]);
 *   }
 * }
 * ```
 */
export class UdpSocket {
  readonly #fd: number;
  readonly #readiness: Readiness;
  readonly #family: 4 | 6;
  readonly #local: UdpAddress;
  readonly #description: string;
  readonly #gro: boolean;
  readonly #receiveBatch = new MessageBatch();
  readonly #sendBatch = new MessageBatch();
  readonly #decoder = new SockaddrDecoder();
  // The destination of the last send, encoded once for as long as it stays.
  readonly #destination = new Uint8Array(new ArrayBuffer(sizeof_sockaddr_in6));
  readonly #destinationAt: number;
  #destinationLength = 0;
  #destinationHost = "";
  #destinationPort = -1;
  // The connected peer: sends without a destination (or to this very address) name none.
  #remote: UdpAddress | undefined;
  // The UDP_SEGMENT cmsg every message of a GSO send points to, and its data (host order).
  readonly #segmentControl = new Uint8Array(new ArrayBuffer(SEGMENT_CONTROL_SPACE));
  readonly #segmentControlAt: number;
  readonly #segmentSizeData: Uint16Array;
  readonly #writes = new WriteQueue();
  #closed = false;

  private constructor(fd: number, readiness: Readiness, family: 4 | 6, gro: boolean) {
    this.#fd = fd;
    this.#readiness = readiness;
    this.#family = family;
    this.#gro = gro;
    this.#local = localAddress(fd, this.#decoder);
    this.#description = `UDP socket ${formatAddress(this.#local)}`;
    this.#destinationAt = addressOf(this.#destination);
    this.#segmentControlAt = addressOf(this.#segmentControl);
    const data = write_cmsghdr(this.#segmentControl, 0, SOL_UDP, UDP_SEGMENT, 2);
    this.#segmentSizeData = new Uint16Array(this.#segmentControl.buffer, data, 1);
    forgotten.register(this, readiness.fds, this);
  }

  /**
   * Opens a UDP socket and binds it, synchronously (as
   * `Deno.listenDatagram` does, but with `--allow-ffi` alone). Arguments
   * are checked before any system call; a kernel failure closes the
   * socket and throws a {@linkcode TunError}.
   *
   * @example Bind to a port the kernel picks
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind({ hostname: "127.0.0.1", receiveBufferSize: 4 << 20 });
   * console.log(socket.localAddress); // { hostname: "127.0.0.1", port: 39512 }
   * ```
   */
  static bind(options: UdpBindOptions = {}): UdpSocket {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Options must be an object, got ${describe(options)}`);
    }
    const hostname = options.hostname ?? "0.0.0.0";
    const host = parseHost(hostname, "Hostname");
    const port = validatePort(options.port ?? 0, "Port");
    const receiveBufferSize = options.receiveBufferSize === undefined
      ? undefined
      : validateBufferSize(options.receiveBufferSize, "receive");
    const sendBufferSize = options.sendBufferSize === undefined
      ? undefined
      : validateBufferSize(options.sendBufferSize, "send");
    const wantGro = validateOptionalBoolean(options.gro, "gro") ?? false;
    const where = formatAddress({ hostname, port });
    const action = `bind UDP socket ${where}`;

    const fd = check(
      libc().socket(
        host.family === 4 ? AF_INET : AF_INET6,
        SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
        0,
      ),
      host.family === 4 ? "socket(AF_INET)" : "socket(AF_INET6)",
      action,
    );
    let readiness: Readiness | undefined;
    try {
      const { gro } = probeSupport(fd);
      if (host.family === 6) setInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY", action);
      if (receiveBufferSize !== undefined) setBufferSize(fd, "receive", receiveBufferSize, action);
      if (sendBufferSize !== undefined) setBufferSize(fd, "send", sendBufferSize, action);
      if (wantGro && gro) setInt(fd, SOL_UDP, UDP_GRO, 1, "UDP_GRO", action);
      const address = new Uint8Array(sizeof_sockaddr_in6);
      const length = writeSockaddr(address, 0, host.family, host, port);
      check(libc().bind(fd, address, length), "bind", action, {
        [EADDRINUSE]: `another socket has ${where} bound`,
        [EADDRNOTAVAIL]: `${hostname} is not an address of this host (see ip address)`,
      });
      readiness = new Readiness(fd, () => `UDP socket ${where}`);
      return new UdpSocket(fd, readiness, host.family, wantGro && gro);
    } catch (error) {
      if (readiness) readiness.close();
      else libc().close(fd);
      throw error;
    }
  }

  /**
   * The address the socket is bound to, with the port the kernel picked
   * when 0 was asked for. A copy: changing it changes nothing.
   *
   * @example Tell a peer where to send
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind({ hostname: "::1" });
   * const { port } = socket.localAddress;
   * ```
   */
  get localAddress(): UdpAddress {
    return { ...this.#local };
  }

  /**
   * Connects the socket to `remote` (`connect(2)`, synchronous; UDP sends
   * nothing to do it): from then on the kernel delivers only `remote`'s
   * datagrams (others are dropped as if no socket had the port), and
   * {@linkcode UdpSocket.sendBatch} and {@linkcode UdpSocket.send} may
   * omit their destination, which spares the kernel a route lookup per
   * datagram. Connecting again moves to another peer. An IPv6 peer needs a
   * socket bound to an IPv6 address (`"::"` for both families).
   *
   * Once connected, an ICMP port unreachable from the peer (nothing
   * listening there yet) is reported by the socket's next send or receive
   * as a {@linkcode TunError} ECONNREFUSED, once: calling again works. A
   * datagram whose send reported it was not sent.
   *
   * @example A point-to-point link
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind({ hostname: "198.51.100.1", port: 4789 });
   * socket.connect({ hostname: "198.51.100.2", port: 4789 });
   * await socket.sendBatch([new Uint8Array(1400)]); // to 198.51.100.2:4789
   * ```
   */
  connect(remote: UdpAddress): void {
    if (typeof remote !== "object" || remote === null) {
      throw new TypeError(`Remote address must be a UdpAddress, got ${describe(remote)}`);
    }
    const { hostname, port } = remote;
    const host = parseHost(hostname, "Remote hostname");
    validatePort(port, "Remote port", 1);
    const peer = { hostname, port };
    const action = this.#action("connect") + ` to ${formatAddress(peer)}`;
    if (host.family === 6 && this.#family === 4) {
      throw new RangeError(
        `Cannot connect the IPv4 ${this.#description} to the IPv6 address ${hostname}: ` +
          `bind to "::" for both families`,
      );
    }
    if (this.#closed) throw this.#error(EBADF, "connect", action);
    const address = new Uint8Array(sizeof_sockaddr_in6);
    const length = writeSockaddr(address, 0, this.#family, host, port);
    check(libc().connect(this.#fd, address, length), "connect", action, {
      [ENETUNREACH]: `no route to ${hostname} (see ip route)`,
      [EAFNOSUPPORT]: `${hostname} is not of the socket's family`,
    });
    this.#remote = peer;
  }

  /**
   * The peer the socket is connected to ({@linkcode UdpSocket.connect}),
   * or `undefined`. A copy.
   *
   * @example Reply to the peer of a connected socket
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind({ hostname: "127.0.0.1" });
   * socket.connect({ hostname: "127.0.0.1", port: 4789 });
   * socket.remoteAddress; // { hostname: "127.0.0.1", port: 4789 }
   * ```
   */
  get remoteAddress(): UdpAddress | undefined {
    return this.#remote === undefined ? undefined : { ...this.#remote };
  }

  /**
   * Whether this kernel has UDP GSO (`UDP_SEGMENT`, Linux 4.18+), so that
   * `sendBatch(…, { segmentSize })` works. Probed once per process.
   *
   * @example Send trains only where the kernel cuts them
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind();
   * const segmentSize = socket.gso ? 1400 : undefined;
   * ```
   */
  get gso(): boolean {
    return support!.gso;
  }

  /**
   * Whether this kernel has UDP GRO (`UDP_GRO`, Linux 5.0+), which
   * `bind({ gro: true })` turns on. Probed once per process.
   *
   * @example Size receive buffers for coalesced datagrams
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind({ gro: true });
   * const size = socket.gro ? 65535 : 2048;
   * ```
   */
  get gro(): boolean {
    return support!.gro;
  }

  /**
   * The receive buffer size the kernel reports (`SO_RCVBUF`): twice what
   * was set, since the kernel counts its bookkeeping too. Setting it uses
   * `SO_RCVBUFFORCE` when permitted (root or CAP_NET_ADMIN), which passes
   * `net.core.rmem_max`; otherwise `SO_RCVBUF`, which that sysctl caps.
   *
   * @example Make room for bursts
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind();
   * socket.receiveBufferSize = 8 << 20;
   * console.log(socket.receiveBufferSize); // 16777216 as root
   * ```
   */
  get receiveBufferSize(): number {
    return this.#bufferSize("receive");
  }

  set receiveBufferSize(size: number) {
    this.#setBufferSize("receive", size);
  }

  /**
   * The send buffer size the kernel reports (`SO_SNDBUF`, twice what was
   * set). Setting it uses `SO_SNDBUFFORCE` when permitted, else
   * `SO_SNDBUF` (capped by `net.core.wmem_max`).
   *
   * @example Limit what queues before sends wait
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind();
   * socket.sendBufferSize = 64 << 10;
   * ```
   */
  get sendBufferSize(): number {
    return this.#bufferSize("send");
  }

  set sendBufferSize(size: number) {
    this.#setBufferSize("send", size);
  }

  /**
   * Whether {@linkcode UdpSocket.close} was called.
   *
   * @example Skip a closed socket
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * const socket = UdpSocket.bind();
   * socket.close();
   * socket.closed; // true
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  // --- Receiving -----------------------------------------------------------

  /**
   * Receives as many queued datagrams as there are buffers for (one
   * `recvmmsg`), at least one, waiting when none is queued: the count
   * `n`, with `buffers[i]` holding `sizes[i]` bytes for `i < n`; `null`
   * once the socket is closed. `addresses` and `segmentSizes`, when given,
   * are filled for the same messages. A datagram longer than its buffer
   * rejects with a {@linkcode TunError} EMSGSIZE (it is lost, and so are
   * the others of that batch): use buffers of 65535 bytes, or the largest
   * datagram expected, and 65535 with GRO.
   *
   * @example Drain a batch
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind({ hostname: "127.0.0.1", port: 4789 });
   * const buffers = Array.from({ length: 64 }, () => new Uint8Array(65535));
   * const sizes = new Uint32Array(64);
   * const count = await socket.recvBatch(buffers, sizes);
   * ```
   */
  recvBatch(
    buffers: Uint8Array[],
    sizes: Uint32Array | number[],
    options?: UdpReceiveOptions,
  ): Promise<number | null> {
    let addresses: UdpAddress[] | undefined;
    let segmentSizes: Uint32Array | number[] | undefined;
    let signal: AbortSignal | undefined;
    try {
      checkBuffers(buffers);
      checkSizes(sizes, buffers.length, "Sizes");
      if (options !== undefined) {
        if (typeof options !== "object" || options === null) {
          throw new TypeError(`Options must be an object, got ${describe(options)}`);
        }
        ({ addresses, segmentSizes, signal } = options);
        if (addresses !== undefined) checkAddresses(addresses, buffers.length);
        if (segmentSizes !== undefined) {
          checkSizes(segmentSizes, buffers.length, "Segment sizes");
        }
        checkSignal(signal);
      }
      signal?.throwIfAborted();
      const count = this.#closed
        ? undefined
        : this.#receiveNow(buffers, sizes, addresses, segmentSizes);
      if (count !== undefined) return Promise.resolve(count);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#whenReadable(
      () => this.#receiveNow(buffers, sizes, addresses, segmentSizes),
      signal,
    );
  }

  /**
   * Receives one datagram: a view of `buffer` (a new 65535-byte buffer
   * when omitted) holding it, and its sender; `null` once closed. For many
   * datagrams, {@linkcode UdpSocket.recvBatch} allocates nothing.
   *
   * @example Answer one request
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind({ hostname: "127.0.0.1", port: 5353 });
   * const received = await socket.receive();
   * if (received) await socket.send(received[0], received[1]);
   * ```
   */
  async receive(
    buffer?: Uint8Array,
    options?: { signal?: AbortSignal },
  ): Promise<[Uint8Array, UdpAddress] | null> {
    const target = buffer ?? new Uint8Array(RECEIVE_SIZE);
    const sizes = [0];
    const addresses: UdpAddress[] = [];
    const count = await this.recvBatch([target], sizes, { addresses, signal: options?.signal });
    return count === null ? null : [target.subarray(0, sizes[0]), addresses[0]];
  }

  #receiveNow(
    buffers: Uint8Array[],
    sizes: Uint32Array | number[],
    addresses: UdpAddress[] | undefined,
    segmentSizes: Uint32Array | number[] | undefined,
  ): number | undefined {
    const batch = this.#receiveBatch;
    const wanted = Math.min(buffers.length, UIO_MAXIOV);
    batch.reserve(wanted);
    const control = this.#gro ? CONTROL_SPACE : 0;
    for (let i = 0; i < wanted; i++) {
      batch.setBuffer(i, buffers[i]);
      // Both are in-out: the kernel leaves the lengths it used.
      batch.setNameLength(i, sizeof_sockaddr_in6);
      batch.setControlLength(i, control);
    }
    // MSG_TRUNC: msg_len says the datagram's whole length, so a cut one shows.
    const count = libc().recvmmsg(this.#fd, batch.headers, wanted, MSG_TRUNC, null);
    if (count < 0) {
      const code = errno();
      if (code === EAGAIN || code === EINTR) return undefined;
      throw this.#error(code, "recvmmsg", this.#action("receive on"));
    }
    for (let i = 0; i < count; i++) {
      const length = batch.length(i);
      if (length > buffers[i].length) this.#truncated(i, length, buffers[i].length);
      sizes[i] = length;
    }
    if (addresses !== undefined) {
      const names = batch.names;
      for (let i = 0; i < count; i++) {
        addresses[i] = this.#decoder.decode(names, batch.nameOffset(i), addresses[i]);
      }
    }
    if (segmentSizes !== undefined) {
      for (let i = 0; i < count; i++) {
        segmentSizes[i] = control === 0 ? 0 : batch.controlInt(i, SOL_UDP, UDP_GRO);
      }
    }
    return count;
  }

  #truncated(i: number, length: number, room: number): never {
    const from = this.#decoder.decode(this.#receiveBatch.names, this.#receiveBatch.nameOffset(i));
    throw new TunError({
      errno: EMSGSIZE,
      syscall: "recvmmsg",
      action: this.#action("receive on"),
      hint: `a datagram of ${length} bytes from ${formatAddress(from)} was cut to its buffer's ` +
        `${room} bytes and dropped, with the rest of the batch; use buffers of ` +
        `${this.#gro ? "65535 bytes (GRO coalesces datagrams)" : "the largest datagram's size"}`,
    });
  }

  async #whenReadable(
    attempt: () => number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<number | null> {
    while (!this.#closed) {
      if (!await this.#readiness.wait("read", signal)) break;
      const result = this.#closed ? undefined : attempt();
      if (result !== undefined) return result;
    }
    return null;
  }

  // --- Sending -------------------------------------------------------------

  /**
   * Sends every packet to `options.to` (the connected peer when omitted),
   * in order, in as few `sendmmsg` calls as the kernel allows, waiting for
   * room when the send buffer is full; resolves to the number of packets
   * (all of them). With `segmentSize`, each packet goes as a GSO train of
   * datagrams of that size. Sends queue behind earlier ones still waiting.
   * When a send fails part-way, the {@linkcode TunError} carries
   * `written`: how many packets went before (they are not sent again).
   *
   * @example Send a GSO train
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind({ hostname: "127.0.0.1" });
   * const to = { hostname: "127.0.0.1", port: 4789 };
   * await socket.sendBatch([new Uint8Array(14000)], { to, segmentSize: 1400 }); // 10 datagrams
   * ```
   */
  sendBatch(packets: Uint8Array[], options?: UdpSendOptions): Promise<number> {
    let done = 0;
    let signal: AbortSignal | undefined;
    let to: UdpAddress | undefined;
    try {
      if (options === undefined && this.#remote !== undefined) options = TO_PEER;
      if (typeof options !== "object" || options === null) {
        throw new TypeError(`Options must be an object with "to", got ${describe(options)}`);
      }
      signal = options.signal;
      checkSignal(signal);
      to = options.to;
      const family = this.#setDestination(to);
      const segmentSize = this.#checkSegmentSize(options.segmentSize);
      checkPackets(packets, family === 4 ? MAX_PAYLOAD_4 : MAX_PAYLOAD_6, segmentSize);
      if (this.#closed) throw this.#sendError(EBADF, to);
      signal?.throwIfAborted();
      if (this.#writes.idle) {
        done = this.#sendNow(packets, 0, segmentSize, to);
        if (done === packets.length) return Promise.resolve(done);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const waiting = to === undefined ? undefined : { hostname: to.hostname, port: to.port };
    const segmentSize = options.segmentSize ?? 0;
    return this.#writes.enqueue(async () => {
      while (!this.#closed) {
        // Sends called while this one waited encoded their own destinations.
        this.#setDestination(waiting);
        done = this.#sendNow(packets, done, segmentSize, waiting);
        if (done === packets.length) return done;
        if (!await this.#readiness.wait("write", signal)) break;
      }
      throw this.#sendError(EBADF, waiting, done);
    });
  }

  /**
   * Sends one datagram to `to` (the connected peer when omitted); resolves
   * to its length. For many, {@linkcode UdpSocket.sendBatch} takes one
   * system call for all.
   *
   * @example Send a greeting
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind();
   * await socket.send(new TextEncoder().encode("hello"), { hostname: "127.0.0.1", port: 4789 });
   * ```
   */
  async send(data: Uint8Array, to?: UdpAddress): Promise<number> {
    await this.sendBatch([data], to === undefined ? undefined : { to });
    return data.length;
  }

  /**
   * Sends from `start` until done or the kernel has no room; the new count done. `to`
   * undefined (the connected peer) names no address.
   */
  #sendNow(
    packets: Uint8Array[],
    start: number,
    segmentSize: number,
    to: UdpAddress | undefined,
  ): number {
    const batch = this.#sendBatch;
    // A connected socket sending to its peer names none: the kernel uses the route it keeps.
    const named = to !== undefined && !this.#isRemote(to);
    const name = named ? this.#destinationAt : 0;
    const nameLength = named ? this.#destinationLength : 0;
    const control = segmentSize === 0 ? 0 : SEGMENT_CONTROL_SPACE;
    // Rewritten on every call: a send that waited may follow one of another size.
    if (control !== 0) this.#segmentSizeData[0] = segmentSize;
    let done = start;
    while (done < packets.length) {
      const count = Math.min(packets.length - done, UIO_MAXIOV);
      batch.reserve(count);
      for (let i = 0; i < count; i++) {
        batch.setBuffer(i, packets[done + i]);
        batch.setName(i, name, nameLength);
        batch.setControl(i, this.#segmentControlAt, control);
      }
      const sent = libc().sendmmsg(this.#fd, batch.headers, count, 0);
      if (sent < 0) {
        const code = errno();
        if (code === EAGAIN || code === EINTR) break;
        throw this.#sendError(code, to, done);
      }
      // Short of count when room ran out: the next call says EAGAIN (or the error).
      done += sent;
    }
    return done;
  }

  #isRemote(to: UdpAddress): boolean {
    const remote = this.#remote;
    return remote !== undefined && to.port === remote.port && to.hostname === remote.hostname;
  }

  /**
   * Encodes `to` for the next sends unless it is the destination already; its family.
   * Undefined is the connected peer.
   */
  #setDestination(to: unknown): 4 | 6 {
    if (to === undefined && this.#remote !== undefined) return familyOf(this.#remote.hostname);
    if (typeof to !== "object" || to === null) {
      throw new TypeError(
        `Destination ("to") must be a UdpAddress${
          to === undefined ? " unless the socket is connected" : ""
        }, got ${describe(to)}`,
      );
    }
    const { hostname, port } = to as UdpAddress;
    if (hostname === this.#destinationHost && port === this.#destinationPort) {
      return familyOf(hostname);
    }
    const host: ParsedHost = parseHost(hostname, "Destination hostname");
    validatePort(port, "Destination port", 1);
    if (host.family === 6 && this.#family === 4) {
      throw new RangeError(
        `Cannot send to the IPv6 address ${hostname} from the IPv4 ${this.#description}: ` +
          `bind to "::" for both families`,
      );
    }
    this.#destinationLength = writeSockaddr(this.#destination, 0, this.#family, host, port);
    this.#destinationHost = hostname;
    this.#destinationPort = port;
    return host.family;
  }

  #checkSegmentSize(segmentSize: unknown): number {
    if (segmentSize === undefined) return 0;
    const size = validateInteger(segmentSize, "Segment size", 1, MAX_PAYLOAD_6);
    if (!support!.gso) {
      throw new TunError({
        errno: EOPNOTSUPP,
        syscall: "sendmmsg",
        action: this.#action("send a GSO train on"),
        hint: "this kernel has no UDP GSO (UDP_SEGMENT, Linux 4.18+): check socket.gso first",
      });
    }
    return size;
  }

  // --- Closing -------------------------------------------------------------

  /**
   * Closes the socket at once. Idempotent. Pending receives resolve
   * `null`; sends waiting for room reject with a {@linkcode TunError}
   * EBADF (with `written`).
   *
   * @example Stop a receive loop from elsewhere
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * const socket = UdpSocket.bind();
   * setTimeout(() => socket.close(), 1000);
   * await socket.receive(); // null after a second
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    forgotten.unregister(this);
    this.#readiness.close();
  }

  /** Calls {@linkcode UdpSocket.close}, so `using socket = …` works. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Shows the socket in `console.log`: its address, its peer when
   * connected, family, GRO and whether it is closed.
   *
   * @example Log a socket
   * ```ts ignore
   * import { UdpSocket } from "@tuntap/tuntap/udp";
   *
   * using socket = UdpSocket.bind({ hostname: "127.0.0.1" });
   * console.log(socket);
   * // UdpSocket { localAddress: "127.0.0.1:40021", family: "IPv4", gro: false, closed: false }
   * ```
   */
  [Symbol.for("Deno.customInspect")](
    inspect: typeof Deno.inspect,
    options: Deno.InspectOptions,
  ): string {
    const shown = {
      localAddress: formatAddress(this.#local),
      ...(this.#remote === undefined ? {} : { remoteAddress: formatAddress(this.#remote) }),
      family: this.#family === 4 ? "IPv4" : "IPv6 (dual-stack)",
      groEnabled: this.#gro,
      closed: this.#closed,
    };
    return `UdpSocket ${inspect(shown, options)}`;
  }

  /** SO_RCVBUF or SO_SNDBUF; never asks the kernel about a closed socket's fd number. */
  #bufferSize(which: BufferKind): number {
    const { option, name } = BUFFER_OPTIONS[which];
    const action = this.#action(`read the ${which} buffer size of`);
    if (this.#closed) throw this.#error(EBADF, `getsockopt(${name})`, action);
    return getInt(this.#fd, SOL_SOCKET, option, name, action);
  }

  #setBufferSize(which: BufferKind, size: number): void {
    const bytes = validateBufferSize(size, which);
    const action = this.#action(`set the ${which} buffer size of`);
    if (this.#closed) throw this.#error(EBADF, `setsockopt(${BUFFER_OPTIONS[which].name})`, action);
    setBufferSize(this.#fd, which, bytes, action);
  }

  #action(verb: string): string {
    return `${verb} ${this.#description}`;
  }

  #error(code: number, syscall: string, action: string): TunError {
    return new TunError({ errno: code, syscall, action, hint: this.#hint(code) });
  }

  #sendError(code: number, to: UdpAddress | undefined, written?: number): TunError {
    const before = written === undefined || written === 0
      ? ""
      : ` (${written} packets of the batch were sent before)`;
    const where = formatAddress(to ?? this.#remote!);
    return new TunError({
      errno: code,
      syscall: "sendmmsg",
      action: `send from ${this.#description} to ${where}${before}`,
      hint: this.#hint(code),
      written,
    });
  }

  #hint(code: number): string | undefined {
    if (code === EBADF) return CLOSED_HINT;
    if (code === ECONNREFUSED && this.#remote !== undefined) {
      return `nothing listened at ${formatAddress(this.#remote)} when an earlier datagram ` +
        "arrived (ICMP port unreachable); reported once, so calling again works";
    }
    return undefined;
  }
}

function localAddress(fd: number, decoder: SockaddrDecoder): UdpAddress {
  const address = new Uint8Array(sizeof_sockaddr_in6);
  const length = new Uint32Array([sizeof_sockaddr_in6]);
  check(
    libc().getsockname(fd, address, new Uint8Array(length.buffer)),
    "getsockname",
    "read the address of a UDP socket",
  );
  return decoder.decode(address, 0);
}

type BufferKind = "receive" | "send";

const BUFFER_OPTIONS = {
  receive: {
    what: "Receive buffer size",
    option: SO_RCVBUF,
    name: "SO_RCVBUF",
    force: SO_RCVBUFFORCE,
    forceName: "SO_RCVBUFFORCE",
  },
  send: {
    what: "Send buffer size",
    option: SO_SNDBUF,
    name: "SO_SNDBUF",
    force: SO_SNDBUFFORCE,
    forceName: "SO_SNDBUFFORCE",
  },
};

function validateBufferSize(size: unknown, which: BufferKind): number {
  return validateInteger(size, BUFFER_OPTIONS[which].what, 1, MAX_BUFFER_SIZE);
}

function setInt(
  fd: number,
  level: number,
  option: number,
  value: number,
  name: string,
  action: string,
): void {
  check(
    libc().setsockopt(fd, level, option, new Uint8Array(new Int32Array([value]).buffer), 4),
    `setsockopt(${name})`,
    action,
  );
}

function getInt(fd: number, level: number, option: number, name: string, action: string): number {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  check(
    libc().getsockopt(
      fd,
      level,
      option,
      new Uint8Array(value.buffer),
      new Uint8Array(length.buffer),
    ),
    `getsockopt(${name})`,
    action,
  );
  return value[0];
}

/** SO_*BUFFORCE where permitted (it passes the sysctl cap), else the capped SO_*BUF. */
function setBufferSize(fd: number, which: BufferKind, size: number, action: string): void {
  const { option, name, force, forceName } = BUFFER_OPTIONS[which];
  const value = new Uint8Array(new Int32Array([size]).buffer);
  if (libc().setsockopt(fd, SOL_SOCKET, force, value, 4) === 0) return;
  if (errno() !== EPERM) check(-1, `setsockopt(${forceName})`, action);
  check(libc().setsockopt(fd, SOL_SOCKET, option, value, 4), `setsockopt(${name})`, action);
}

function checkSignal(signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Signal must be an AbortSignal, got ${describe(signal)}`);
  }
}

function checkBuffers(buffers: unknown): asserts buffers is Uint8Array[] {
  if (!Array.isArray(buffers)) {
    throw new TypeError(`Buffers must be an array of Uint8Array, got ${describe(buffers)}`);
  }
  if (buffers.length === 0) throw new RangeError("Buffers must not be empty");
  for (let i = 0; i < buffers.length; i++) {
    const buffer = buffers[i];
    if (!(buffer instanceof Uint8Array)) {
      throw new TypeError(`Buffer ${i} must be a Uint8Array, got ${describe(buffer)}`);
    }
    if (buffer.length === 0) throw new RangeError(`Buffer ${i} must not be empty`);
  }
}

function checkSizes(sizes: unknown, count: number, what: string): void {
  if (!(sizes instanceof Uint32Array) && !Array.isArray(sizes)) {
    throw new TypeError(`${what} must be a Uint32Array or an array, got ${describe(sizes)}`);
  }
  // An array grows as values are written; a Uint32Array cannot. One call fills UIO_MAXIOV at most.
  const needed = Math.min(count, UIO_MAXIOV);
  if (sizes instanceof Uint32Array && sizes.length < needed) {
    throw new RangeError(
      `${what} must have room for ${needed} values (one per buffer), got ${sizes.length}`,
    );
  }
}

// Entries are filled once the datagrams are taken: one that cannot be would lose them.
function checkAddresses(addresses: unknown, count: number): void {
  if (!Array.isArray(addresses)) {
    throw new TypeError(`Addresses must be an array, got ${describe(addresses)}`);
  }
  const end = Math.min(addresses.length, count, UIO_MAXIOV);
  for (let i = 0; i < end; i++) {
    const address = addresses[i];
    if (address !== undefined && (typeof address !== "object" || address === null)) {
      throw new TypeError(
        `Address ${i} must be a UdpAddress to fill, or undefined, got ${describe(address)}`,
      );
    }
  }
}

function checkPackets(packets: unknown, maxPayload: number, segmentSize: number): void {
  if (!Array.isArray(packets)) {
    throw new TypeError(`Packets must be an array of Uint8Array, got ${describe(packets)}`);
  }
  const max = segmentSize === 0 ? maxPayload : Math.min(maxPayload, segmentSize * UDP_MAX_SEGMENTS);
  for (let i = 0; i < packets.length; i++) {
    const packet = packets[i];
    if (!(packet instanceof Uint8Array)) {
      throw new TypeError(`Packet ${i} must be a Uint8Array, got ${describe(packet)}`);
    }
    if (packet.length > max) {
      throw new RangeError(
        `Packet ${i} must be at most ${max} bytes long` +
          (segmentSize === 0
            ? " (the largest UDP payload)"
            : ` (${UDP_MAX_SEGMENTS} segments of ${segmentSize} bytes, within the largest ` +
              "UDP payload)") +
          `, got ${packet.length}`,
      );
    }
  }
}
