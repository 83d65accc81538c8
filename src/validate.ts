/**
 * Argument checks that run before any syscall.
 *
 * @module
 */
import { IFNAMSIZ } from "../ffi/constants.ts";

const encoder = new TextEncoder();

/**
 * Checks an interface name the way the kernel's `dev_valid_name` does, plus
 * its rule for `%d` templates, so a bad name fails here and not in an ioctl.
 */
export function validateInterfaceName(
  name: unknown,
  what = "Interface name",
): string {
  if (typeof name !== "string") {
    throw new TypeError(`${what} must be a string, got ${describe(name)}`);
  }
  const bytes = encoder.encode(name).length;
  if (bytes === 0) throw new RangeError(`${what} must not be empty`);
  if (bytes > IFNAMSIZ - 1) {
    throw new RangeError(
      `${what} "${name}" is ${bytes} bytes long; the kernel allows at most ${IFNAMSIZ - 1}`,
    );
  }
  if (name === "." || name === "..") {
    throw new RangeError(`${what} must not be "." or ".."`);
  }
  const bad = /[/:\s\0]/u.exec(name);
  if (bad) {
    throw new RangeError(
      `${what} ${JSON.stringify(name)} contains ${JSON.stringify(bad[0])}; ` +
        `names may not contain "/", ":", whitespace or NUL`,
    );
  }
  const percent = name.indexOf("%");
  if (
    percent >= 0 &&
    (name[percent + 1] !== "d" || name.includes("%", percent + 2))
  ) {
    throw new RangeError(
      `${what} "${name}" is not a valid template: it may hold "%d" once and no other "%"`,
    );
  }
  return name;
}

/** Checks a uid or gid: a whole number from 0 to 4294967294. */
export function validateId(value: unknown, what: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`${what} must be a number, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < 0 || value > 0xfffffffe) {
    throw new RangeError(
      `${what} must be a whole number from 0 to 4294967294, got ${value}`,
    );
  }
  return value;
}

/** Checks an optional boolean option. */
export function validateOptionalBoolean(
  value: unknown,
  what: string,
): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  throw new TypeError(`${what} must be a boolean, got ${describe(value)}`);
}

/** Checks a whole number within a range. */
export function validateInteger(
  value: unknown,
  what: string,
  min: number,
  max: number,
): number {
  if (typeof value !== "number") {
    throw new TypeError(`${what} must be a number, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `${what} must be a whole number from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return `${typeof value} ${String(value)}`;
}
