/**
 * errno: reading it right after a synchronous call, and its Linux names.
 *
 * @module
 */
import { libc } from "./libc.ts";

let errnoView: Deno.UnsafePointerView | undefined;

/**
 * The calling thread's errno. Only meaningful right after a synchronous FFI
 * call that failed: a `nonblocking` call sets errno on a pool thread, not here.
 */
export function errno(): number {
  // JavaScript runs on one thread per isolate, so its errno slot never moves.
  errnoView ??= new Deno.UnsafePointerView(libc().__errno_location()!);
  return errnoView.getInt32();
}

export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const ENOSPC = 28;
export const ERANGE = 34;
export const EBADFD = 77;
export const EMSGSIZE = 90;
export const EPROTONOSUPPORT = 93;
export const EOPNOTSUPP = 95;
export const EAFNOSUPPORT = 97;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENETDOWN = 100;
export const ENETUNREACH = 101;
export const ENOBUFS = 105;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;
export const ENOTSUP = EOPNOTSUPP;

/** Linux errno numbers with their names and `strerror` texts. */
const errnoTable: Record<number, readonly [name: string, text: string]> = {
  [EPERM]: ["EPERM", "operation not permitted"],
  [ENOENT]: ["ENOENT", "no such file or directory"],
  3: ["ESRCH", "no such process"],
  [EINTR]: ["EINTR", "interrupted system call"],
  [EIO]: ["EIO", "input/output error"],
  [ENXIO]: ["ENXIO", "no such device or address"],
  7: ["E2BIG", "argument list too long"],
  [EBADF]: ["EBADF", "bad file descriptor"],
  [EAGAIN]: ["EAGAIN", "resource temporarily unavailable"],
  [ENOMEM]: ["ENOMEM", "cannot allocate memory"],
  [EACCES]: ["EACCES", "permission denied"],
  [EFAULT]: ["EFAULT", "bad address"],
  [EBUSY]: ["EBUSY", "device or resource busy"],
  [EEXIST]: ["EEXIST", "file exists"],
  [ENODEV]: ["ENODEV", "no such device"],
  20: ["ENOTDIR", "not a directory"],
  [EINVAL]: ["EINVAL", "invalid argument"],
  [ENFILE]: ["ENFILE", "too many open files in system"],
  [EMFILE]: ["EMFILE", "too many open files"],
  [ENOTTY]: ["ENOTTY", "inappropriate ioctl for device"],
  [ENOSPC]: ["ENOSPC", "no space left on device"],
  30: ["EROFS", "read-only file system"],
  32: ["EPIPE", "broken pipe"],
  [ERANGE]: ["ERANGE", "numerical result out of range"],
  38: ["ENOSYS", "function not implemented"],
  [EBADFD]: ["EBADFD", "file descriptor in bad state"],
  [EMSGSIZE]: ["EMSGSIZE", "message too long"],
  [EPROTONOSUPPORT]: ["EPROTONOSUPPORT", "protocol not supported"],
  [EOPNOTSUPP]: ["EOPNOTSUPP", "operation not supported"],
  [EAFNOSUPPORT]: ["EAFNOSUPPORT", "address family not supported by protocol"],
  [EADDRINUSE]: ["EADDRINUSE", "address already in use"],
  [EADDRNOTAVAIL]: ["EADDRNOTAVAIL", "cannot assign requested address"],
  [ENETDOWN]: ["ENETDOWN", "network is down"],
  [ENETUNREACH]: ["ENETUNREACH", "network is unreachable"],
  [ENOBUFS]: ["ENOBUFS", "no buffer space available"],
  110: ["ETIMEDOUT", "connection timed out"],
  111: ["ECONNREFUSED", "connection refused"],
  [EHOSTUNREACH]: ["EHOSTUNREACH", "no route to host"],
  122: ["EDQUOT", "disk quota exceeded"],
};

/** The errno's symbolic name, e.g. `"EBUSY"` (`"E123"` for one not listed). */
export function errnoName(value: number): string {
  return errnoTable[value]?.[0] ?? `E${value}`;
}

/** The errno's `strerror` text, e.g. `"device or resource busy"`. */
export function errnoText(value: number): string {
  return errnoTable[value]?.[1] ?? `error ${value}`;
}
