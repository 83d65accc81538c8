import { TunError, TunInterface, type TunOpenOptions, type TunRoute } from "../mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "./assert.ts";
import {
  interfaceExists,
  ipJson,
  kernelTest,
  readUntil,
  runScript,
  sh,
  uniqueName,
} from "./kernel.ts";

const encoder = new TextEncoder();

interface IpAddress {
  family: "inet" | "inet6";
  local: string;
  address?: string;
  prefixlen: number;
  nodad?: boolean;
  tentative?: boolean;
}

/** `ip addr show dev NAME` as CIDR strings, sorted. */
function ipAddresses(name: string): string[] {
  const [link] = ipJson<{ addr_info: IpAddress[] }[]>(`addr show dev ${name}`);
  return link.addr_info.map((info) => `${info.local}/${info.prefixlen}`).sort();
}

function ipAddressInfo(name: string, local: string): IpAddress | undefined {
  const [link] = ipJson<{ addr_info: IpAddress[] }[]>(`addr show dev ${name}`);
  return link.addr_info.find((info) => info.local === local);
}

/** `ip route show dev NAME` and `ip -6 route show dev NAME`, in routes()' form, sorted. */
function ipRoutes(name: string): TunRoute[] {
  const routes: TunRoute[] = [];
  for (const [family, width, any] of [["-4", 32, "0.0.0.0/0"], ["-6", 128, "::/0"]] as const) {
    for (const entry of ipJson(`${family} route show dev ${name}`)) {
      const destination = entry.dst === "default"
        ? any
        : entry.dst.includes("/")
        ? entry.dst
        : `${entry.dst}/${width}`;
      const route: TunRoute = { destination };
      if (entry.gateway) route.via = entry.gateway;
      if (entry.metric !== undefined) route.metric = entry.metric;
      routes.push(route);
    }
  }
  return sortRoutes(routes);
}

function sortRoutes(routes: TunRoute[]): TunRoute[] {
  return routes.sort((a, b) => a.destination.localeCompare(b.destination));
}

// deno-lint-ignore no-explicit-any
function ipLink(name: string): any {
  return ipJson(`link show dev ${name}`)[0];
}

/** Sends one UDP datagram from a socket bound to `source` (port 9 of `destination`). */
async function sendFrom(source: string, destination: string, text: string): Promise<void> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: source, port: 0 });
  try {
    await socket.send(encoder.encode(text), { transport: "udp", hostname: destination, port: 9 });
  } finally {
    socket.close();
  }
}

function bytesEqual(a: Uint8Array, b: readonly number[]): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** What `open(options)` throws; a handle it unexpectedly returns is closed. */
function openError(options: TunOpenOptions): unknown {
  try {
    TunInterface.open(options).close();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Checks the error is a TunError with this errno, call and message start. */
function assertTunError(error: unknown, code: string, syscall: string, message: RegExp): true {
  assert(error instanceof TunError, `expected a TunError, got ${error}`);
  assertStrictEquals(error.code, code);
  assertStrictEquals(error.syscall, syscall);
  assertMatch(error.message, message);
  return true;
}

kernelTest(
  "open() with addresses and up: true configures the device as ip reports it, link-local included",
  () => {
    const name = uniqueName("cfgopen");
    using tun = TunInterface.open({
      name,
      addresses: ["192.0.2.1/24", "2001:db8::1/64", {
        address: "198.51.100.1/32",
        peer: "198.51.100.2",
      }],
      mtu: 1400,
      up: true,
    });
    const link = ipLink(name);
    assertStrictEquals(tun.index, link.ifindex);
    assert(link.flags.includes("UP"), `flags ${link.flags}`);
    assertStrictEquals(link.mtu, 1400);
    assertStrictEquals(tun.mtu, 1400);
    assertStrictEquals(tun.isUp, true);
    const listed = tun.addresses();
    assertEquals([...listed].sort(), ipAddresses(name));
    for (const cidr of ["192.0.2.1/24", "2001:db8::1/64", "198.51.100.1/32"]) {
      assert(listed.includes(cidr), `${cidr} missing from ${listed}`);
    }
    assert(listed.some((cidr) => cidr.startsWith("fe80::")), `no link-local in ${listed}`);
  },
);

kernelTest(
  "a UDP datagram sent from the address open() added is routed into the device, with no ip call",
  async () => {
    using tun = TunInterface.open({
      name: uniqueName("cfgudp4"),
      addresses: ["198.18.0.1/24"],
      routes: ["203.0.113.0/24"],
      up: true,
    });
    await sendFrom("198.18.0.1", "203.0.113.5", "hello");
    const packet = await readUntil(
      tun,
      (p) => p[0] >> 4 === 4 && p[9] === 17 && bytesEqual(p.subarray(16, 20), [203, 0, 113, 5]),
    );
    assert(bytesEqual(packet.subarray(12, 16), [198, 18, 0, 1]), "source is the device's address");
    assertEquals([...packet.subarray(28)], [...encoder.encode("hello")]);
  },
);

kernelTest(
  "an IPv6 address open() added is usable at once (nodad) and a datagram is routed into the device",
  async () => {
    const name = uniqueName("cfgudp6");
    using tun = TunInterface.open({
      name,
      addresses: ["2001:db8::1/64"],
      routes: ["2001:db8:1::/64"],
      up: true,
    });
    const info = ipAddressInfo(name, "2001:db8::1");
    assertStrictEquals(info?.nodad, true);
    assertStrictEquals(info?.tentative, undefined);
    // Binding would fail with EADDRNOTAVAIL while the address is tentative.
    await sendFrom("2001:db8::1", "2001:db8:1::5", "hello");
    const packet = await readUntil(
      tun,
      (p) => p[0] >> 4 === 6 && p[6] === 17 && p[39] === 5 && p[24] === 0x20,
    );
    assertEquals([...packet.subarray(48)], [...encoder.encode("hello")]);
  },
);

kernelTest("addAddress and removeAddress change what ip addr shows, for both families", () => {
  const name = uniqueName("cfgaddr");
  using tun = TunInterface.open({ name });
  tun.addAddress("192.0.2.1/24");
  tun.addAddress("2001:db8::1/64");
  tun.addAddress("198.51.100.9");
  assertEquals(ipAddresses(name), ["192.0.2.1/24", "198.51.100.9/32", "2001:db8::1/64"]);
  assertEquals(tun.addresses(), ["192.0.2.1/24", "198.51.100.9/32", "2001:db8::1/64"]);
  tun.removeAddress("192.0.2.1/24");
  tun.removeAddress("2001:db8:0::1/64");
  assertEquals(ipAddresses(name), ["198.51.100.9/32"]);
  assertEquals(tun.addresses(), ["198.51.100.9/32"]);
});

kernelTest("addAddress with a peer sets the local address and the peer as ip shows them", () => {
  const name = uniqueName("cfgpeer");
  using tun = TunInterface.open({ name, up: true });
  tun.addAddress("192.0.2.1/32", { peer: "192.0.2.2" });
  tun.addAddress("2001:db8::1/128", { peer: "2001:db8::2" });
  const v4 = ipAddressInfo(name, "192.0.2.1");
  assertStrictEquals(v4?.address, "192.0.2.2");
  assertStrictEquals(v4?.prefixlen, 32);
  const v6 = ipAddressInfo(name, "2001:db8::1");
  assertStrictEquals(v6?.address, "2001:db8::2");
  assert(tun.addresses().includes("192.0.2.1/32"));
  assert(tun.addresses().includes("2001:db8::1/128"));
  // The kernel routes the peer through the device.
  assert(tun.routes().some((route) => route.destination === "192.0.2.2/32"));
  tun.removeAddress("192.0.2.1/32");
  assertStrictEquals(ipAddressInfo(name, "192.0.2.1"), undefined);
});

kernelTest(
  "addRoute and removeRoute change what ip route shows, with gateway and metric, both families",
  () => {
    const name = uniqueName("cfgroute");
    using tun = TunInterface.open({
      name,
      addresses: ["192.0.2.1/24", "2001:db8::1/64"],
      up: true,
    });
    tun.addRoute("198.51.100.0/24");
    tun.addRoute("198.18.0.0/15", { via: "192.0.2.254", metric: 7 });
    tun.addRoute("203.0.113.9");
    tun.addRoute("0.0.0.0/0", { via: "192.0.2.254", metric: 100 });
    tun.addRoute("2001:db8:1::/48");
    tun.addRoute("2001:db8:2::/48", { via: "2001:db8::fe", metric: 5 });
    const routes = sortRoutes(tun.routes());
    assertEquals(routes, ipRoutes(name));
    for (
      const expected of [
        { destination: "192.0.2.0/24" }, // the kernel's, for the address
        { destination: "198.51.100.0/24" },
        { destination: "198.18.0.0/15", via: "192.0.2.254", metric: 7 },
        { destination: "203.0.113.9/32" },
        { destination: "0.0.0.0/0", via: "192.0.2.254", metric: 100 },
        { destination: "2001:db8:1::/48", metric: 1024 },
        { destination: "2001:db8:2::/48", via: "2001:db8::fe", metric: 5 },
      ]
    ) {
      assert(
        routes.some((route) => JSON.stringify(route) === JSON.stringify(expected)),
        `${JSON.stringify(expected)} missing from ${JSON.stringify(routes)}`,
      );
    }
    // Local, broadcast and multicast routes live in the local table.
    assert(!routes.some((route) => route.destination.startsWith("ff00::")));
    assert(!routes.some((route) => route.destination === "192.0.2.1/32"));
    tun.removeRoute("198.51.100.0/24");
    tun.removeRoute("198.18.0.0/15", { via: "192.0.2.254", metric: 7 });
    tun.removeRoute("0.0.0.0/0");
    tun.removeRoute("2001:db8:2::/48", { via: "2001:db8::fe" });
    const after = sortRoutes(tun.routes());
    assertEquals(after, ipRoutes(name));
    for (const gone of ["198.51.100.0/24", "198.18.0.0/15", "0.0.0.0/0", "2001:db8:2::/48"]) {
      assert(!after.some((route) => route.destination === gone), `${gone} is still there`);
    }
  },
);

kernelTest("setMtu, up, down and setTxQueueLength agree with ip link", () => {
  const name = uniqueName("cfglink");
  using tun = TunInterface.open({ name });
  assertStrictEquals(tun.isUp, false);
  assertStrictEquals(tun.mtu, ipLink(name).mtu);
  tun.setMtu(9000);
  assertStrictEquals(ipLink(name).mtu, 9000);
  assertStrictEquals(tun.mtu, 9000);
  tun.up();
  assert(ipLink(name).flags.includes("UP"));
  assertStrictEquals(tun.isUp, true);
  tun.down();
  assert(!ipLink(name).flags.includes("UP"));
  assertStrictEquals(tun.isUp, false);
  tun.setTxQueueLength(1234);
  assertStrictEquals(ipLink(name).txqlen, 1234);
  assertStrictEquals(tun.txQueueLength, 1234);
  tun.setTxQueueLength(0);
  assertStrictEquals(tun.txQueueLength, 0);
});

kernelTest("mac and setMac on a TAP device agree with ip link", () => {
  const name = uniqueName("cfgmac");
  using tap = TunInterface.open({ name, mode: "tap" });
  assertStrictEquals(tap.mac, ipLink(name).address);
  tap.setMac("02:00:5E:10:00:01");
  assertStrictEquals(ipLink(name).address, "02:00:5e:10:00:01");
  assertStrictEquals(tap.mac, "02:00:5e:10:00:01");
  tap.up();
  tap.setMac("02-00-5e-10-00-02");
  assertStrictEquals(tap.mac, "02:00:5e:10:00:02");
});

kernelTest("mac and setMac on a TUN device throw a TypeError that says why", () => {
  using tun = TunInterface.open({ name: uniqueName("cfgnomac") });
  const why = /TUN device ".*" (has no|cannot have a) MAC address: .*only TAP devices/;
  assertThrows(
    () => tun.mac,
    (error: unknown) => error instanceof TypeError && why.test(error.message),
  );
  assertThrows(
    () => tun.setMac("02:00:5e:10:00:01"),
    (error: unknown) => error instanceof TypeError && why.test(error.message),
  );
});

kernelTest("setCarrier(false) makes ip report NO-CARRIER and setCarrier(true) clears it", () => {
  const name = uniqueName("cfgcarr");
  using tun = TunInterface.open({ name, up: true });
  tun.setCarrier(false);
  assert(ipLink(name).flags.includes("NO-CARRIER"));
  tun.setCarrier(true);
  assert(!ipLink(name).flags.includes("NO-CARRIER"));
  assert(ipLink(name).flags.includes("LOWER_UP"));
});

kernelTest("adding an address the device has fails with EEXIST naming the call and address", () => {
  const name = uniqueName("cfgeexist");
  using tun = TunInterface.open({ name, addresses: ["192.0.2.1/24", "2001:db8::1/64"] });
  assertThrows(
    () => tun.addAddress("192.0.2.1/24"),
    (error: unknown) =>
      assertTunError(
        error,
        "EEXIST",
        "netlink(RTM_NEWADDR)",
        new RegExp(
          `^Cannot add address 192\\.0\\.2\\.1/24 to TUN device "${name}": EEXIST \\(file exists\\)`,
        ),
      ),
  );
  assertThrows(
    () => tun.addAddress("2001:db8::1/64"),
    (error: unknown) =>
      assertTunError(error, "EEXIST", "netlink(RTM_NEWADDR)", /add address 2001:db8::1\/64/),
  );
});

kernelTest("an IPv4 route through a device that is down fails with ENETDOWN", () => {
  using tun = TunInterface.open({ name: uniqueName("cfgdown"), addresses: ["192.0.2.1/24"] });
  assertThrows(
    () => tun.addRoute("198.51.100.0/24"),
    (error: unknown) => assertTunError(error, "ENETDOWN", "netlink(RTM_NEWROUTE)", /bring it up/),
  );
});

kernelTest("removing an address the device lacks fails with EADDRNOTAVAIL", () => {
  const name = uniqueName("cfgnoaddr");
  using tun = TunInterface.open({ name, addresses: ["192.0.2.1/24"] });
  for (const cidr of ["192.0.2.2/24", "192.0.2.1/25", "2001:db8::1/64"]) {
    assertThrows(
      () => tun.removeAddress(cidr),
      (error: unknown) =>
        assertTunError(
          error,
          "EADDRNOTAVAIL",
          "netlink(RTM_DELADDR)",
          new RegExp(`^Cannot remove address ${cidr.replaceAll(".", "\\.")} from TUN device`),
        ),
    );
  }
  assertEquals(ipAddresses(name), ["192.0.2.1/24"]);
});

kernelTest(
  "a route via an off-link gateway fails with ENETUNREACH; a missing one with ESRCH",
  () => {
    const name = uniqueName("cfgunreach");
    using tun = TunInterface.open({ name, addresses: ["192.0.2.1/24"], up: true });
    assertThrows(
      () => tun.addRoute("198.51.100.0/24", { via: "203.0.113.1" }),
      (error: unknown) =>
        assertTunError(
          error,
          "ENETUNREACH",
          "netlink(RTM_NEWROUTE)",
          /^Cannot add route 198\.51\.100\.0\/24 via 203\.0\.113\.1 to TUN device .*gateway/,
        ),
    );
    tun.addRoute("198.51.100.0/24");
    assertThrows(
      () => tun.addRoute("198.51.100.0/24"),
      (error: unknown) => assertTunError(error, "EEXIST", "netlink(RTM_NEWROUTE)", /add route/),
    );
    assertThrows(
      () => tun.removeRoute("203.0.113.0/24"),
      (error: unknown) => assertTunError(error, "ESRCH", "netlink(RTM_DELROUTE)", /remove route/),
    );
  },
);

kernelTest(
  "bad CIDR, address, MAC and number arguments throw TypeError or RangeError before any syscall",
  () => {
    const tap = TunInterface.open({ name: uniqueName("cfgbad"), mode: "tap" });
    // Closed, so any argument that reached a syscall would fail with EBADF.
    tap.close();
    const cases: [() => unknown, ErrorConstructor, RegExp][] = [
      [() => tap.addAddress("192.0.2.300/24"), RangeError, /"300"/],
      [() => tap.addAddress("2001:db8::1/129"), RangeError, /129/],
      [() => tap.addAddress("192.0.2.1/"), TypeError, /prefix/],
      [() => tap.addAddress("192.0.2/24"), TypeError, /192\.0\.2/],
      [() => tap.addAddress("2001:db8::g/64"), TypeError, /"g"/],
      [() => tap.addAddress("192.0.2.1/24", { peer: "2001:db8::2" }), TypeError, /same family/],
      [() => tap.addAddress("192.0.2.1/24", { peer: "192.0.2.256" }), RangeError, /"256"/],
      [() => tap.removeAddress("192.0.2.1/33"), RangeError, /33/],
      [() => tap.addRoute("192.0.2.1/24"), RangeError, /host bits.*192\.0\.2\.0\/24/],
      [() => tap.addRoute("198.51.100.0/24", { via: "2001:db8::1" }), TypeError, /same family/],
      [() => tap.addRoute("198.51.100.0/24", { metric: -1 }), RangeError, /metric/],
      [() => tap.addRoute("198.51.100.0/24", { metric: 2 ** 32 }), RangeError, /metric/],
      [() => tap.removeRoute("198.51.100.0/24", { metric: 1.5 }), RangeError, /metric/],
      [() => tap.setMac("02:00:5e:10:00"), TypeError, /6 groups/],
      [() => tap.setMac("02:00:5e:10:00:zz"), TypeError, /"zz"/],
      [() => tap.setMac("01:00:5e:10:00:01"), RangeError, /multicast/],
      [() => tap.setMtu(0), RangeError, /MTU/],
      [() => tap.setMtu(65536), RangeError, /MTU/],
      [() => tap.setTxQueueLength(-1), RangeError, /queue length/],
      [() => tap.setTxQueueLength(2 ** 32), RangeError, /queue length/],
      [() => tap.setCarrier(1 as unknown as boolean), TypeError, /boolean/],
    ];
    for (const [call, type, message] of cases) {
      assertThrows(call, (error: unknown) => {
        assert(error instanceof type, `${call}: expected ${type.name}, got ${error}`);
        assertMatch((error as Error).message, message);
        return true;
      });
    }
  },
);

kernelTest("open() with a bad configuration option throws before creating a device", () => {
  const name = uniqueName("cfgbadopen");
  const cases: [Record<string, unknown>, ErrorConstructor][] = [
    [{ addresses: ["192.0.2.300/24"] }, RangeError],
    [{ addresses: "192.0.2.1/24" }, TypeError],
    [{ addresses: [{ address: "192.0.2.1/24", peer: "2001:db8::2" }] }, TypeError],
    [{ routes: [{ destination: "198.51.100.0/24", via: "198.51.100" }] }, TypeError],
    [{ routes: [{ destination: "198.51.100.0/24", metric: 2 ** 32 }] }, RangeError],
    [{ routes: [42] }, TypeError],
    [{ mtu: 70000 }, RangeError],
    [{ up: "yes" }, TypeError],
  ];
  for (const [options, type] of cases) {
    assertThrows(() => TunInterface.open({ name, ...options }), type);
    assert(!interfaceExists(name), `${JSON.stringify(options)} left ${name} behind`);
  }
});

kernelTest("open() whose route has an off-link gateway fails and leaves no device behind", () => {
  const name = uniqueName("cfgfail");
  const error = openError({
    name,
    addresses: ["192.0.2.1/24"],
    routes: [{ destination: "198.51.100.0/24", via: "203.0.113.1" }],
    up: true,
  });
  assertTunError(error, "ENETUNREACH", "netlink(RTM_NEWROUTE)", /add route 198\.51\.100\.0/);
  assert(!interfaceExists(name), `${name} was left behind`);
});

kernelTest(
  "open() that fails on an existing persistent device undoes only what it added",
  () => {
    const name = uniqueName("cfgundo");
    TunInterface.open({ name, persist: true, addresses: ["192.0.2.1/24"], mtu: 1400 }).close();
    try {
      // The first route succeeds; the second's gateway is outside every network.
      const error = openError({
        name,
        addresses: ["198.51.100.1/24", "2001:db8::1/64"],
        mtu: 1500,
        up: true,
        routes: ["203.0.113.0/25", { destination: "198.18.0.0/15", via: "203.0.113.200" }],
      });
      assertTunError(error, "ENETUNREACH", "netlink(RTM_NEWROUTE)", /198\.18\.0\.0\/15/);
      assert(interfaceExists(name));
      assertEquals(ipAddresses(name), ["192.0.2.1/24"]);
      const link = ipLink(name);
      assertStrictEquals(link.mtu, 1400);
      assert(!link.flags.includes("UP"));
      assertEquals(ipRoutes(name), []);
    } finally {
      TunInterface.destroy(name);
    }
  },
);

kernelTest("after close(), every configuration method throws TunError EBADF", () => {
  const tap = TunInterface.open({ name: uniqueName("cfgclosed"), mode: "tap" });
  const index = tap.index;
  tap.close();
  assertStrictEquals(tap.index, index);
  const calls: [string, () => unknown][] = [
    ["mtu", () => tap.mtu],
    ["setMtu", () => tap.setMtu(1400)],
    ["up", () => tap.up()],
    ["down", () => tap.down()],
    ["isUp", () => tap.isUp],
    ["addAddress", () => tap.addAddress("192.0.2.1/24")],
    ["removeAddress", () => tap.removeAddress("192.0.2.1/24")],
    ["addresses", () => tap.addresses()],
    ["addRoute", () => tap.addRoute("198.51.100.0/24")],
    ["removeRoute", () => tap.removeRoute("198.51.100.0/24")],
    ["routes", () => tap.routes()],
    ["mac", () => tap.mac],
    ["setMac", () => tap.setMac("02:00:5e:10:00:01")],
    ["setCarrier", () => tap.setCarrier(true)],
    ["txQueueLength", () => tap.txQueueLength],
    ["setTxQueueLength", () => tap.setTxQueueLength(10)],
  ];
  for (const [what, call] of calls) {
    assertThrows(call, (error: unknown) => {
      assert(error instanceof TunError, `${what}: expected a TunError, got ${error}`);
      assertStrictEquals(error.code, "EBADF", what);
      assertMatch(error.message, /the device is closed/);
      return true;
    });
  }
});

kernelTest("configuration keeps working by index after the device is renamed", () => {
  const name = uniqueName("cfgren");
  const renamed = uniqueName("cfgren");
  using tun = TunInterface.open({ name });
  sh(`ip link set dev ${name} name ${renamed}`);
  tun.addAddress("192.0.2.1/24");
  tun.up();
  assert(ipAddresses(renamed).includes("192.0.2.1/24"));
  assertStrictEquals(ipLink(renamed).ifindex, tun.index);
  assert(tun.routes().some((route) => route.destination === "192.0.2.0/24"));
});

kernelTest("addresses() and routes() read every part of a multi-part dump", () => {
  using tun = TunInterface.open({ name: uniqueName("cfgmany"), up: true });
  for (let i = 0; i < 400; i++) tun.addAddress(`2001:db8:0:${i.toString(16)}::1/64`);
  for (let i = 0; i < 400; i++) tun.addRoute(`198.18.${i >> 8}.${i & 255}/32`);
  assertStrictEquals(
    tun.addresses().filter((cidr) => cidr.startsWith("2001:db8:")).length,
    400,
  );
  // 400 host routes, 400 IPv6 prefix routes, fe80::/64.
  assertStrictEquals(tun.routes().length, 801);
});

kernelTest("configuring addresses, routes and link settings needs --allow-ffi only", () => {
  const name = uniqueName("cfgffi");
  const result = runScript(`
    import { TunInterface } from "tuntap";
    using tun = TunInterface.open({
      name: "${name}",
      addresses: ["192.0.2.1/24", "2001:db8::1/64"],
      routes: ["198.51.100.0/24"],
      mtu: 1400,
      up: true,
    });
    tun.setTxQueueLength(100);
    tun.removeRoute("198.51.100.0/24");
    console.log(JSON.stringify({ addresses: tun.addresses(), mtu: tun.mtu, up: tun.isUp }));
  `);
  assertStrictEquals(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert(report.addresses.includes("192.0.2.1/24") && report.addresses.includes("2001:db8::1/64"));
  assertStrictEquals(report.mtu, 1400);
  assertStrictEquals(report.up, true);
});
