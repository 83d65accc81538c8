/**
 * Network namespaces other than the program's: a device is created in the
 * namespace of the thread that attaches it, and a socket answers about the
 * namespace of the thread that created it. So the JavaScript thread enters
 * the target namespace with `setns()` for the few synchronous calls that
 * must happen there and always returns before any other JavaScript runs;
 * configuration afterwards goes through a netlink socket opened there once
 * and kept for the process's life.
 *
 * @module
 */
import { CLONE_NEWNET, O_CLOEXEC, O_RDONLY } from "../ffi/constants.ts";
import { EINVAL, ENOENT } from "../ffi/errno.ts";
import { cstring, libc } from "../ffi/libc.ts";
import { openNetlinkSocket, withNetlinkSocket } from "./netlink.ts";
import { check } from "./syscall.ts";
import { describe } from "./validate.ts";

/** Where a function that reads or removes devices by name looks. */
export interface TunNetnsOptions {
  /** A network namespace other than the program's: a name under `/run/netns` or an fd. */
  netns?: TunNetns;
}

/**
 * A network namespace: a name under `/run/netns` (as `ip netns add`
 * creates), or an open fd of a namespace (of `/proc/PID/ns/net`, say),
 * which stays the caller's to close.
 */
export type TunNetns = string | number;

// The rtnetlink socket of each namespace used so far, by the namespace's
// identity ("net:[4026532301]", the link /proc shows for an fd of it), so
// that a name made again or an fd number reused finds its own namespace.
// Each socket keeps its namespace alive for the process's life.
const sockets = new Map<string, number>();
// An fd of each of those namespaces, by the socket's fd, to enter it again
// for what must be made there (a watch's socket) knowing only the socket.
const namespaces = new Map<number, number>();
const decoder = new TextDecoder();

/** Checks a {@linkcode TunNetns} option, throwing a TypeError or RangeError. */
export function validateNetns(netns: unknown, what = "netns"): TunNetns {
  if (typeof netns === "number") {
    if (!Number.isInteger(netns) || netns < 0 || netns > 0x7fffffff) {
      throw new RangeError(`${what} must be a namespace name or an fd, got ${netns}`);
    }
    return netns;
  }
  if (typeof netns !== "string") {
    throw new TypeError(`${what} must be a namespace name or an fd, got ${describe(netns)}`);
  }
  if (
    netns === "" || netns === "." || netns === ".." || netns.includes("/") || netns.length > 255
  ) {
    throw new RangeError(
      `${what} "${netns}" is not a namespace name: a name under /run/netns, as ip netns add makes`,
    );
  }
  return netns;
}

/**
 * Runs `call` (which addresses devices by name or lists them) with the
 * netlink socket of `options.netns`, when given, as the socket of its
 * requests. No `setns()`: a socket answers about its own namespace.
 */
export function inNamespace<T>(options: TunNetnsOptions, action: string, call: () => T): T {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Options must be an object, got ${describe(options)}`);
  }
  if (options.netns === undefined) return call();
  const netns = validateNetns(options.netns);
  return withNetlinkSocket(netnsSocket(netns, `${action} in ${describeNetns(netns)}`), call);
}

/** `network namespace "blue"` or `network namespace fd 5`, for messages. */
export function describeNetns(netns: TunNetns): string {
  return typeof netns === "number"
    ? `network namespace fd ${netns}`
    : `network namespace "${netns}"`;
}

/**
 * Runs `call` on the JavaScript thread inside `netns`, with that
 * namespace's netlink socket as the socket of requests that name none, and
 * returns to the thread's own namespace afterwards, also when `call`
 * throws. `call` must be synchronous: JavaScript that ran later would run
 * in the wrong namespace.
 */
export function inNetns<T>(netns: TunNetns, action: string, call: () => T): T {
  return withNetnsFd(netns, action, (target) => {
    const socket = socketOf(netns, target, action);
    return entered(netns, target, action, () => withNetlinkSocket(socket, call));
  });
}

/**
 * Runs `call` as {@linkcode inNetns} does, in the namespace whose netlink
 * socket (from {@linkcode netnsSocket}) is `socket`.
 */
export function inNetnsOf<T>(socket: number, action: string, call: () => T): T {
  const target = namespaces.get(socket);
  if (target === undefined) {
    throw new RangeError(`fd ${socket} is not a namespace's netlink socket`);
  }
  return entered(target, target, action, () => withNetlinkSocket(socket, call));
}

/** The rtnetlink socket of `netns`, opened there on first use. */
export function netnsSocket(netns: TunNetns, action: string): number {
  return withNetnsFd(netns, action, (target) => socketOf(netns, target, action));
}

function socketOf(netns: TunNetns, target: number, action: string): number {
  const link = new Uint8Array(64);
  const length = check(
    libc().readlink(cstring(`/proc/self/fd/${target}`), link, BigInt(link.length)),
    "readlink(/proc/self/fd)",
    action,
    { [ENOENT]: `fd ${target} is not open` },
  );
  const key = decoder.decode(link.subarray(0, length));
  let fd = sockets.get(key);
  if (fd === undefined) {
    fd = entered(netns, target, action, () => openNetlinkSocket(action));
    sockets.set(key, fd);
    namespaces.set(
      fd,
      check(
        libc().open(cstring(`/proc/self/fd/${target}`), O_RDONLY | O_CLOEXEC, 0),
        "open(/proc/self/fd)",
        action,
      ),
    );
  }
  return fd;
}

/**
 * Opens `netns` for `setns()`/`IFLA_NET_NS_FD`, runs `use` with the fd and
 * closes it again when this call opened it.
 */
export function withNetnsFd<T>(netns: TunNetns, action: string, use: (fd: number) => T): T {
  if (typeof netns === "number") return use(netns);
  const fd = check(
    libc().open(cstring(`/run/netns/${netns}`), O_RDONLY | O_CLOEXEC, 0),
    `open(/run/netns/${netns})`,
    action,
    { [ENOENT]: `there is no network namespace "${netns}" (ip netns add ${netns} makes one)` },
  );
  try {
    return use(fd);
  } finally {
    libc().close(fd);
  }
}

function entered<T>(netns: TunNetns, target: number, action: string, call: () => T): T {
  const home = check(
    libc().open(cstring("/proc/thread-self/ns/net"), O_RDONLY | O_CLOEXEC, 0),
    "open(/proc/thread-self/ns/net)",
    action,
  );
  try {
    check(libc().setns(target, CLONE_NEWNET), "setns(CLONE_NEWNET)", action, {
      [EINVAL]: `${describeNetns(netns)} is not a network namespace`,
    });
    try {
      return call();
    } finally {
      // Entering the namespace we were in cannot fail short of the kernel
      // running out of memory; staying in the wrong one would be worse
      // than stopping, so it is not swallowed.
      check(
        libc().setns(home, CLONE_NEWNET),
        "setns(CLONE_NEWNET)",
        "return to the program's network namespace",
      );
    }
  } finally {
    libc().close(home);
  }
}
