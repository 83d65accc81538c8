/**
 * Fuzzes `TunInterface.open` with option objects of valid and invalid keys
 * and values. Most inputs fail validation at once (no syscall); about a
 * quarter reach the kernel and create, configure and close a device (or
 * are refused by it).
 */
import fc from "fast-check";
import { TunInterface } from "../../mod.ts";
import { kernelTest, uniqueName } from "../kernel.ts";
import { fuzz, junk, outcome } from "./fuzz.ts";
import { addressEntry, cidr, routeEntry } from "./arbitraries.ts";

/** Stands for a name no device has yet, made when the run starts. */
const FRESH = Symbol("fresh name");

const name = fc.oneof(
  { arbitrary: fc.constant(FRESH), weight: 12 },
  // A kernel template, names the kernel refuses, and one that is not a TUN device.
  fc.constantFrom(
    "fzo%d",
    "",
    ".",
    "..",
    "a/b",
    "a b",
    "a:b",
    "tunà",
    "x".repeat(16),
    "%d%d",
    "lo",
  ),
  fc.string({ maxLength: 18 }),
);

const id = fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constant(2 ** 32 - 2));

/** Offloads as documented: segmentation ones only with checksum. */
const offload = fc.record(
  {
    checksum: fc.boolean(),
    tso4: fc.boolean(),
    tso6: fc.boolean(),
    ecn: fc.boolean(),
    uso4: fc.boolean(),
    uso6: fc.boolean(),
  },
  { requiredKeys: [] },
).map((o) => (o.tso4 || o.tso6 || o.ecn || o.uso4 || o.uso6) ? { ...o, checksum: true } : o);

/** Options whose every key has a value of the right type (the kernel may still refuse). */
const validOptions = fc.record(
  {
    name,
    mode: fc.constantFrom("tun", "tap"),
    packetInfo: fc.boolean(),
    vnetHeader: fc.boolean(),
    multiQueue: fc.boolean(),
    persist: fc.boolean(),
    exclusive: fc.boolean(),
    owner: id,
    group: id,
    offload,
    busyPoll: fc.integer({ min: 0, max: 1000 }),
    addresses: fc.array(cidr, { maxLength: 3 }),
    routes: fc.array(routeEntry, { maxLength: 2 }),
    mtu: fc.oneof(fc.integer({ min: 1280, max: 9000 }), fc.integer({ min: 68, max: 65535 })),
    up: fc.boolean(),
  },
  { requiredKeys: [] },
).map((o) => o.offload ? { ...o, vnetHeader: true } : o);

const keys = [
  "name",
  "mode",
  "packetInfo",
  "vnetHeader",
  "multiQueue",
  "persist",
  "exclusive",
  "owner",
  "group",
  "offload",
  "busyPoll",
  "addresses",
  "routes",
  "mtu",
  "up",
  // Misspelt and unknown keys.
  "nmae",
  "mdoe",
  "addrs",
  "__proto__x",
];

/** Values that look right but are not: wrong entries, out-of-range numbers. */
const nearMiss = fc.oneof(
  fc.array(addressEntry, { minLength: 1, maxLength: 3 }),
  fc.record({ checksum: fc.constant(false), tso4: fc.constant(true) }),
  fc.record({ cksum: fc.boolean() }),
  fc.constantFrom(-1, 0, 65536, 1_000_001, 2 ** 32, 0.5, "tun", "1500"),
);

const input = fc.oneof(
  { arbitrary: validOptions, weight: 7 },
  // One key with a wrong value (or an unknown key) beside valid ones.
  {
    arbitrary: fc.tuple(validOptions, fc.constantFrom(...keys), fc.oneof(junk, nearMiss))
      .map(([valid, key, value]) => ({ ...valid, [key]: value })),
    weight: 7,
  },
  { arbitrary: junk, weight: 1 },
  { arbitrary: fc.object({ maxDepth: 1 }), weight: 1 },
);

kernelTest(
  "fuzz: open() with arbitrary options only succeeds or throws TypeError, RangeError or TunError, leaving no fd and no device",
  async () => {
    // The first device opened creates what the library keeps for good (its netlink socket).
    TunInterface.open({ name: uniqueName("fzo"), addresses: ["192.0.2.1/24"] }).close();
    let persistent: string[] = [];
    await fuzz("TunInterface.open", input, (generated) => {
      persistent = [];
      let given: unknown = generated;
      if (typeof generated === "object" && generated !== null && "name" in generated) {
        given = {
          ...generated,
          name: generated.name === FRESH ? uniqueName("fzo") : generated.name,
        };
      }
      return outcome(() => {
        const tun = TunInterface.open(given as Parameters<typeof TunInterface.open>[0]);
        tun.close();
        if ((given as { persist?: unknown } | undefined)?.persist === true) {
          persistent.push(tun.name);
        }
      }).then(() => {});
    }, {
      expectedDevices: () => persistent,
      removeDevice: (device) => TunInterface.destroy(device),
    });
  },
);
