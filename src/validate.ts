/**
 * Argument checks that run before any syscall.
 *
 * @module
 */
import { IFNAMSIZ } from "../ffi/constants.ts";

const encoder = new TextEncoder();

/**
 * Bytes `dev_valid_name` refuses besides the length: '/', ':' and what the
 * kernel's Latin-1 `isspace()` counts as whitespace (0x09–0x0D, 0x20 and
 * 0xA0, the last of which hides inside UTF-8 characters such as "à", C3 A0).
 * NUL is refused too: it would end the C string and silently shorten the name.
 */
function refusedByte(byte: number): boolean {
  return byte === 0x00 || byte === 0x2f || byte === 0x3a || (byte >= 0x09 && byte <= 0x0d) ||
    byte === 0x20 || byte === 0xa0;
}

/**
 * Checks an interface name the way the kernel's `dev_valid_name` does, on
 * its UTF-8 bytes, plus its rule for `%d` templates, so a bad name fails here
 * and not in an ioctl (where the kernel's EINVAL would not say why).
 */
export function validateInterfaceName(
  name: unknown,
  what = "Interface name",
): string {
  if (typeof name !== "string") {
    throw new TypeError(`${what} must be a string, got ${describe(name)}`);
  }
  const bytes = encoder.encode(name);
  if (bytes.length === 0) throw new RangeError(`${what} must not be empty`);
  if (bytes.length > IFNAMSIZ - 1) {
    throw new RangeError(
      `${what} ${quote(name)} is ${bytes.length} bytes long; the kernel allows at most ${
        IFNAMSIZ - 1
      }`,
    );
  }
  if (name === "." || name === "..") {
    throw new RangeError(`${what} must not be "." or ".."`);
  }
  const at = bytes.findIndex(refusedByte);
  if (at >= 0) {
    const byte = `0x${bytes[at].toString(16).padStart(2, "0").toUpperCase()}`;
    const character = characterAt(name, at);
    const codePoint = character.codePointAt(0)!;
    // A byte of a longer UTF-8 sequence: say which character holds it.
    const within = codePoint < 0x80
      ? ""
      : ` (in ${quote(character)}, U+${codePoint.toString(16).toUpperCase().padStart(4, "0")})`;
    throw new RangeError(
      `${what} ${quote(name)} contains the byte ${byte}${within}, which the kernel refuses: ` +
        `names may not contain "/", ":", NUL or a byte it counts as whitespace ` +
        `(0x09-0x0D, 0x20, 0xA0)`,
    );
  }
  const percent = name.indexOf("%");
  if (
    percent >= 0 &&
    (name[percent + 1] !== "d" || name.includes("%", percent + 2))
  ) {
    throw new RangeError(
      `${what} ${quote(name)} is not a valid template: it may hold "%d" once and no other "%"`,
    );
  }
  return name;
}

/** The character of `text` whose UTF-8 encoding holds byte `offset`. */
function characterAt(text: string, offset: number): string {
  let end = 0;
  for (const character of text) {
    end += encoder.encode(character).length;
    if (offset < end) return character;
  }
  return "";
}

/**
 * `text` in double quotes, with backslashes and quotes escaped and control
 * characters escaped as {@linkcode escapeControl} does.
 *
 * @example Quoting a device name for a message
 * ```ts
 * import { quote } from "./validate.ts";
 *
 * quote("tun\x1b[2J"); // "\"tun\\x1b[2J\""
 * ```
 */
export function quote(text: string): string {
  return `"${escapeControl(text.replace(/["\\]/g, "\\$&"))}"`;
}

/**
 * `text` with control and format characters (C0, DEL, C1, bidirectional
 * overrides, line separators) written as `\xHH` or `\uHHHH`, so that
 * printing it cannot move the cursor, recolour a terminal or reorder a line;
 * printable text, backslashes included, is left as it is.
 *
 * @example Printing a device name a stranger chose
 * ```ts
 * import { escapeControl } from "./validate.ts";
 *
 * escapeControl("evil\x1b]0;owned\x07"); // "evil\\x1b]0;owned\\x07"
 * ```
 */
export function escapeControl(text: string): string {
  return text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (character) => {
    const code = character.codePointAt(0)!;
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
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
