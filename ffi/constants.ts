/**
 * Kernel constants from `<fcntl.h>`, `<poll.h>`, `<sys/eventfd.h>`,
 * `<linux/if.h>`, `<linux/if_tun.h>` and `<linux/sockios.h>`. The ioctl
 * request numbers are those of x86_64 and arm64 (and every architecture that
 * uses the generic `_IOW` encoding).
 *
 * @module
 */

export const O_RDONLY = 0o0;
export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

// setns(): the namespace type <sched.h> names for a network namespace.
export const CLONE_NEWNET = 0x40000000;

export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;

export const IFNAMSIZ = 16;

// TUN ioctls: _IOW('T', nr, int) / _IOR('T', nr, unsigned int)
export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const TUNSETOWNER = 0x400454cc;
export const TUNSETLINK = 0x400454cd;
export const TUNSETGROUP = 0x400454ce;
export const TUNGETFEATURES = 0x800454cf;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUNGETIFF = 0x800454d2;
export const TUNGETVNETHDRSZ = 0x800454d7;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const TUNSETQUEUE = 0x400454d9;
export const TUNSETCARRIER = 0x400454e2;

// ifr_flags for TUNSETIFF / TUNGETIFF
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_NAPI = 0x0010;
export const IFF_NO_CARRIER = 0x0040;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_ATTACH_QUEUE = 0x0200;
export const IFF_DETACH_QUEUE = 0x0400;
export const IFF_PERSIST = 0x0800;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const IFF_TUN_EXCL = 0x8000;

// Offload bits for TUNSETOFFLOAD
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;

// Link-level ifr_flags (SIOCGIFFLAGS / SIOCSIFFLAGS)
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
// Reported in ifi_flags, not settable: the device is up and has a carrier.
export const IFF_LOWER_UP = 0x10000;

// Socket families and types
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_ROUTE = 0;

// Socket options and recv flags
export const SOL_SOCKET = 1;
export const SO_RCVTIMEO = 20;
export const MSG_TRUNC = 0x20;

// Interface ioctls on a datagram socket
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCGIFMTU = 0x8921;
export const SIOCSIFMTU = 0x8922;
export const SIOCGIFHWADDR = 0x8927;
export const SIOCSIFHWADDR = 0x8924;
export const SIOCGIFINDEX = 0x8933;
export const SIOCGIFTXQLEN = 0x8942;
export const SIOCSIFTXQLEN = 0x8943;
export const ARPHRD_ETHER = 1;

// USO offload bits (Linux 6.2+)
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;

// epoll
export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLET = 0x80000000;

// UDP sockets (udp/): <sys/socket.h>, <netinet/in.h>, <linux/udp.h>
export const SOCK_NONBLOCK = 0o4000;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
// The root-only variants that pass the net.core.[rw]mem_max limits.
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;
export const SOL_UDP = 17;
// GSO on send (Linux 4.18+): a u16 segment size, as a cmsg or socket option.
export const UDP_SEGMENT = 103;
// GRO on receive (Linux 5.0+): an int option; the segment size comes back as an int cmsg.
export const UDP_GRO = 104;
