/**
 * rtnetlink from `<linux/netlink.h>`, `<linux/rtnetlink.h>`,
 * `<linux/if_addr.h>` and `<linux/if_link.h>`: the constants tuntap uses,
 * the encoders of `struct nlmsghdr`, `struct ifinfomsg`, `struct ifaddrmsg`,
 * `struct rtmsg` and `struct rtattr`, and the decoders of replies.
 *
 * Netlink integers are in host byte order (little-endian on every platform
 * tuntap runs on); addresses inside attributes are in network order.
 *
 * @module
 */

// Socket options (level SOL_NETLINK)
export const SOL_NETLINK = 270;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

// struct nlmsghdr: nlmsg_type values
export const NLMSG_ERROR = 0x2;
export const NLMSG_DONE = 0x3;

// struct nlmsghdr: nlmsg_flags
export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
// In an NLMSG_ERROR: the request is not echoed / extended-ack TLVs follow.
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// enum nlmsgerr_attrs
export const NLMSGERR_ATTR_MSG = 1;

// rtnetlink message types
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;

// enum { IFLA_* }: link attributes
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
// u32: an fd of the network namespace to move the link to (RTM_NEWLINK).
export const IFLA_NET_NS_FD = 28;
export const IFLA_MTU = 4;
export const IFLA_TXQLEN = 13;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_STATS64 = 23;
export const IFLA_CARRIER = 33;

// enum { IFLA_INFO_* }: nested in IFLA_LINKINFO
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;

// enum { IFLA_TUN_* }: nested in IFLA_INFO_DATA when IFLA_INFO_KIND is "tun".
// OWNER and GROUP (u32) are sent only when set; NUM_QUEUES and
// NUM_DISABLED_QUEUES (u32) only for a multi-queue device; the rest are u8.
export const IFLA_TUN_OWNER = 1;
export const IFLA_TUN_GROUP = 2;
export const IFLA_TUN_TYPE = 3;
export const IFLA_TUN_PI = 4;
export const IFLA_TUN_VNET_HDR = 5;
export const IFLA_TUN_PERSIST = 6;
export const IFLA_TUN_MULTI_QUEUE = 7;
export const IFLA_TUN_NUM_QUEUES = 8;
export const IFLA_TUN_NUM_DISABLED_QUEUES = 9;

// enum { IFA_* }: address attributes, and ifa_flags
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_F_NODAD = 0x02;

// enum rtattr_type_t: route attributes
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_TABLE = 15;
export const RTA_VIA = 18;

// rtm_table, rtm_protocol, rtm_scope, rtm_type, rtm_flags
export const RT_TABLE_MAIN = 254;
export const RTPROT_BOOT = 3;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;
export const RTN_UNICAST = 1;
export const RTM_F_CLONED = 0x200;

/** `sizeof(struct nlmsghdr)`. */
export const sizeof_nlmsghdr = 16;
/** `sizeof(struct rtattr)`. */
export const sizeof_rtattr = 4;
/** `sizeof(struct sockaddr_nl)`. */
export const sizeof_sockaddr_nl = 12;

const NLA_TYPE_MASK = 0x3fff;

/** `NLMSG_ALIGN` and `RTA_ALIGN`: both round up to 4 bytes. */
export function NLMSG_ALIGN(length: number): number {
  return (length + 3) & ~3;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `struct sockaddr_nl` addressed to the kernel (port 0, no groups). */
export function sockaddr_nl(family: number): Uint8Array {
  const address = new Uint8Array(sizeof_sockaddr_nl);
  view(address).setUint16(0, family, true);
  return address;
}

/** One `struct rtattr` before encoding: its type and its payload. */
export interface rtattr {
  /** `rta_type`. */
  type: number;
  /** The payload, `rta_len - sizeof(struct rtattr)` bytes. */
  data: Uint8Array;
}

/** A `u32` attribute payload. */
export function u32(value: number): Uint8Array {
  const data = new Uint8Array(4);
  view(data).setUint32(0, value, true);
  return data;
}

/** Reads a `u32` attribute payload. */
export function get_u32(data: Uint8Array): number {
  return view(data).getUint32(0, true);
}

/** Reads a `u8` attribute payload. */
export function get_u8(data: Uint8Array): number {
  return data[0];
}

/** Reads a string attribute payload (`IFLA_IFNAME`, `IFLA_INFO_KIND`), up to its NUL. */
export function get_string(data: Uint8Array): string {
  const end = data.indexOf(0);
  return new TextDecoder().decode(end < 0 ? data : data.subarray(0, end));
}

/** `struct nlmsghdr` fields a request sets; `nlmsg_len` is computed. */
export interface nlmsghdr {
  /** `nlmsg_type`, e.g. `RTM_NEWADDR`. */
  type: number;
  /** `nlmsg_flags`. */
  flags: number;
  /** `nlmsg_seq`, echoed in the reply. */
  seq: number;
}

/**
 * The one netlink message encoder: `struct nlmsghdr`, the fixed family
 * header (`ifinfomsg`, `ifaddrmsg`, `rtmsg`), then each `struct rtattr` with
 * its payload, every part padded to 4 bytes.
 */
export function nlmsg(
  header: nlmsghdr,
  body: Uint8Array,
  attributes: readonly rtattr[] = [],
): Uint8Array {
  let length = sizeof_nlmsghdr + NLMSG_ALIGN(body.length);
  for (const { data } of attributes) length += NLMSG_ALIGN(sizeof_rtattr + data.length);
  const message = new Uint8Array(length);
  const fields = view(message);
  fields.setUint32(0, length, true);
  fields.setUint16(4, header.type, true);
  fields.setUint16(6, header.flags, true);
  fields.setUint32(8, header.seq, true);
  // nlmsg_pid 0: the kernel fills in this socket's port.
  message.set(body, sizeof_nlmsghdr);
  let offset = sizeof_nlmsghdr + NLMSG_ALIGN(body.length);
  for (const { type, data } of attributes) {
    fields.setUint16(offset, sizeof_rtattr + data.length, true);
    fields.setUint16(offset + 2, type, true);
    message.set(data, offset + sizeof_rtattr);
    offset += NLMSG_ALIGN(sizeof_rtattr + data.length);
  }
  return message;
}

/** One message of a reply: its header fields and the bytes after the header. */
export interface NetlinkMessage {
  /** `nlmsg_type`. */
  type: number;
  /** `nlmsg_flags`. */
  flags: number;
  /** `nlmsg_seq`. */
  seq: number;
  /** The payload, `nlmsg_len - sizeof(struct nlmsghdr)` bytes. */
  payload: Uint8Array;
}

/**
 * The one reply decoder: splits what one `recv` returned into its messages
 * (a datagram may hold many). Copies nothing; the payloads view `buffer`.
 */
export function nlmsghdrs(buffer: Uint8Array): NetlinkMessage[] {
  const fields = view(buffer);
  const messages: NetlinkMessage[] = [];
  let offset = 0;
  while (offset + sizeof_nlmsghdr <= buffer.length) {
    const length = fields.getUint32(offset, true);
    if (length < sizeof_nlmsghdr || offset + length > buffer.length) {
      throw new RangeError(`Malformed netlink reply: a message claims ${length} bytes`);
    }
    messages.push({
      type: fields.getUint16(offset + 4, true),
      flags: fields.getUint16(offset + 6, true),
      seq: fields.getUint32(offset + 8, true),
      payload: buffer.subarray(offset + sizeof_nlmsghdr, offset + length),
    });
    offset += NLMSG_ALIGN(length);
  }
  return messages;
}

/**
 * The attributes after a fixed header of `skip` bytes, by type (flag bits
 * masked off). A later duplicate replaces an earlier one. With `skip` 0 it
 * decodes the payload of a nested attribute (`IFLA_LINKINFO`).
 */
export function rtattrs(payload: Uint8Array, skip: number): Map<number, Uint8Array> {
  const fields = view(payload);
  const attributes = new Map<number, Uint8Array>();
  let offset = NLMSG_ALIGN(skip);
  while (offset + sizeof_rtattr <= payload.length) {
    const length = fields.getUint16(offset, true);
    if (length < sizeof_rtattr || offset + length > payload.length) break;
    attributes.set(
      fields.getUint16(offset + 2, true) & NLA_TYPE_MASK,
      payload.subarray(offset + sizeof_rtattr, offset + length),
    );
    offset += NLMSG_ALIGN(length);
  }
  return attributes;
}

/**
 * How a reply ends: `struct nlmsgerr { int error; struct nlmsghdr msg; }`
 * of an `NLMSG_ERROR`, or the `int` status of an `NLMSG_DONE`, with the
 * kernel's explanation (`NLMSGERR_ATTR_MSG`) when extended acks are on.
 * `error` is 0 for success, a negative errno for a refusal.
 */
export function nlmsg_status(message: NetlinkMessage): { error: number; text?: string } {
  const { payload, flags } = message;
  const error = payload.length >= 4 ? view(payload).getInt32(0, true) : 0;
  if (!(flags & NLM_F_ACK_TLVS)) return { error };
  // An NLMSG_ERROR echoes the request's header, or without NLM_F_CAPPED the
  // whole request, before the TLVs; an NLMSG_DONE echoes nothing.
  const echoed = message.type !== NLMSG_ERROR
    ? 0
    : flags & NLM_F_CAPPED
    ? sizeof_nlmsghdr
    : view(payload).getUint32(4, true);
  const text = rtattrs(payload, 4 + echoed).get(NLMSGERR_ATTR_MSG);
  return text === undefined ? { error } : { error, text: get_string(text) };
}

/** `struct ifinfomsg` (16 bytes). */
export interface ifinfomsg {
  /** `ifi_family`. */
  family: number;
  /** `ifi_index`. */
  index: number;
  /** `ifi_flags`: `IFF_UP` and the like. */
  flags: number;
  /** `ifi_change`: which bits of `ifi_flags` a request changes. */
  change: number;
}

/** Encodes a `struct ifinfomsg`. */
export function encode_ifinfomsg(fields: ifinfomsg): Uint8Array {
  const bytes = new Uint8Array(16);
  const v = view(bytes);
  v.setUint8(0, fields.family);
  v.setInt32(4, fields.index, true);
  v.setUint32(8, fields.flags, true);
  v.setUint32(12, fields.change, true);
  return bytes;
}

/** Decodes a `struct ifinfomsg` at the start of a payload. */
export function decode_ifinfomsg(payload: Uint8Array): ifinfomsg {
  const v = view(payload);
  return {
    family: v.getUint8(0),
    index: v.getInt32(4, true),
    flags: v.getUint32(8, true),
    change: v.getUint32(12, true),
  };
}

/** `sizeof(struct ifinfomsg)`. */
export const sizeof_ifinfomsg = 16;

/** `struct ifaddrmsg` (8 bytes). */
export interface ifaddrmsg {
  /** `ifa_family`: `AF_INET` or `AF_INET6`. */
  family: number;
  /** `ifa_prefixlen`. */
  prefixlen: number;
  /** `ifa_flags`: `IFA_F_NODAD` and the like (the low 8 bits). */
  flags: number;
  /** `ifa_scope`. */
  scope: number;
  /** `ifa_index`. */
  index: number;
}

/** Encodes a `struct ifaddrmsg`. */
export function encode_ifaddrmsg(fields: ifaddrmsg): Uint8Array {
  const bytes = new Uint8Array(8);
  const v = view(bytes);
  v.setUint8(0, fields.family);
  v.setUint8(1, fields.prefixlen);
  v.setUint8(2, fields.flags);
  v.setUint8(3, fields.scope);
  v.setUint32(4, fields.index, true);
  return bytes;
}

/** Decodes a `struct ifaddrmsg` at the start of a payload. */
export function decode_ifaddrmsg(payload: Uint8Array): ifaddrmsg {
  const v = view(payload);
  return {
    family: v.getUint8(0),
    prefixlen: v.getUint8(1),
    flags: v.getUint8(2),
    scope: v.getUint8(3),
    index: v.getUint32(4, true),
  };
}

/** `sizeof(struct ifaddrmsg)`. */
export const sizeof_ifaddrmsg = 8;

/** `struct rtmsg` (12 bytes). */
export interface rtmsg {
  /** `rtm_family`. */
  family: number;
  /** `rtm_dst_len`: the destination prefix length. */
  dst_len: number;
  /** `rtm_table`, or `RT_TABLE_COMPAT` when `RTA_TABLE` carries a larger id. */
  table: number;
  /** `rtm_protocol`: who installed the route. */
  protocol: number;
  /** `rtm_scope`. */
  scope: number;
  /** `rtm_type`: `RTN_UNICAST` and the like. */
  type: number;
  /** `rtm_flags`. */
  flags: number;
}

/** Encodes a `struct rtmsg` (`rtm_src_len` and `rtm_tos` are 0). */
export function encode_rtmsg(fields: rtmsg): Uint8Array {
  const bytes = new Uint8Array(12);
  const v = view(bytes);
  v.setUint8(0, fields.family);
  v.setUint8(1, fields.dst_len);
  v.setUint8(4, fields.table);
  v.setUint8(5, fields.protocol);
  v.setUint8(6, fields.scope);
  v.setUint8(7, fields.type);
  v.setUint32(8, fields.flags, true);
  return bytes;
}

/** Decodes a `struct rtmsg` at the start of a payload. */
export function decode_rtmsg(payload: Uint8Array): rtmsg {
  const v = view(payload);
  return {
    family: v.getUint8(0),
    dst_len: v.getUint8(1),
    table: v.getUint8(4),
    protocol: v.getUint8(5),
    scope: v.getUint8(6),
    type: v.getUint8(7),
    flags: v.getUint32(8, true),
  };
}

/** `sizeof(struct rtmsg)`. */
export const sizeof_rtmsg = 12;

/**
 * `struct rtvia { __kernel_sa_family_t rtvia_family; __u8 rtvia_addr[]; }`:
 * a gateway of another family than the route (`RTA_VIA`).
 */
export function decode_rtvia(data: Uint8Array): { family: number; address: Uint8Array } {
  return { family: view(data).getUint16(0, true), address: data.subarray(2) };
}

/**
 * The fields of `struct rtnl_link_stats64` (`IFLA_STATS64`), every one a
 * `__u64`, in the order the kernel lays them out.
 */
export const rtnl_link_stats64_fields = [
  "rx_packets",
  "tx_packets",
  "rx_bytes",
  "tx_bytes",
  "rx_errors",
  "tx_errors",
  "rx_dropped",
  "tx_dropped",
  "multicast",
  "collisions",
  "rx_length_errors",
  "rx_over_errors",
  "rx_crc_errors",
  "rx_frame_errors",
  "rx_fifo_errors",
  "rx_missed_errors",
  "tx_aborted_errors",
  "tx_carrier_errors",
  "tx_fifo_errors",
  "tx_heartbeat_errors",
  "tx_window_errors",
  "rx_compressed",
  "tx_compressed",
  "rx_nohandler",
  "rx_otherhost_dropped",
] as const;

/** `struct rtnl_link_stats64`, each counter as a number. */
export type rtnl_link_stats64 = Record<(typeof rtnl_link_stats64_fields)[number], number>;

/**
 * Decodes a `struct rtnl_link_stats64`. The kernel sends the struct as it
 * knows it: an older one sends fewer fields (the last ones, such as
 * `rx_otherhost_dropped`, came later), which read as 0. A counter above 2^53
 * (8 PiB, some 80 days of a steady 10 Gbit/s) is rounded to the nearest
 * double, off by a few units in 10^16: numbers keep counters easy to
 * subtract and to print as JSON.
 */
export function decode_rtnl_link_stats64(data: Uint8Array): rtnl_link_stats64 {
  const v = view(data);
  const stats = {} as rtnl_link_stats64;
  rtnl_link_stats64_fields.forEach((field, i) => {
    stats[field] = (i + 1) * 8 <= data.length ? Number(v.getBigUint64(i * 8, true)) : 0;
  });
  return stats;
}

/** Message type names, for error messages: `RTM_NEWADDR` and the like. */
export function rtmName(type: number): string {
  return rtmNames[type] ?? `message type ${type}`;
}

const rtmNames: Record<number, string> = {
  [RTM_NEWLINK]: "RTM_NEWLINK",
  [RTM_DELLINK]: "RTM_DELLINK",
  [RTM_GETLINK]: "RTM_GETLINK",
  [RTM_SETLINK]: "RTM_SETLINK",
  [RTM_NEWADDR]: "RTM_NEWADDR",
  [RTM_DELADDR]: "RTM_DELADDR",
  [RTM_GETADDR]: "RTM_GETADDR",
  [RTM_NEWROUTE]: "RTM_NEWROUTE",
  [RTM_DELROUTE]: "RTM_DELROUTE",
  [RTM_GETROUTE]: "RTM_GETROUTE",
};
