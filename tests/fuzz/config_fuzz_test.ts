/**
 * Fuzzes every configuration call of an open handle (a TUN and a TAP
 * device, and one closed handle) with valid and invalid arguments. Besides
 * the allowed outcomes, a call that fails must leave the device as it was,
 * and every call on the closed handle must fail.
 */
import fc from "fast-check";
import { TunInterface } from "../../mod.ts";
import { assert, assertEquals } from "../assert.ts";
import { kernelTest, sh, uniqueName } from "../kernel.ts";
import { fuzz, junk, outcome } from "./fuzz.ts";
import {
  addressArgument,
  addressOptions,
  integerArgument,
  macArgument,
  routeArgument,
  routeOptions,
} from "./arbitraries.ts";

/**
 * A device at 192.0.2.1/24, up, with IPv6 on but no address of its own
 * (no link-local, no duplicate address detection) so its state changes only
 * by the calls made.
 */
function configDevice(mode: "tun" | "tap"): TunInterface {
  const tun = TunInterface.open({ name: uniqueName(`fzc${mode}`), mode });
  try {
    sh(
      `sysctl -qw net.ipv6.conf.${tun.name}.addr_gen_mode=1 net.ipv6.conf.${tun.name}.accept_dad=0`,
    );
    tun.addAddress("192.0.2.1/24");
    tun.up();
    return tun;
  } catch (error) {
    tun.close();
    throw error;
  }
}

// An MTU below 1280 drops the device's IPv6 state; raising it again makes a
// fresh one with the default sysctls, whose link-local address (and its
// route) the kernel adds on its own, after duplicate address detection: not
// something a call did.
const kernelMade = (cidr: string) => cidr.startsWith("fe80:");

/** What a configuration call may change. */
function snapshot(tun: TunInterface) {
  return {
    mtu: tun.mtu,
    up: tun.isUp,
    addresses: tun.addresses().filter((cidr) => !kernelMade(cidr)).sort(),
    routes: tun.routes().filter((route) => !kernelMade(route.destination))
      .map((route) => JSON.stringify(route)).sort(),
    txQueueLength: tun.txQueueLength,
    mac: tun.mode === "tap" ? tun.mac : "",
  };
}

/**
 * The state once the kernel's follow-up work is done: after an IPv6 address
 * is added (its prefix or peer route) or the device comes up, the kernel
 * finishes from a work queue a moment after the call returned.
 */
async function settled(tun: TunInterface) {
  let state = JSON.stringify(snapshot(tun));
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    const again = JSON.stringify(snapshot(tun));
    if (again === state) break;
    state = again;
  }
  return snapshot(tun);
}
const settles = new Set(["addAddress", "up", "setMtu"]);

type Target = "tun" | "tap" | "closed";
const target = fc.constantFrom<Target>("tun", "tun", "tap", "tap", "closed");

/** The entry points and their arguments. */
const calls: Record<string, fc.Arbitrary<unknown[]>> = {
  setMtu: fc.tuple(integerArgument(68, 9000)),
  addAddress: fc.tuple(addressArgument, addressOptions),
  removeAddress: fc.tuple(addressArgument),
  addRoute: fc.tuple(routeArgument, routeOptions),
  removeRoute: fc.tuple(routeArgument, routeOptions),
  setMac: fc.tuple(macArgument),
  setTxQueueLength: fc.tuple(integerArgument(0, 10_000)),
  setCarrier: fc.tuple(fc.oneof({ arbitrary: fc.boolean(), weight: 4 }, junk)),
  // up() and down() share an entry point, half the runs each; they take no argument.
  "up/down": fc.array(junk, { maxLength: 1 }),
};

kernelTest(
  "fuzz: configuration calls only succeed or throw TypeError, RangeError or TunError; a failed call changes nothing",
  async () => {
    const handles = {
      tun: configDevice("tun"),
      tap: configDevice("tap"),
      closed: configDevice("tun"),
    };
    handles.closed.close();
    // Each open device's state as the last call that succeeded left it.
    const states = { tun: snapshot(handles.tun), tap: snapshot(handles.tap) };
    try {
      for (const [entryPoint, args] of Object.entries(calls)) {
        const methods = entryPoint === "up/down"
          ? fc.constantFrom("up", "down")
          : fc.constant(entryPoint);
        await fuzz(
          entryPoint,
          fc.tuple(target, methods, args),
          async ([which, name, given]) => {
            const tun = handles[which];
            const call = (tun as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
            const { error } = await outcome(() => call.apply(tun, given));
            if (which === "closed") {
              assert(error !== undefined, `${name} succeeded on a closed handle`);
            } else if (error !== undefined) {
              const now = snapshot(tun);
              assertEquals(
                now,
                states[which],
                `${error}: ${JSON.stringify(now)} was ${JSON.stringify(states[which])}`,
              );
            } else {
              states[which] = settles.has(name) ? await settled(tun) : snapshot(tun);
            }
          },
        );
      }
    } finally {
      handles.tun.close();
      handles.tap.close();
    }
  },
);
