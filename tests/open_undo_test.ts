import { TunError, TunInterface } from "../mod.ts";
import { assert, assertEquals, assertStrictEquals } from "./assert.ts";
import { ipJson, kernelTest, sh, uniqueName } from "./kernel.ts";

// What `ip -d` shows of a device that a failed open() must leave as it was.
function snapshot(name: string) {
  const [link] = ipJson(`-d addr show dev ${name}`);
  return {
    info: link.linkinfo.info_data,
    mtu: link.mtu,
    up: link.flags.includes("UP"),
    txqlen: link.txqlen,
    addresses: link.addr_info.map((entry: { local: string; prefixlen: number }) =>
      `${entry.local}/${entry.prefixlen}`
    ),
  };
}

// Fails on its route: the gateway is on none of the device's networks.
function failingOpen(name: string, options: Parameters<typeof TunInterface.open>[0]): TunError {
  try {
    TunInterface.open({
      name,
      ...options,
      routes: [{ destination: "198.51.100.0/24", via: "203.0.113.254" }],
    }).close();
  } catch (error) {
    if (error instanceof TunError) return error;
    throw error;
  }
  throw new Error("open() succeeded; it was meant to fail on its route");
}

const changes = {
  packetInfo: true,
  vnetHeader: true,
  owner: 65534,
  group: 65534,
  mtu: 1400,
  addresses: ["192.0.2.1/24"],
  up: true,
};

kernelTest(
  "a failed open() of an existing device puts back its pi and vnet_hdr flags, owner and group",
  () => {
    const name = uniqueName("undo");
    TunInterface.open({ name, persist: true }).close();
    try {
      const before = snapshot(name);
      assertEquals(before.info.pi, false);
      assertStrictEquals(before.info.user, undefined);
      assertStrictEquals(failingOpen(name, changes).code, "ENETUNREACH");
      assertEquals(snapshot(name), before);
    } finally {
      TunInterface.destroy(name);
    }
  },
);

kernelTest(
  "a failed open() of a device with an owner, a group and headers puts every one back",
  () => {
    const name = uniqueName("undoown");
    TunInterface.open({
      name,
      mode: "tap",
      persist: true,
      packetInfo: true,
      owner: 1234,
      group: 4321,
      mtu: 1300,
    }).close();
    try {
      sh(`ip addr add 198.18.0.1/16 dev ${name}`);
      const before = snapshot(name);
      assertEquals([before.info.pi, before.info.vnet_hdr], [true, false]);
      assertEquals([before.info.user, before.info.group], ["1234", "4321"]);
      failingOpen(name, { ...changes, mode: "tap", packetInfo: false, addresses: undefined });
      assertEquals(snapshot(name), before);
      // Still usable as it was: the restoring attach detached again.
      using again = TunInterface.open({ name, mode: "tap", packetInfo: true });
      assert(again.packetInfo);
    } finally {
      TunInterface.destroy(name);
    }
  },
);

kernelTest(
  "a failed open() of a persistent multi-queue device with no queue puts back its flags",
  () => {
    const name = uniqueName("undomq");
    TunInterface.open({ name, persist: true, multiQueue: true }).close();
    try {
      const before = snapshot(name);
      failingOpen(name, { ...changes, multiQueue: true });
      assertEquals(snapshot(name), before);
    } finally {
      TunInterface.destroy(name);
    }
  },
);
