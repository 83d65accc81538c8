/**
 * Create, configure and drive Linux TUN/TAP interfaces from Deno with
 * nothing but `--allow-ffi`.
 *
 * @example Read packets the kernel routes into a TUN device
 * ```ts ignore
 * import { TunInterface } from "@tuntap/tuntap";
 *
 * using tun = TunInterface.open({ name: "tun0" });
 * for await (const packet of tun) {
 *   console.log(`${packet.length} bytes`);
 * }
 * ```
 *
 * @module
 */
export {
  MAX_PACKET_SIZE,
  type TunFromFdOptions,
  TunInterface,
  type TunOpenOptions,
  type TunReadOptions,
} from "./src/tun_interface.ts";
export type { TunMode } from "./src/tun_mode.ts";
export type { TunNetns, TunNetnsOptions } from "./src/netns.ts";
export { TunError, type TunErrorOptions } from "./src/tun_error.ts";
export {
  listTunDevices,
  type TunDeviceDetails,
  tunDeviceDetails,
  type TunDeviceInfo,
  tunDeviceInfo,
  type TunOperState,
} from "./src/device_info.ts";
export { type TunDeviceStats, tunDeviceStats } from "./src/link_stats.ts";
export { type TunLinkEvent, watchLinks, type WatchLinksOptions } from "./src/link_events.ts";
export {
  captureDevice,
  type CaptureDeviceOptions,
  type CapturedPacket,
} from "./src/capture_device.ts";
export type { TunAddress, TunAddressOptions } from "./src/address_config.ts";
export type { TunRoute, TunRouteOptions } from "./src/route_config.ts";
export type { TunOffloadOptions } from "./src/offload.ts";

// The packet toolkit, also its own entry point `@tuntap/tuntap/packet`.
export * from "./packet/mod.ts";
