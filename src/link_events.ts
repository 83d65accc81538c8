/**
 * Link events: an rtnetlink socket in the link group (`RTMGRP_LINK`) whose
 * `RTM_NEWLINK` and `RTM_DELLINK` messages become "added", "changed" and
 * "removed" events.
 *
 * The socket is non-blocking and waits like a device does: reads are
 * synchronous `recv` calls until EAGAIN, and only then does the watch wait,
 * in the isolate's one epoll poll ({@linkcode Readiness}), so no pool thread
 * is ever parked in a `recv`.
 *
 * Right after binding, before it returns, the watch dumps every link (on the
 * process's configuration socket, synchronously): that tells which links
 * existed when the watch began (they are not news) and which indexes are
 * TUN/TAP devices, since an `RTM_DELLINK` may come without the link info
 * that says so. The dump cannot be read from the watch's own socket: the
 * kernel builds a dump a batch at a time as it is read, so its entries
 * would describe links later than group messages queued after them. A
 * socket whose queue overflowed (ENOBUFS: the kernel dropped messages)
 * reads what is still queued, dumps again and reports what changed.
 *
 * @module
 */
import { AF_NETLINK, MSG_TRUNC, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_RAW } from "../ffi/constants.ts";
import { EAGAIN, EINTR, ENOBUFS, errno } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { nlmsghdrs, RTM_DELLINK, RTM_NEWLINK, sizeof_sockaddr_nl } from "../ffi/netlink.ts";
import { RTMGRP_LINK, SOCK_NONBLOCK, sockaddr_nl_groups } from "../ffi/netlink_multicast.ts";
import { decodeLink, type LinkInfo, listLinks } from "./link_config.ts";
import { SocketStream } from "./socket_stream.ts";
import { inNetnsOf, netnsSocket, type TunNetns, validateNetns } from "./netns.ts";
import { withNetlinkSocket } from "./netlink.ts";
import { check } from "./syscall.ts";
import { TunError } from "./tun_error.ts";
import { validateInteger, validateOptionalBoolean } from "./validate.ts";

/** One change of a link, as {@linkcode watchLinks} reports it. */
export interface TunLinkEvent {
  /**
   * `"added"`: the link appeared after the watch began; `"changed"`: its
   * name, administrative state, carrier or MTU changed; `"removed"`: it was
   * deleted (the other fields are its last state).
   */
  kind: "added" | "changed" | "removed";
  /** The interface name. */
  name: string;
  /** The interface index. */
  index: number;
  /** Whether it is administratively up (`IFF_UP`). */
  up: boolean;
  /** Whether it has a carrier (for a TUN/TAP device: a program has it attached). */
  carrier: boolean;
  /** The MTU. */
  mtu: number;
}

/** Options for {@linkcode watchLinks}. */
export interface WatchLinksOptions {
  /** Aborting ends the watch: the pending step rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Report every link (veth, bridges, `lo`…), not just TUN/TAP devices. Default `false`. */
  all?: boolean;
  /**
   * Watch a network namespace other than the program's: a name under
   * `/run/netns` or an fd of a namespace. Default: the program's own.
   */
  netns?: TunNetns;
}

/** Options for {@linkcode watchLinkEvents}. */
export interface WatchLinkEventsOptions {
  /** Aborting ends the watch: the pending step rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * The netlink socket of the namespace the link is in (from
   * `netnsSocket()`). Default: the program's own namespace.
   */
  netlink?: number;
}

type LinkState = Omit<TunLinkEvent, "kind">;

// Which links a watch reports: one index, every link, or TUN/TAP devices.
type Scope = { index: number } | { all: boolean };

const ACTION = "watch link events";
// The kernel fills a dump datagram up to about 32 KiB, and one event is a
// few KiB; MSG_TRUNC tells a datagram that did not fit anyway.
const RECV_BUFFER_SIZE = 64 * 1024;
// Shared: a watch decodes what it received before it next yields.
const recvBuffer = new Uint8Array(RECV_BUFFER_SIZE);

/**
 * The link changes of this network namespace as they happen: for every
 * TUN/TAP device (or, with `all: true`, every link) `"added"` when it
 * appears, `"changed"` when its name, administrative state, carrier or MTU
 * changes (the kernel's many other link messages are left out), and
 * `"removed"` when it is deleted. Links that exist when the watch begins
 * are not reported until they change.
 *
 * The watch holds a netlink socket until it ends: when the loop breaks
 * (`return()`), or when the signal is aborted, which also rejects the
 * pending step with the signal's reason. Needs only `--allow-ffi`; no
 * privilege.
 *
 * @example Log TUN/TAP devices coming and going for a minute
 * ```ts ignore
 * import { watchLinks } from "@tuntap/tuntap";
 *
 * try {
 *   for await (const event of watchLinks({ signal: AbortSignal.timeout(60_000) })) {
 *     const state = `${event.up ? "up" : "down"}, ${event.carrier ? "carrier" : "no carrier"}`;
 *     console.log(`${event.kind} ${event.name} (#${event.index}): ${state}, MTU ${event.mtu}`);
 *   }
 * } catch (error) {
 *   if ((error as DOMException).name !== "TimeoutError") throw error;
 * }
 * ```
 */
export function watchLinks(options: WatchLinksOptions = {}): AsyncIterableIterator<TunLinkEvent> {
  const all = validateOptionalBoolean(options.all, "The all option") ?? false;
  const netlink = options.netns === undefined
    ? undefined
    : netnsSocket(validateNetns(options.netns), ACTION);
  return new LinkWatch({ all }, options.signal, netlink).stream.iterator();
}

/**
 * The events of one link, by index, as {@linkcode watchLinks} reports them,
 * ending after its `"removed"` event. If no link has that index when the
 * watch begins, it ends at once without an event. Ending and aborting work
 * as for {@linkcode watchLinks}.
 *
 * @example Wait until a device loses its carrier
 * ```ts ignore
 * import { watchLinkEvents } from "./link_events.ts";
 *
 * declare const index: number;
 * for await (const event of watchLinkEvents(index)) {
 *   if (!event.carrier) break;
 * }
 * ```
 */
export function watchLinkEvents(
  index: number,
  options: WatchLinkEventsOptions = {},
): AsyncIterableIterator<TunLinkEvent> {
  validateInteger(index, "Interface index", 1, 0x7fffffff);
  return new LinkWatch({ index }, options.signal, options.netlink).stream.iterator();
}

class LinkWatch {
  readonly #fd: number;
  readonly stream: SocketStream<TunLinkEvent>;
  readonly #scope: Scope;
  // The configuration socket of the watched namespace; undefined: the program's.
  readonly #netlink?: number;
  // The links being followed, by index, as last reported.
  readonly #links = new Map<number, LinkState>();
  // The kernel dropped messages since the queue was last empty.
  #overflowed = false;

  constructor(scope: Scope, signal: AbortSignal | undefined, netlink?: number) {
    // A socket hears the namespace it was made in: make it there.
    const open = () =>
      check(
        libc().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE),
        "socket(AF_NETLINK)",
        ACTION,
      );
    const fd = netlink === undefined ? open() : inNetnsOf(netlink, ACTION, open);
    try {
      const address = sockaddr_nl_groups(RTMGRP_LINK);
      check(libc().bind(fd, address, sizeof_sockaddr_nl), "bind(netlink)", ACTION);
    } catch (error) {
      libc().close(fd);
      throw error;
    }
    this.#fd = fd;
    this.#scope = scope;
    this.#netlink = netlink;
    this.stream = new SocketStream(fd, () => "the link event socket", signal, {
      receive: () => this.#receive(),
    });
    try {
      this.#resync(true);
    } catch (error) {
      this.stream.close();
      throw error;
    }
    // Nothing will ever happen to a link that is not there.
    if ("index" in scope && !this.#links.has(scope.index)) this.stream.close();
  }

  /** Reads and decodes every queued datagram, until EAGAIN or the watch ends. */
  #receive(): void {
    while (!this.stream.closed) {
      const length = Number(libc().recv(this.#fd, recvBuffer, BigInt(RECV_BUFFER_SIZE), MSG_TRUNC));
      if (length < 0) {
        const code = errno();
        if (code === EINTR) continue;
        if (code === ENOBUFS) {
          this.#overflowed = true;
          continue;
        }
        if (code !== EAGAIN) {
          throw new TunError({ errno: code, syscall: "recv(netlink)", action: ACTION });
        }
        // The messages that were queued are read: the dump is newer than all of them.
        if (!this.#overflowed) return;
        this.#overflowed = false;
        this.#resync(false);
        continue;
      }
      // Cut short, it is as lost as a dropped message.
      if (length > RECV_BUFFER_SIZE) {
        this.#overflowed = true;
        continue;
      }
      for (const message of nlmsghdrs(recvBuffer.subarray(0, length))) {
        if (this.stream.closed) return;
        if (message.type === RTM_NEWLINK) this.#updated(decodeLink(message.payload), false);
        else if (message.type === RTM_DELLINK) this.#removed(decodeLink(message.payload));
      }
    }
  }

  /**
   * Learns every link from a dump on the process's netlink socket: at the
   * start, the links that are not news; after an overflow, what changed
   * while the kernel was dropping messages.
   */
  #resync(baseline: boolean): void {
    const listed = new Set<number>();
    const links = this.#netlink === undefined
      ? listLinks(ACTION)
      : withNetlinkSocket(this.#netlink, () => listLinks(ACTION));
    for (const link of links) {
      listed.add(link.index);
      this.#updated(link, baseline);
    }
    if (baseline) return;
    // Deleted while the kernel was dropping messages.
    for (const [index, state] of this.#links) {
      if (listed.has(index)) continue;
      this.#links.delete(index);
      this.#emit("removed", state);
    }
  }

  #follows(link: LinkInfo): boolean {
    const scope = this.#scope;
    if ("index" in scope) return link.index === scope.index;
    return scope.all || link.kind === "tun";
  }

  #updated(link: LinkInfo, baseline: boolean): void {
    const known = this.#links.get(link.index);
    if (!known && !this.#follows(link)) return;
    const state: LinkState = {
      name: link.name,
      index: link.index,
      up: link.up,
      carrier: link.carrier,
      mtu: link.mtu,
    };
    this.#links.set(link.index, state);
    if (!known) {
      if (!baseline) this.#emit("added", state);
    } else if (
      known.name !== state.name || known.up !== state.up || known.carrier !== state.carrier ||
      known.mtu !== state.mtu
    ) {
      this.#emit("changed", state);
    }
  }

  #removed(link: LinkInfo): void {
    const known = this.#links.get(link.index);
    // A TUN/TAP device's RTM_DELLINK may lack the link info: go by the index.
    if (!known) return;
    this.#links.delete(link.index);
    this.#emit("removed", { ...known, up: link.up, carrier: link.carrier });
  }

  #emit(kind: TunLinkEvent["kind"], state: LinkState): void {
    this.stream.queue.push({ kind, ...state });
    // One link's watch ends with its removal; the socket goes at once.
    if (kind === "removed" && "index" in this.#scope) this.stream.close();
  }
}
