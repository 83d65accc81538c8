/**
 * The one place a libc return value turns into a {@linkcode TunError}, and
 * the two ioctl call shapes (pointer argument, value argument).
 *
 * @module
 */
import * as c from "../ffi/constants.ts";
import { errno } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { TunError } from "./tun_error.ts";

/** Hints by errno, for failures whose default hint would not say enough. */
export type Hints = Partial<Record<number, string>>;

/**
 * Returns `result` when it is not negative; otherwise reads errno at once
 * (it is only valid right after the synchronous call) and throws.
 */
export function check(
  result: number | bigint,
  syscall: string,
  action: string | (() => string),
  hints?: Hints,
): number {
  const value = Number(result);
  if (value >= 0) return value;
  const code = errno();
  throw new TunError({
    errno: code,
    syscall,
    action: typeof action === "string" ? action : action(),
    hint: hints?.[code],
  });
}

/** `ioctl(fd, request, argp)` with a struct argument the kernel reads or fills. */
export function ioctl(
  fd: number,
  request: number,
  argument: Uint8Array,
  action: string | (() => string),
  hints?: Hints,
): number {
  return check(
    libc().ioctl(fd, BigInt(request), argument),
    ioctlName(request),
    action,
    hints,
  );
}

/** `ioctl(fd, request, arg)` with an integer argument passed by value. */
export function ioctlValue(
  fd: number,
  request: number,
  value: number,
  action: string | (() => string),
  hints?: Hints,
): number {
  return check(
    libc().ioctl_value(fd, BigInt(request), BigInt(value)),
    ioctlName(request),
    action,
    hints,
  );
}

const requestNames = new Map<number, string>(
  Object.entries(c)
    .filter(([name]) => /^(TUN[GS]ET|SIOC[GS])/.test(name))
    .map(([name, value]) => [value as number, name]),
);

/** `ioctl(TUNSETIFF)` and the like, for error messages. */
function ioctlName(request: number): string {
  return `ioctl(${requestNames.get(request) ?? `0x${request.toString(16)}`})`;
}
