/**
 * Validators of builder options, shared by the packet modules so that every
 * builder words its errors alike. Internal: not exported from the package.
 *
 * `what` names the value in the message. A caller that reports errors as
 * "Cannot <action>: …" passes `action` too rather than a prefixed `what`:
 * the message is then built only when it is thrown, which matters to the
 * rewriters, which validate their arguments for every packet.
 *
 * @module
 */

import { formatIp, parseIp, parseMac } from "./address.ts";

const EMPTY = new Uint8Array(0);

function label(what: string, action: string | undefined): string {
  return action === undefined ? what : `Cannot ${action}: ${what}`;
}

/** Throws a `TypeError` unless `options` is an object. */
export function optionsObject(options: unknown, what: string, action?: string): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${label(what, action)} must be an object`);
  }
}

/** An integer `min..max`: a `TypeError` for a non-number, else a `RangeError`. */
export function integerOption(
  value: unknown,
  what: string,
  min: number,
  max: number,
  action?: string,
): number {
  if (typeof value !== "number") {
    throw new TypeError(`${label(what, action)} must be a number, got ${typeof value}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${label(what, action)} must be an integer ${min}..${max}, got ${value}`);
  }
  return value;
}

/** A boolean, or `fallback` when left out. */
export function booleanOption(
  value: unknown,
  what: string,
  fallback: boolean,
  action?: string,
): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new TypeError(`${label(what, action)} must be a boolean`);
  return value;
}

/** A Uint8Array, required. */
export function bytesArgument(value: unknown, what: string, action?: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${label(what, action)} must be a Uint8Array`);
  }
  return value;
}

/** A Uint8Array, or empty bytes when left out. */
export function bytesOption(value: unknown, what: string): Uint8Array {
  return value === undefined ? EMPTY : bytesArgument(value, what);
}

function addressBytes(value: unknown, what: string, action?: string): Uint8Array {
  if (typeof value === "string") return parseIp(value);
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`${label(what, action)} must be an address string or a Uint8Array`);
}

/** An IP address of either family: text, or 4 or 16 bytes. */
export function ipOption(value: unknown, what: string, action?: string): Uint8Array {
  const bytes = addressBytes(value, what, action);
  if (bytes.length !== 4 && bytes.length !== 16) {
    throw new RangeError(`${label(what, action)} must be 4 or 16 bytes long, got ${bytes.length}`);
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
