/**
 * Listening to rtnetlink's multicast groups (`<linux/rtnetlink.h>`): the
 * group bits a socket binds to and the address that names them.
 *
 * @module
 */
import { AF_NETLINK } from "./constants.ts";
import { sockaddr_nl } from "./netlink.ts";

/** `SOCK_NONBLOCK` for `socket()`: the same bit as `O_NONBLOCK`. */
export const SOCK_NONBLOCK = 0o4000;

/** `RTMGRP_LINK`: the legacy group bit of `RTNLGRP_LINK` (RTM_NEWLINK, RTM_DELLINK). */
export const RTMGRP_LINK = 0x1;

/** `struct sockaddr_nl` for `bind()`: port 0 (the kernel picks one) and `nl_groups`. */
export function sockaddr_nl_groups(groups: number): Uint8Array {
  const address = sockaddr_nl(AF_NETLINK);
  // nl_family (u16), nl_pad (u16), nl_pid (u32), nl_groups (u32)
  new DataView(address.buffer).setUint32(8, groups, true);
  return address;
}
