import { TunError, TunInterface, type TunMode } from "../mod.ts";
import { assertEquals, assertStrictEquals } from "./assert.ts";
import { ipJson, kernelTest, sh, uniqueName } from "./kernel.ts";

// Every configuration call of a handle, each with arguments that would
// change a device that has them.
function configurationCalls(tun: TunInterface): [string, () => unknown][] {
  return [
    ["setMtu", () => tun.setMtu(1400)],
    ["up", () => tun.up()],
    ["down", () => tun.down()],
    ["addAddress", () => tun.addAddress("192.0.2.9/24")],
    ["removeAddress", () => tun.removeAddress("198.51.100.1/24")],
    ["addRoute", () => tun.addRoute("203.0.113.0/24")],
    ["removeRoute", () => tun.removeRoute("198.51.100.0/24")],
    ["setTxQueueLength", () => tun.setTxQueueLength(77)],
    ["setCarrier", () => tun.setCarrier(false)],
    ["setMac", () => tun.setMac("02:00:5e:00:53:99")],
    ["mtu", () => tun.mtu],
    ["isUp", () => tun.isUp],
    ["txQueueLength", () => tun.txQueueLength],
    ["mac", () => tun.mac],
    ["addresses", () => tun.addresses()],
    ["routes", () => tun.routes()],
  ];
}

function veth(name: string) {
  const [link] = ipJson(`-d addr show dev ${name}`);
  const routes = ipJson(`route show dev ${name}`);
  return { link, routes };
}

for (const mode of ["tap", "tun"] as TunMode[]) {
  kernelTest(
    `a ${mode.toUpperCase()} handle whose device was deleted fails every configuration call ` +
      `with ENODEV and leaves the veth now at its index untouched`,
    () => {
      using tun = TunInterface.open({ name: uniqueName(`stale${mode}`), mode });
      const index = tun.index;
      const stranger = uniqueName("vstr");
      sh(`ip link del ${tun.name}`);
      sh(`ip link add name ${stranger} index ${index} type veth peer name ${stranger}p`);
      try {
        sh(`ip addr add 198.51.100.1/24 dev ${stranger} && ip link set ${stranger} up`);
        const before = veth(stranger);
        assertStrictEquals(before.link.ifindex, index);
        for (const [call, run] of configurationCalls(tun)) {
          if (mode === "tun" && (call === "setMac" || call === "mac")) continue;
          let code: string | undefined;
          try {
            run();
          } catch (error) {
            if (!(error instanceof TunError)) throw error;
            code = error.code;
          }
          assertStrictEquals(code, "ENODEV", `${call} on a stale handle`);
        }
        assertEquals(veth(stranger), before);
      } finally {
        sh(`ip link del ${stranger}`);
      }
    },
  );
}

kernelTest(
  "a stale handle's error says the device was deleted, and after close() calls are EBADF",
  () => {
    using tun = TunInterface.open({ name: uniqueName("stalemsg") });
    const index = tun.index;
    sh(`ip link del ${tun.name}`);
    let message = "";
    try {
      tun.setMtu(1400);
    } catch (error) {
      message = (error as Error).message;
    }
    assertStrictEquals(
      message,
      `Cannot set the MTU of TUN device "${tun.name}" to 1400: ENODEV (no such device): ` +
        "the device was deleted; open it again to recreate it",
    );
    tun.close();
    // Not an error to close after the device went away, and closed wins.
    let code: string | undefined;
    try {
      tun.up();
    } catch (error) {
      code = (error as TunError).code;
    }
    assertStrictEquals(code, "EBADF");
    assertEquals(
      ipJson(`link show`).some((link: { ifindex: number }) => link.ifindex === index),
      false,
    );
  },
);
