/**
 * A batched UDP socket over FFI: `recvmmsg`/`sendmmsg` with preallocated
 * message arrays, receive and send buffer sizes beyond the sysctl caps
 * (as root), UDP GSO on send and GRO on receive, IPv4 and IPv6. It needs
 * `--allow-ffi` alone, and waits the way `TunInterface` does.
 *
 * @example Send a batch and receive it
 * ```ts ignore
 * import { type UdpAddress, UdpSocket } from "@tuntap/tuntap/udp";
 *
 * using receiver = UdpSocket.bind({ hostname: "127.0.0.1" });
 * using sender = UdpSocket.bind({ hostname: "127.0.0.1" });
 * const packets = [1, 2, 3].map((n) => new Uint8Array(100).fill(n));
 * await sender.sendBatch(packets, { to: receiver.localAddress });
 *
 * const buffers = Array.from({ length: 8 }, () => new Uint8Array(2048));
 * const sizes = new Uint32Array(8);
 * const addresses: UdpAddress[] = [];
 * const count = await receiver.recvBatch(buffers, sizes, { addresses });
 * ```
 *
 * @module
 */
export {
  UDP_MAX_SEGMENTS,
  type UdpBindOptions,
  type UdpReceiveOptions,
  type UdpSendOptions,
  UdpSocket,
} from "./udp_socket.ts";
export type { UdpAddress } from "./socket_address.ts";
export { TunError } from "../src/tun_error.ts";
