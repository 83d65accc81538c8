import { tunDeviceDetails, tunDeviceInfo, TunInterface } from "../mod.ts";
import { assert, assertEquals, assertStrictEquals } from "./assert.ts";
import { listOnTerminal, tuntap, waitFor } from "./cli_run.ts";
import { interfaceExists, ipJson, kernelTest, sh, uniqueName } from "./kernel.ts";

/** State as `ip -j link show` prints it: its flags and operstate. */
function ipState(name: string): { flags: string[]; operstate: string } {
  return ipJson(`link show dev ${name}`)[0];
}

/** The STATE cell of `tuntap list` for `name` (columns are two or more spaces apart). */
function listedState(name: string): string {
  const result = tuntap("list");
  assertStrictEquals(result.code, 0, result.stderr);
  const row = result.stdout.split("\n").find((line) => line.startsWith(`${name} `));
  assert(row, result.stdout);
  return row.split(/ {2,}/)[2];
}

/** The state of `name` as tuntap reports it and as ip does. */
function states(name: string) {
  const { up, carrier, operState } = tunDeviceInfo(name);
  const ip = ipState(name);
  return {
    tuntap: { up, carrier, operState },
    ip: {
      up: ip.flags.includes("UP"),
      // ip speaks of the carrier of a device that is up only.
      lowerUp: ip.flags.includes("LOWER_UP"),
      noCarrier: ip.flags.includes("NO-CARRIER"),
      operState: ip.operstate,
    },
  };
}

kernelTest(
  "a persistent device with nobody attached reads up, no carrier, DOWN, as ip shows it",
  async () => {
    const name = uniqueName("state");
    TunInterface.open({ name, persist: true, up: true }).close();
    using _device = { [Symbol.dispose]: () => void sh(`ip link del ${name}`) };
    // The kernel settles the operational state up to a second after the carrier drops.
    await waitFor(() => tunDeviceInfo(name).operState === "DOWN", "operstate DOWN", 5000);
    assertEquals(states(name), {
      tuntap: { up: true, carrier: false, operState: "DOWN" },
      ip: { up: true, lowerUp: false, noCarrier: true, operState: "DOWN" },
    });
    assertStrictEquals(listedState(name), "up, no carrier");
    const shown = tuntap("show", name);
    assert(/\nstate +up, no carrier\noperstate +DOWN\n/.test(shown.stdout), shown.stdout);
    const json = JSON.parse(tuntap("show", name, "--json").stdout);
    assertEquals([json.up, json.carrier, json.operState], [true, false, "DOWN"]);

    // Attached: the carrier comes at once, and with it the operational state.
    using tun = TunInterface.open({ name });
    await waitFor(() => tunDeviceInfo(name).operState === "UP", "operstate UP", 5000);
    assertEquals(states(name), {
      tuntap: { up: true, carrier: true, operState: "UP" },
      ip: { up: true, lowerUp: true, noCarrier: false, operState: "UP" },
    });
    assertStrictEquals(listedState(name), "up");

    // Down but attached: the carrier stays, ip no longer speaks of it.
    tun.down();
    await waitFor(() => tunDeviceInfo(name).operState === "DOWN", "operstate DOWN", 5000);
    assertEquals(states(name), {
      tuntap: { up: false, carrier: true, operState: "DOWN" },
      ip: { up: false, lowerUp: false, noCarrier: false, operState: "DOWN" },
    });
    assertStrictEquals(listedState(name), "down");
    assertEquals(
      [tunDeviceDetails(name).carrier, tunDeviceDetails(name).operState],
      [true, "DOWN"],
    );
  },
);

kernelTest("a holder that drops the carrier makes the device read no carrier", async () => {
  using tun = TunInterface.open({ name: uniqueName("statecar"), up: true });
  tun.setCarrier(false);
  await waitFor(() => tunDeviceInfo(tun.name).operState === "DOWN", "operstate DOWN", 5000);
  assertEquals(states(tun.name).ip, {
    up: true,
    lowerUp: false,
    noCarrier: true,
    operState: "DOWN",
  });
  assertEquals(tunDeviceInfo(tun.name).carrier, false);
  tun.setCarrier(true);
  await waitFor(() => tunDeviceInfo(tun.name).operState === "UP", "operstate UP", 5000);
  assertEquals(states(tun.name).ip.lowerUp, true);
  assertEquals(tunDeviceInfo(tun.name).carrier, true);
});

kernelTest(
  "tuntap list paints up, no carrier in yellow on a terminal, and not with NO_COLOR",
  () => {
    const name = uniqueName("statecol");
    TunInterface.open({ name, persist: true, up: true }).close();
    try {
      const onTerminal = listOnTerminal;
      assert(onTerminal({}).includes("\x1b[33mup, no carrier\x1b[39m"), "yellow on a terminal");
      assert(!onTerminal({ NO_COLOR: "1" }).includes("\x1b["), "no colour with NO_COLOR");
    } finally {
      if (interfaceExists(name)) sh(`ip link del ${name}`);
    }
  },
);
