/**
 * The configuration options of {@linkcode TunInterface.open}: all parsed
 * before the device is touched, applied after the attach, and undone if a
 * step fails.
 *
 * @module
 */
import {
  addAddress,
  type InterfaceAddress,
  parseAddressEntry,
  removeAddress,
} from "./address_config.ts";
import { readLink, setMtu, setUp, validateMtu } from "./link_config.ts";
import type { Link } from "./netlink.ts";
import { addRoute, parseRouteEntry, removeRoute, type RouteSpec } from "./route_config.ts";
import { describe, validateOptionalBoolean } from "./validate.ts";

/** The configuration options, parsed and checked. */
export interface OpenConfig {
  /** Addresses to add. */
  addresses: InterfaceAddress[];
  /** Routes to add. */
  routes: RouteSpec[];
  /** The MTU to set. */
  mtu?: number;
  /** `true` brings the device up, `false` down. */
  up?: boolean;
}

/** The open options this module reads, unchecked. */
export interface OpenConfigOptions {
  /** Address entries. */
  addresses?: unknown;
  /** Route entries. */
  routes?: unknown;
  /** The MTU. */
  mtu?: unknown;
  /** The link state. */
  up?: unknown;
}

function entries(value: unknown, what: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new TypeError(`${what} must be an array, got ${describe(value)}`);
  }
  return value;
}

/** Parses and checks every configuration option; throws TypeError or RangeError. */
export function parseOpenConfig(options: OpenConfigOptions): OpenConfig {
  return {
    addresses: entries(options.addresses, "addresses").map(parseAddressEntry),
    routes: entries(options.routes, "routes").map(parseRouteEntry),
    mtu: options.mtu === undefined ? undefined : validateMtu(options.mtu),
    up: validateOptionalBoolean(options.up, "up"),
  };
}

/**
 * What `open()` changed on a device, as steps that put it back. Failed
 * steps are skipped: the error being reported is the first failure, and
 * undoing is best effort.
 */
export type UndoSteps = (() => void)[];

/** Runs the undo steps newest first, each at most once, ignoring their failures. */
export function runUndo(undo: UndoSteps): void {
  while (undo.length > 0) {
    try {
      undo.pop()!();
    } catch {
      // The first failure is the one to report; undoing is best effort.
    }
  }
}

/**
 * Applies the configuration in the order the kernel needs: the MTU first
 * (IPv6 refuses addresses on a link below 1280 bytes, so a small MTU set
 * later would silently drop them), then addresses, then the link state,
 * then routes (IPv4 refuses a route through a device that is down, and a
 * gateway must be on a network an address made). Each step that succeeds
 * pushes its inverse onto `undo`; the caller runs them ({@linkcode runUndo})
 * when this or any later step of `open()` fails. That matters for a device
 * that existed before, which closing the fd does not remove.
 */
export function applyOpenConfig(link: Link, config: OpenConfig, undo: UndoSteps): void {
  const before = config.mtu === undefined && config.up === undefined
    ? undefined
    : readLink(link, `read the state of ${link.device}`);
  if (before && config.mtu !== undefined && config.mtu !== before.mtu) {
    setMtu(link, config.mtu);
    undo.push(() => setMtu(link, before.mtu));
  }
  for (const address of config.addresses) {
    addAddress(link, address);
    undo.push(() => removeAddress(link, address));
  }
  if (before && config.up !== undefined && config.up !== before.up) {
    setUp(link, config.up);
    undo.push(() => setUp(link, before.up));
  }
  for (const route of config.routes) {
    addRoute(link, route);
    undo.push(() => removeRoute(link, route));
  }
}
