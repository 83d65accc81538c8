/**
 * The kernel's 64-bit link counters of a TUN/TAP device (`IFLA_STATS64` of
 * an `RTM_GETLINK` reply), the ones `ip -s link show` prints, read without
 * attaching the device.
 *
 * @module
 */
import { decode_rtnl_link_stats64 } from "../ffi/netlink.ts";
import { readTunLink } from "./device_info.ts";
import { type LinkInfo, readLink } from "./link_config.ts";
import type { Link } from "./netlink.ts";
import { inNamespace } from "./netns.ts";

/**
 * The counters of a device since it was created, as the kernel keeps them
 * (`struct rtnl_link_stats64`) and `ip -s -s link show` prints them.
 *
 * The kernel counts from its side of the device. On a TUN/TAP device "tx"
 * is what the kernel sends through it, which is what the program attached
 * to it reads; "rx" is what the kernel receives from it, which is what the
 * program writes. A packet routed into the device that no reader takes
 * before the queue (`txQueueLength`) is full counts in `txDropped`.
 *
 * Every counter is a number; one above 2^53 (8 PiB) is rounded to the
 * nearest double. Counters the running kernel does not know read as 0.
 *
 * @example Print how much a device carried
 * ```ts ignore
 * import { tunDeviceStats } from "@tuntap/tuntap";
 *
 * const { txPackets, txBytes, rxPackets, rxBytes } = tunDeviceStats("tun0");
 * console.log(`read by the program: ${txPackets} packets, ${txBytes} bytes`);
 * console.log(`written by the program: ${rxPackets} packets, ${rxBytes} bytes`);
 * ```
 */
export interface TunDeviceStats {
  /** Packets the kernel received from the device: written by the program. */
  rxPackets: number;
  /** Packets the kernel sent through the device: read by the program. */
  txPackets: number;
  /** Bytes of `rxPackets`. */
  rxBytes: number;
  /** Bytes of `txPackets`. */
  txBytes: number;
  /** Packets received with errors,, as the driver counts them. */
  rxErrors: number;
  /** Packets that failed to be sent, as the driver counts them. */
  txErrors: number;
  /** Packets received and then dropped, e.g. a write of an IP version the kernel does not know. */
  rxDropped: number;
  /** Packets dropped on the way out, e.g. routed into the device while its queue was full. */
  txDropped: number;
  /** Multicast packets received. */
  multicast: number;
  /** Collisions (an Ethernet notion; 0 on a TUN/TAP device). */
  collisions: number;
  /** Received packets of a bad length. */
  rxLengthErrors: number;
  /** Receive ring overflows. */
  rxOverErrors: number;
  /** Received frames with a bad CRC. */
  rxCrcErrors: number;
  /** Received frames that could not be parsed: on TUN/TAP, writes whose `virtio_net_hdr` was refused. */
  rxFrameErrors: number;
  /** Receive FIFO overruns. */
  rxFifoErrors: number;
  /** Packets the receiver missed. */
  rxMissedErrors: number;
  /** Transmissions aborted. */
  txAbortedErrors: number;
  /** Transmissions that lost the carrier. */
  txCarrierErrors: number;
  /** Transmit FIFO errors. */
  txFifoErrors: number;
  /** Heartbeat errors (an Ethernet notion). */
  txHeartbeatErrors: number;
  /** Late collisions (an Ethernet notion). */
  txWindowErrors: number;
  /** Compressed packets received (cslip and the like). */
  rxCompressed: number;
  /** Compressed packets sent. */
  txCompressed: number;
  /** Packets received that no protocol handler took (`ip` prints it as "nohandler"). */
  rxNohandler: number;
  /** Packets received for another host and dropped. */
  rxOtherhostDropped: number;
}

/**
 * The counters of one TUN/TAP device by name, in one `RTM_GETLINK`,
 * without attaching it. Needs `--allow-ffi` only, and no privileges. Fails
 * as {@linkcode tunDeviceInfo} does: `ENODEV` for a name that does not
 * exist, `EINVAL` for one that is not a TUN/TAP device.
 *
 * @example Measure what a device carries in a second
 * ```ts ignore
 * import { tunDeviceStats } from "@tuntap/tuntap";
 *
 * const before = tunDeviceStats("tun0");
 * await new Promise((resolve) => setTimeout(resolve, 1000));
 * const after = tunDeviceStats("tun0");
 * console.log(`${(after.txBytes - before.txBytes) * 8} bit/s towards the program`);
 * ```
 */
export function tunDeviceStats(
  name: string,
  options: { netns?: string | number } = {},
): TunDeviceStats {
  const action = `read the counters of TUN/TAP device "${name}"`;
  return inNamespace(options, action, () => decodeStats(readTunLink(name, action), action));
}

/**
 * The counters of the device of `link` (an attached handle's), in one
 * `RTM_GETLINK` by index; `link.verify` guards against an index the kernel
 * has handed to another device.
 */
export function readLinkStats(link: Link): TunDeviceStats {
  const action = `read the counters of ${link.device}`;
  return decodeStats(readLink(link, action), action);
}

function decodeStats(link: LinkInfo, action: string): TunDeviceStats {
  if (link.stats64 === undefined) {
    throw new Error(`The kernel answered RTM_GETLINK without IFLA_STATS64: cannot ${action}`);
  }
  const s = decode_rtnl_link_stats64(link.stats64);
  return {
    rxPackets: s.rx_packets,
    txPackets: s.tx_packets,
    rxBytes: s.rx_bytes,
    txBytes: s.tx_bytes,
    rxErrors: s.rx_errors,
    txErrors: s.tx_errors,
    rxDropped: s.rx_dropped,
    txDropped: s.tx_dropped,
    multicast: s.multicast,
    collisions: s.collisions,
    rxLengthErrors: s.rx_length_errors,
    rxOverErrors: s.rx_over_errors,
    rxCrcErrors: s.rx_crc_errors,
    rxFrameErrors: s.rx_frame_errors,
    rxFifoErrors: s.rx_fifo_errors,
    rxMissedErrors: s.rx_missed_errors,
    txAbortedErrors: s.tx_aborted_errors,
    txCarrierErrors: s.tx_carrier_errors,
    txFifoErrors: s.tx_fifo_errors,
    txHeartbeatErrors: s.tx_heartbeat_errors,
    txWindowErrors: s.tx_window_errors,
    rxCompressed: s.rx_compressed,
    txCompressed: s.tx_compressed,
    rxNohandler: s.rx_nohandler,
    rxOtherhostDropped: s.rx_otherhost_dropped,
  };
}
