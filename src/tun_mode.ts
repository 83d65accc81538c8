/**
 * {@linkcode TunMode}: the two kinds of device, shared by the handle and the
 * device listing.
 *
 * @module
 */

/**
 * The kind of device: `"tun"` carries IP packets, `"tap"` Ethernet frames.
 *
 * @example Pick the link type a capture is read with
 * ```ts
 * import type { TunMode } from "@tuntap/tuntap";
 *
 * const link = (mode: TunMode) => mode === "tap" ? "ethernet" : "ip";
 * console.log(link("tun")); // "ip"
 * ```
 */
export type TunMode = "tun" | "tap";
