/**
 * Validators of builder options, shared by the packet modules so that every
 * builder words its errors alike. Internal: not exported from the package.
 *
 * `what` names the value in the message; a caller that reports errors as
 * "Cannot <action>: …" passes that prefix in it.
 *
 * @module
 */

import { formatIp, parseIp, parseMac } from "./address.ts";

const EMPTY = new Uint8Array(0);

/** Throws a `TypeError` unless `options` is an object. */
export function optionsObject(options: unknown, what: string): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${what} must be an object`);
  }
}

/** An integer `min..max`: a `TypeError` for a non-number, else a `RangeError`. */
export function integerOption(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== "number") {
    throw new TypeError(`${what} must be a number, got ${typeof value}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer ${min}..${max}, got ${value}`);
  }
  return value;
}

/** A boolean, or `fallback` when left out. */
export function booleanOption(value: unknown, what: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new TypeError(`${what} must be a boolean`);
  return value;
}

/** A Uint8Array, required. */
export function bytesArgument(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  return value;
}

/** A Uint8Array, or empty bytes when left out. */
export function bytesOption(value: unknown, what: string): Uint8Array {
  return value === undefined ? EMPTY : bytesArgument(value, what);
}

function addressBytes(value: unknown, what: string): Uint8Array {
  if (typeof value === "string") return parseIp(value);
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`${what} must be an address string or a Uint8Array`);
}

/** An IP address of either family: text, or 4 or 16 bytes. */
export function ipOption(value: unknown, what: string): Uint8Array {
  const bytes = addressBytes(value, what);
  if (bytes.length !== 4 && bytes.length !== 16) {
    throw new RangeError(`${what} must be 4 or 16 bytes long, got ${bytes.length}`);
  }
  return bytes;
}

/** An IP address of the family given; any other is a `TypeError`. */
export function addressOption(value: unknown, what: string, family: 4 | 6): Uint8Array {
  const bytes = addressBytes(value, what);
  if (bytes.length !== (family === 4 ? 4 : 16)) {
    throw new TypeError(
      `${what} must be an IPv${family} address, got ${
        bytes.length === 4 || bytes.length === 16 ? formatIp(bytes) : `${bytes.length} bytes`
      }`,
    );
  }
  return bytes;
}

/** A MAC address: text or 6 bytes. */
export function macOption(value: unknown, what: string): Uint8Array {
  if (typeof value === "string") return parseMac(value);
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${what} must be a MAC string or a Uint8Array`);
  }
  if (value.length !== 6) throw new RangeError(`${what} must be 6 bytes long, got ${value.length}`);
  return value;
}
