/**
 * Generators of the fuzz tests' configuration arguments: valid ones drawn
 * from the documentation ranges only, mixed with near misses and junk.
 *
 * @module
 */

import fc from "fast-check";
import { junk } from "./fuzz.ts";

/** CIDR text the library must refuse before any syscall (or the kernel must refuse). */
const badCidr = fc.oneof(
  fc.constantFrom(
    "",
    "192.0.2.1",
    "192.0.2.1/33",
    "192.0.2.1/-1",
    "192.0.2.256/24",
    "192.0.2.1/24 ",
    " 192.0.2.1/24",
    "192.0.2/24",
    "2001:db8::1/129",
    "2001:db8:::1/64",
    "2001:db8::1%lo/64",
    "::ffff:192.0.2.1/120",
    "0x1.2.3.4/8",
    "192.0.2.1/0x18",
    "192.0.2.1/24/24",
  ),
  fc.string({ maxLength: 24 }),
);

/** An address inside 192.0.2.0/24 or 2001:db8::/64. */
export const cidr: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 30 }), fc.constantFrom(24, 25, 32))
    .map(([host, length]) => `192.0.2.${host}/${length}`),
  fc.tuple(fc.integer({ min: 1, max: 30 }), fc.constantFrom(64, 128))
    .map(([host, length]) => `2001:db8::${host.toString(16)}/${length}`),
);

/** What `addAddress`/`removeAddress` get as their first argument. */
export const addressArgument: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: cidr, weight: 3 },
  { arbitrary: badCidr, weight: 2 },
  { arbitrary: junk, weight: 1 },
);

/** The options of `addAddress`: a peer of either family, junk, or none. */
export const addressOptions: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 4 },
  fc.record({ peer: fc.constantFrom("192.0.2.200", "2001:db8::c8", "192.0.2.999", "") }),
  junk,
);

/** An entry of `open()`'s `addresses`. */
export const addressEntry: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: cidr, weight: 4 },
  fc.record({ address: cidr, peer: fc.constantFrom("192.0.2.200", "2001:db8::c8", "x") }),
  badCidr,
  junk,
);

/** A destination in 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15 or 2001:db8:1::/48. */
const destination = fc.oneof(
  fc.constantFrom("198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15", "203.0.113.7/32"),
  fc.integer({ min: 0, max: 255 }).map((n) => `2001:db8:1:${n.toString(16)}::/64`),
);

/** What `addRoute`/`removeRoute` get as their first argument. */
export const routeArgument: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: destination, weight: 3 },
  { arbitrary: badCidr, weight: 2 },
  { arbitrary: junk, weight: 1 },
);

/** Route options: a gateway on or off the device's network, a metric, or junk. */
export const routeOptions: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 3 },
  fc.record(
    {
      via: fc.constantFrom("192.0.2.254", "2001:db8::fe", "198.51.100.1", "nope"),
      metric: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(-1, 2 ** 32, 0.5)),
    },
    { requiredKeys: [] },
  ),
  junk,
);

/** An entry of `open()`'s `routes`. */
export const routeEntry: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: destination, weight: 3 },
  fc.record(
    {
      destination: destination,
      via: fc.constantFrom("192.0.2.254", "2001:db8::fe", "nope"),
      metric: fc.oneof(fc.integer({ min: 0, max: 1000 }), junk),
    },
    { requiredKeys: ["destination"] },
  ),
  badCidr,
  junk,
);

/** A MAC address text: locally administered unicast, multicast, zero, or malformed. */
export const macArgument: fc.Arbitrary<unknown> = fc.oneof(
  {
    arbitrary: fc.uint8Array({ minLength: 5, maxLength: 5 }).map((bytes) =>
      ["02", ...[...bytes].map((b) => b.toString(16).padStart(2, "0"))].join(":")
    ),
    weight: 3,
  },
  fc.constantFrom(
    "01:00:5e:00:00:01",
    "00:00:00:00:00:00",
    "ff:ff:ff:ff:ff:ff",
    "02:00:00:00:00",
    "02:00:00:00:00:00:00",
    "02-00-00-00-00-01",
    "02:00:00:00:00:0g",
    "2:0:0:0:0:1",
  ),
  fc.string({ maxLength: 20 }),
  junk,
);

/** An integer setting: mostly in `[min, max]`, else an edge or junk. */
export function integerArgument(min: number, max: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: fc.integer({ min, max }), weight: 3 },
    fc.constantFrom(min - 1, max + 1, 2 ** 24, 2 ** 31, 2 ** 32, -(2 ** 31), 0.5, NaN),
    junk,
  );
}
