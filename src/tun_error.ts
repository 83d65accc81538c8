/**
 * The error every kernel failure becomes.
 *
 * @module
 */
import { errnoName, errnoText } from "../ffi/errno.ts";

/** What a {@linkcode TunError} is built from. */
export interface TunErrorOptions {
  /** The errno the kernel returned. */
  errno: number;
  /** The call that failed, e.g. `"ioctl(TUNSETIFF)"` or `"netlink(RTM_NEWADDR)"`. */
  syscall: string;
  /** What was being done, completing "Cannot …", e.g. `attach TUN device "tun0"`. */
  action: string;
  /** What to do about it; a default is chosen from the errno and call when omitted. */
  hint?: string;
  /** For a batch write that failed part-way: how many packets were written before it. */
  written?: number;
}

/**
 * A kernel call failed. `code` is the errno name, `errno` its number and
 * `syscall` the call; the message says which device, what failed and what to
 * do about it.
 *
 * @example Telling a busy device from other failures
 * ```ts ignore
 * import { TunError, TunInterface } from "@tuntap/tuntap";
 *
 * try {
 *   using tun = TunInterface.open({ name: "tun0" });
 * } catch (error) {
 *   if (error instanceof TunError && error.code === "EBUSY") {
 *     console.error("tun0 is attached elsewhere");
 *   } else {
 *     throw error;
 *   }
 * }
 * ```
 */
export class TunError extends Error {
  /** The errno name, e.g. `"EBUSY"`. */
  readonly code: string;
  /** The errno number, e.g. `16`. */
  readonly errno: number;
  /** The call that failed, e.g. `"ioctl(TUNSETIFF)"`. */
  readonly syscall: string;
  /**
   * Set when `TunInterface.writeBatch()` failed part-way: how many
   * packets of the batch the kernel took before the failure (they are not
   * written again; the rest were not written).
   */
  readonly written?: number;

  /** Builds the error and its message from the errno and the failed call. */
  constructor(options: TunErrorOptions) {
    const code = errnoName(options.errno);
    const hint = options.hint ?? defaultHint(code, options.syscall);
    super(
      `Cannot ${options.action}: ${code} (${errnoText(options.errno)})` +
        (hint ? `: ${hint}` : ""),
    );
    this.name = "TunError";
    this.code = code;
    this.errno = options.errno;
    this.syscall = options.syscall;
    if (options.written !== undefined) this.written = options.written;
  }
}

function defaultHint(code: string, syscall: string): string | undefined {
  switch (code) {
    case "EACCES":
      // Opening the node is an ordinary file permission check: CAP_NET_ADMIN
      // plays no part in it, so "needs root or CAP_NET_ADMIN" would mislead.
      if (syscall.startsWith("open")) {
        return "the mode of /dev/net/tun (0600 on some systems) does not let this user open it, " +
          "and capabilities such as CAP_NET_ADMIN do not override that: make it 0666 " +
          "(chmod 0666 /dev/net/tun, or for good a udev rule: " +
          'KERNEL=="tun", MODE="0666" in /etc/udev/rules.d/), or run as root';
      }
    // falls through
    case "EPERM":
      if (syscall.startsWith("open")) {
        return "opening /dev/net/tun is not allowed here (a device cgroup or security module); " +
          "in a container, pass the device in (--device /dev/net/tun)";
      }
      return syscall.startsWith("ioctl(TUNSETIFF)")
        ? "this needs root or CAP_NET_ADMIN, or a persistent device whose owner or group is this user"
        : "this needs root or CAP_NET_ADMIN";
    case "ENOENT":
      return syscall.startsWith("open")
        ? "/dev/net/tun does not exist: load the tun module (modprobe tun) or pass the device into the container (--device /dev/net/tun)"
        : undefined;
    case "ENODEV":
      return syscall.startsWith("open")
        ? "the tun driver is not available: load the tun module (modprobe tun)"
        : "the interface no longer exists";
    case "EBUSY":
      return "the device is attached to another file descriptor, perhaps in another process; close that one or choose another name";
    case "EBADFD":
      return "the device was deleted while attached; open it again to recreate it";
    case "EBADF":
      return "the device is closed";
    case "EIO":
      return syscall.startsWith("write") ? "the link is down; bring it up first" : undefined;
    case "EMFILE":
    case "ENFILE":
      return "too many open files: close devices you no longer use or raise the limit (ulimit -n)";
  }
  return undefined;
}
