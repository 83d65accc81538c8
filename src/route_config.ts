/**
 * Main-table unicast routes through a device: parsed and checked before any
 * syscall, then added, removed and listed with `RTM_NEWROUTE`,
 * `RTM_DELROUTE` and `RTM_GETROUTE` dumps.
 *
 * @module
 */
import { AF_INET, AF_INET6 } from "../ffi/constants.ts";
import { EEXIST, EHOSTUNREACH, ENETDOWN, ENETUNREACH } from "../ffi/errno.ts";
import {
  decode_rtmsg,
  decode_rtvia,
  encode_rtmsg,
  get_u32,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_PRIORITY,
  RTA_TABLE,
  RTA_VIA,
  type rtattr,
  rtattrs,
  RTM_DELROUTE,
  RTM_F_CLONED,
  RTM_GETROUTE,
  RTM_NEWROUTE,
  RTN_UNICAST,
  RTPROT_BOOT,
  sizeof_rtmsg,
  u32,
} from "../ffi/netlink.ts";
import { formatIp, parseCidr, parseIp } from "../packet/address.ts";
import { U32_MAX } from "./link_config.ts";
import { type Link, netlinkDump, netlinkRequest } from "./netlink.ts";
import { describe, validateInteger } from "./validate.ts";

// <errno.h>: what both IPv4 and IPv6 answer for removing a route that is not there.
const ESRCH = 3;

/**
 * Options for {@linkcode TunInterface.addRoute} and {@linkcode TunInterface.removeRoute}.
 *
 * @example A default route through a gateway, below another one
 * ```ts ignore
 * import { TunInterface } from "@tuntap/tuntap";
 *
 * using tun = TunInterface.open({ addresses: ["192.0.2.1/24"], up: true });
 * tun.addRoute("0.0.0.0/0", { via: "192.0.2.254", metric: 500 });
 * ```
 */
export interface TunRouteOptions {
  /** The gateway, on a network of the device, e.g. `"192.0.2.254"`. Same family as the route. */
  via?: string;
  /**
   * The route's priority, lower wins: 0 to 4294967295. Omitted when adding,
   * the kernel's default (0 for IPv4, 1024 for IPv6); omitted when removing,
   * any.
   */
  metric?: number;
}

/**
 * A route through the device, as {@linkcode TunInterface.routes} lists it
 * and the `routes` option of {@linkcode TunInterface.open} takes it.
 *
 * @example Find the default route
 * ```ts ignore
 * import { TunInterface } from "@tuntap/tuntap";
 *
 * using tun = TunInterface.open({
 *   addresses: ["192.0.2.1/24"],
 *   routes: [{ destination: "0.0.0.0/0", via: "192.0.2.254" }],
 *   up: true,
 * });
 * const gateway = tun.routes().find((route) => route.destination === "0.0.0.0/0")?.via;
 * ```
 */
export interface TunRoute extends TunRouteOptions {
  /** The destination network in CIDR form, e.g. `"198.51.100.0/24"` or `"::/0"`. */
  destination: string;
}

/** A route parsed and checked, ready for the kernel. */
export interface RouteSpec {
  /** 4 for IPv4, 6 for IPv6. */
  family: 4 | 6;
  /** The destination network address. */
  destination: Uint8Array;
  /** The destination prefix length. */
  prefixLength: number;
  /** The gateway. */
  via?: Uint8Array;
  /** The metric. */
  metric?: number;
  /** E.g. `"198.51.100.0/24 via 192.0.2.254 metric 10"`, for messages. */
  text: string;
}

/**
 * Parses a route: `cidr` (a host route without a prefix: /32 or /128) and
 * its options. Host bits set under the prefix are refused rather than
 * masked, since the kernel refuses them for IPv4 and masks them for IPv6.
 */
export function parseRoute(cidr: string, options: TunRouteOptions = {}): RouteSpec {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Route options must be an object, got ${describe(options)}`);
  }
  const { address, prefixLength, family } = parseCidr(cidr);
  const network = address.map((byte, i) => {
    const bits = Math.min(Math.max(prefixLength - 8 * i, 0), 8);
    return byte & (0xff00 >> bits);
  });
  if (network.some((byte, i) => byte !== address[i])) {
    throw new RangeError(
      `Route destination "${cidr}" has host bits set under its /${prefixLength} prefix; ` +
        `the network is ${formatIp(network)}/${prefixLength}`,
    );
  }
  let text = `${formatIp(address)}/${prefixLength}`;
  let via: Uint8Array | undefined;
  if (options.via !== undefined) {
    via = parseIp(options.via);
    if (via.length !== address.length) {
      throw new TypeError(
        `Gateway "${options.via}" is an IPv${via.length === 4 ? 4 : 6} address ` +
          `but route "${cidr}" is IPv${family}; they must be of the same family`,
      );
    }
    text += ` via ${formatIp(via)}`;
  }
  const metric = options.metric === undefined
    ? undefined
    : validateInteger(options.metric, "Route metric", 0, U32_MAX);
  if (metric !== undefined) text += ` metric ${metric}`;
  return { family, destination: address, prefixLength, via, metric, text };
}

/**
 * Parses an entry of the `routes` open option: a CIDR string or
 * `{ destination, via?, metric? }`.
 */
export function parseRouteEntry(entry: unknown): RouteSpec {
  if (typeof entry === "string") return parseRoute(entry);
  if (typeof entry === "object" && entry !== null && "destination" in entry) {
    const { destination, via, metric } = entry as TunRoute;
    return parseRoute(destination, { via, metric });
  }
  throw new TypeError(
    `Each route must be a CIDR string or { destination, via?, metric? }, got ${describe(entry)}`,
  );
}

function routeMessage(link: Link, route: RouteSpec, adding: boolean) {
  const attributes: rtattr[] = [{ type: RTA_OIF, data: u32(link.index) }];
  if (route.prefixLength > 0) attributes.push({ type: RTA_DST, data: route.destination });
  if (route.via) attributes.push({ type: RTA_GATEWAY, data: route.via });
  if (route.metric !== undefined) {
    attributes.push({ type: RTA_PRIORITY, data: u32(route.metric) });
  }
  return {
    body: encode_rtmsg({
      family: route.family === 4 ? AF_INET : AF_INET6,
      dst_len: route.prefixLength,
      table: RT_TABLE_MAIN,
      // As `ip route add` does: "proto boot", and a route without a gateway
      // is link-scoped. Removing matches any protocol and scope.
      protocol: adding ? RTPROT_BOOT : 0,
      scope: !adding ? RT_SCOPE_NOWHERE : route.via ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
      type: RTN_UNICAST,
      flags: 0,
    }),
    attributes,
  };
}

/** Adds a main-table route through the device; fails with EEXIST if the table has it. */
export function addRoute(link: Link, route: RouteSpec): void {
  const offLink = route.via &&
    `the gateway ${formatIp(route.via)} is not on a network of the device: ` +
      `add an address whose prefix covers it, and bring the device up, first`;
  netlinkRequest({
    link,
    type: RTM_NEWROUTE,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    ...routeMessage(link, route, true),
    action: `add route ${route.text} to ${link.device}`,
    hints: {
      [EEXIST]: "the main table already has a route to this destination with this metric",
      [ENETUNREACH]: offLink,
      [EHOSTUNREACH]: offLink,
      [ENETDOWN]: "the device is down: bring it up before adding routes through it",
    },
  });
}

/** Removes a main-table route through the device. */
export function removeRoute(link: Link, route: RouteSpec): void {
  netlinkRequest({
    link,
    type: RTM_DELROUTE,
    ...routeMessage(link, route, false),
    action: `remove route ${route.text} from ${link.device}`,
    hints: { [ESRCH]: "the main table has no such route through the device" },
  });
}

/** The main table's unicast routes whose output device is this one, IPv4 first. */
export function listRoutes(link: Link): TunRoute[] {
  const routes: TunRoute[] = [];
  for (const family of [AF_INET, AF_INET6]) {
    const messages = netlinkDump({
      link,
      type: RTM_GETROUTE,
      // With strict checking the kernel filters by table, type and device;
      // the checks below are for kernels that send every route.
      body: encode_rtmsg({
        family,
        dst_len: 0,
        table: RT_TABLE_MAIN,
        protocol: 0,
        scope: 0,
        type: RTN_UNICAST,
        flags: 0,
      }),
      attributes: [{ type: RTA_OIF, data: u32(link.index) }],
      action: `list the IPv${family === AF_INET ? 4 : 6} routes of ${link.device}`,
    });
    for (const { type, payload } of messages) {
      if (type !== RTM_NEWROUTE) continue;
      const header = decode_rtmsg(payload);
      const attributes = rtattrs(payload, sizeof_rtmsg);
      const number = (type: number) => {
        const data = attributes.get(type);
        return data === undefined ? undefined : get_u32(data);
      };
      if (
        header.family !== family || header.type !== RTN_UNICAST ||
        header.flags & RTM_F_CLONED ||
        (number(RTA_TABLE) ?? header.table) !== RT_TABLE_MAIN ||
        number(RTA_OIF) !== link.index
      ) continue;
      const destination = attributes.get(RTA_DST) ??
        new Uint8Array(family === AF_INET ? 4 : 16);
      const route: TunRoute = { destination: `${formatIp(destination)}/${header.dst_len}` };
      const via = attributes.get(RTA_VIA);
      const gateway = attributes.get(RTA_GATEWAY) ?? (via && decode_rtvia(via).address);
      if (gateway) route.via = formatIp(gateway);
      const metric = number(RTA_PRIORITY);
      if (metric !== undefined) route.metric = metric;
      routes.push(route);
    }
  }
  return routes;
}
