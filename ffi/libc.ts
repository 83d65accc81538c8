/**
 * The one libc symbol table tuntap binds, opened lazily so that importing the
 * module (for the packet helpers, say) needs no `--allow-ffi` until a device
 * or socket is actually touched.
 *
 * Every symbol but `poll` is a synchronous call: TUN reads and writes on a
 * non-blocking fd never wait, and errno must be read on the thread that made
 * the call. `poll` is the only wait, run on Deno's blocking pool, and it only
 * ever watches an epoll fd, never a device fd.
 *
 * @module
 */

/** The libc functions tuntap calls, with their C prototypes. */
export const libcSymbols = {
  // int open(const char *pathname, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  // The result is taken as its low 32 bits: a packet is far below 2 GiB and
  // -1 stays -1, and an "isize" result would cost a BigInt on every call.
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // ssize_t write(int fd, const void *buf, size_t count);
  // The result is narrowed as read's is.
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // int ioctl(int fd, unsigned long request, void *argp);
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  // int ioctl(int fd, unsigned long request, unsigned long arg);
  // The same symbol for requests that take their argument by value
  // (TUNSETPERSIST, TUNSETOWNER, TUNSETGROUP, TUNSETOFFLOAD).
  ioctl_value: {
    name: "ioctl",
    parameters: ["i32", "u64", "u64"],
    result: "i32",
  },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout);
  poll: {
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // int epoll_create1(int flags);
  epoll_create1: { parameters: ["i32"], result: "i32" },
  // int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
  // Only ever called with timeout 0, after poll() said the epoll fd is ready.
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // int eventfd(unsigned int initval, int flags);
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // unsigned int if_nametoindex(const char *ifname);
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen);
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // ssize_t sendto(int sockfd, const void *buf, size_t len, int flags,
  //                const struct sockaddr *dest_addr, socklen_t addrlen);
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  // ssize_t recv(int sockfd, void *buf, size_t len, int flags);
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  // int setsockopt(int sockfd, int level, int optname,
  //                const void *optval, socklen_t optlen);
  setsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "u32"],
    result: "i32",
  },
  // struct passwd *getpwnam(const char *name);
  // struct passwd { char *pw_name; char *pw_passwd; uid_t pw_uid; ... }:
  // pw_uid is the u32 at offset 16 on 64-bit glibc. NULL when there is no
  // such user. Through NSS, so no --allow-read is needed for /etc/passwd.
  getpwnam: { parameters: ["buffer"], result: "pointer" },
  // struct group *getgrnam(const char *name);
  // struct group { char *gr_name; char *gr_passwd; gid_t gr_gid; ... }:
  // gr_gid is the u32 at offset 16 on 64-bit glibc. NULL when there is no
  // such group.
  getgrnam: { parameters: ["buffer"], result: "pointer" },
  // int fcntl(int fd, int cmd, ... /* int arg */);
  // Bound with the one int argument that F_GETFL, F_SETFL, F_GETFD and
  // F_SETFD take (0 where none is read), as ioctl is.
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // ssize_t recvfrom(int sockfd, void *buf, size_t len, int flags,
  //                  struct sockaddr *src_addr, socklen_t *addrlen);
  // The result is narrowed as read's is (a packet is far below 2 GiB).
  recvfrom: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "i32",
  },
  // int setns(int fd, int nstype);
  setns: { parameters: ["i32", "i32"], result: "i32" },
  // ssize_t readlink(const char *path, char *buf, size_t bufsiz);
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  // int recvmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags,
  //              struct timespec *timeout);
  // Always with a NULL timeout, on a non-blocking socket.
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  // int sendmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags);
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  // int getsockopt(int sockfd, int level, int optname, void *optval, socklen_t *optlen);
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  // int getsockname(int sockfd, struct sockaddr *addr, socklen_t *addrlen);
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int connect(int sockfd, const struct sockaddr *addr, socklen_t addrlen);
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound libc functions. */
export type Libc = Deno.DynamicLibrary<typeof libcSymbols>["symbols"];

let library: Deno.DynamicLibrary<typeof libcSymbols> | undefined;

/** Opens libc on first use and returns its symbols. */
export function libc(): Libc {
  library ??= Deno.dlopen("libc.so.6", libcSymbols);
  return library.symbols;
}

const encoder = new TextEncoder();

/** Encodes a string as a NUL-terminated C string. */
export function cstring(text: string): Uint8Array {
  return encoder.encode(`${text}\0`);
}

// Offset of pw_uid in struct passwd and of gr_gid in struct group.
const ID_OFFSET = 16;

/**
 * The uid of a user name (`getpwnam`) or the gid of a group name
 * (`getgrnam`), or `undefined` when there is none.
 */
export function lookupId(kind: "user" | "group", name: string): number | undefined {
  const entry = kind === "user" ? libc().getpwnam(cstring(name)) : libc().getgrnam(cstring(name));
  // The struct lives in libc's static buffer: read it before any other call.
  return entry === null ? undefined : new Deno.UnsafePointerView(entry).getUint32(ID_OFFSET);
}
