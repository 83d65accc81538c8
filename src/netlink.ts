/**
 * The rtnetlink transport: one `NETLINK_ROUTE` socket per process, opened on
 * first use (close-on-exec), a socket of another network namespace where a
 * {@linkcode Link} or {@linkcode withNetlinkSocket} names one, and the two exchanges every configuration call
 * is made of: a request answered by an ACK, and a dump read until
 * `NLMSG_DONE`. A kernel refusal becomes a {@linkcode TunError} here and
 * nowhere else.
 *
 * @module
 */
import {
  AF_NETLINK,
  MSG_TRUNC,
  NETLINK_ROUTE,
  SO_RCVTIMEO,
  SOCK_CLOEXEC,
  SOCK_RAW,
  SOL_SOCKET,
} from "../ffi/constants.ts";
import { EBADF, EMSGSIZE } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import {
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_GET_STRICT_CHK,
  type NetlinkMessage,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  nlmsg,
  NLMSG_DONE,
  NLMSG_ERROR,
  nlmsg_status,
  nlmsghdrs,
  type rtattr,
  rtmName,
  sizeof_sockaddr_nl,
  sockaddr_nl,
  SOL_NETLINK,
  u32,
} from "../ffi/netlink.ts";
import { check, type Hints } from "./syscall.ts";
import { TunError } from "./tun_error.ts";

/** The device a request is about, addressed by index so a rename does not matter. */
export interface Link {
  /** The interface index. */
  readonly index: number;
  /** `TUN device "tun0"`, for messages. */
  readonly device: string;
  /** Once the handle is closed, requests fail with EBADF instead of acting on the index. */
  readonly closed: boolean;
  /**
   * Throws (a {@linkcode TunError} `ENODEV`) unless `index` still names the
   * handle's device; called before every request. An index outlives its
   * device and the kernel hands it to the next one, so a handle whose device
   * was deleted would otherwise configure a stranger.
   */
  readonly verify?: (syscall: string, action: string) => void;
  /**
   * The rtnetlink socket of the device's network namespace, when that is not
   * the process's (a socket answers about the namespace it was created in).
   */
  readonly netlink?: number;
}

/** One rtnetlink request: the message and what to say when it fails. */
export interface NetlinkRequest {
  /** The device; a closed one makes the request fail before any syscall. */
  link: Link;
  /** `nlmsg_type`, e.g. `RTM_NEWADDR`. */
  type: number;
  /** Flags besides `NLM_F_REQUEST` and `NLM_F_ACK`/`NLM_F_DUMP`, e.g. `NLM_F_CREATE`. */
  flags?: number;
  /** The family header: `ifinfomsg`, `ifaddrmsg` or `rtmsg`. */
  body: Uint8Array;
  /** Attributes after the family header. */
  attributes?: readonly rtattr[];
  /** Completes "Cannot …", e.g. `add address 192.0.2.1/24 to TUN device "tun0"`. */
  action: string;
  /** Hints by errno for refusals whose default hint would not say enough. */
  hints?: Hints;
}

// Large enough for any reply about one TUN/TAP device and for the kernel's
// dump batches (it fills at most about 32 KiB per datagram).
const RECV_BUFFER_SIZE = 64 * 1024;
// The kernel answers at once; the timeout only keeps a kernel bug from
// blocking the JavaScript thread forever.
const RECV_TIMEOUT_SECONDS = 5n;
// A dump the kernel flags as interrupted (the table changed under it) is
// retried; the last attempt's result is taken as it is, as `ip` does.
const DUMP_ATTEMPTS = 4;

let socketFd: number | undefined;
let lastSeq = 0;
const recvBuffer = new Uint8Array(RECV_BUFFER_SIZE);
const kernel = sockaddr_nl(AF_NETLINK);

// Set while a call runs on behalf of another network namespace.
let scopedFd: number | undefined;

/**
 * Opens a `NETLINK_ROUTE` socket in the calling thread's network namespace,
 * set up as every configuration socket is.
 */
export function openNetlinkSocket(action: string | (() => string)): number {
  const fd = check(
    libc().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE),
    "socket(AF_NETLINK)",
    action,
  );
  // All best-effort: each only improves on behaviour that is correct without
  // it on kernels too old to know it. Extended acks carry the kernel's own
  // explanation; capped acks spare echoing the request; strict checking lets
  // the kernel filter dumps by device instead of sending every entry.
  const one = u32(1);
  libc().setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
  libc().setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
  libc().setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, one, 4);
  // struct timeval { time_t tv_sec; suseconds_t tv_usec; } on 64-bit Linux
  const timeout = new BigInt64Array([RECV_TIMEOUT_SECONDS, 0n]);
  libc().setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, new Uint8Array(timeout.buffer), 16);
  return fd;
}

/**
 * Runs `call` with `fd` as the socket of every request whose link names
 * none: the functions that address devices by name (listing, reading by
 * name) then answer about the namespace `fd` was created in.
 */
export function withNetlinkSocket<T>(fd: number, call: () => T): T {
  const outer = scopedFd;
  scopedFd = fd;
  try {
    return call();
  } finally {
    scopedFd = outer;
  }
}

function openSocket(request: NetlinkRequest): number {
  const chosen = request.link.netlink ?? scopedFd;
  if (chosen !== undefined) return chosen;
  socketFd ??= openNetlinkSocket(request.action);
  return socketFd;
}

/**
 * Sends `request` and reads its replies until the kernel ends them: the
 * ACK (or refusal) of a plain request, `NLMSG_DONE` of a dump. Returns the
 * reply messages before the end, with payloads copied out of the buffer.
 */
function exchange(
  request: NetlinkRequest,
  flags: number,
): { replies: NetlinkMessage[]; interrupted: boolean } {
  const syscall = `netlink(${rtmName(request.type)})`;
  if (request.link.closed) {
    throw new TunError({ errno: EBADF, syscall, action: request.action });
  }
  request.link.verify?.(syscall, request.action);
  const fd = openSocket(request);
  lastSeq = (lastSeq + 1) >>> 0 || 1;
  const seq = lastSeq;
  const message = nlmsg(
    { type: request.type, flags: NLM_F_REQUEST | flags | (request.flags ?? 0), seq },
    request.body,
    request.attributes,
  );
  check(
    libc().sendto(fd, message, BigInt(message.length), 0, kernel, sizeof_sockaddr_nl),
    "sendto(netlink)",
    request.action,
  );
  const replies: NetlinkMessage[] = [];
  let interrupted = false;
  while (true) {
    // MSG_TRUNC makes recv return the datagram's real length, so a reply
    // that did not fit is an error rather than silently cut short.
    const length = check(
      libc().recv(fd, recvBuffer, BigInt(RECV_BUFFER_SIZE), MSG_TRUNC),
      "recv(netlink)",
      request.action,
    );
    if (length > RECV_BUFFER_SIZE) {
      throw new TunError({
        errno: EMSGSIZE,
        syscall,
        action: request.action,
        hint:
          `the kernel's reply of ${length} bytes is larger than the ${RECV_BUFFER_SIZE}-byte buffer`,
      });
    }
    for (const reply of nlmsghdrs(recvBuffer.subarray(0, length))) {
      // Leftovers of an earlier exchange that was abandoned halfway.
      if (reply.seq !== seq) continue;
      if (reply.flags & NLM_F_DUMP_INTR) interrupted = true;
      if (reply.type === NLMSG_ERROR || reply.type === NLMSG_DONE) {
        const { error, text } = nlmsg_status(reply);
        if (error < 0) throw refusal(request, syscall, -error, text);
        return { replies, interrupted };
      }
      replies.push({ ...reply, payload: reply.payload.slice() });
    }
  }
}

function refusal(
  request: NetlinkRequest,
  syscall: string,
  errno: number,
  text: string | undefined,
): TunError {
  const hint = request.hints?.[errno];
  const kernelSays = text ? `the kernel says "${text}"` : undefined;
  return new TunError({
    errno,
    syscall,
    action: request.action,
    hint: hint && kernelSays ? `${hint} (${kernelSays})` : hint ?? kernelSays,
  });
}

/**
 * Sends a request with `NLM_F_ACK` and waits for the kernel's answer;
 * returns the messages it sent before the ACK (the link for `RTM_GETLINK`,
 * none for changes). A refusal throws a {@linkcode TunError} with its errno.
 */
export function netlinkRequest(request: NetlinkRequest): NetlinkMessage[] {
  return exchange(request, NLM_F_ACK).replies;
}

/** Sends a dump request and returns every message of the multi-part reply. */
export function netlinkDump(request: NetlinkRequest): NetlinkMessage[] {
  for (let attempt = 1;; attempt++) {
    const { replies, interrupted } = exchange(request, NLM_F_DUMP);
    if (!interrupted || attempt === DUMP_ATTEMPTS) return replies;
  }
}
