import { TunInterface } from "../mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "./assert.ts";
import { type Output, tuntap } from "./cli_run.ts";
import { interfaceExists, ipJson, kernelTest, sh, uniqueName } from "./kernel.ts";

interface IpAddress {
  family: string;
  local: string;
  prefixlen: number;
  address?: string;
}

interface IpRoute {
  dst: string;
  gateway?: string;
  metric?: number;
}

/** The device's global addresses as `ip -j addr` shows them: "local/len" or "local peer P/len". */
function addresses(name: string): string[] {
  const [link] = ipJson<{ addr_info: IpAddress[] }[]>(`addr show dev ${name}`);
  return link.addr_info.filter((entry) => !entry.local.startsWith("fe80"))
    .map((entry) =>
      entry.address
        ? `${entry.local} peer ${entry.address}/${entry.prefixlen}`
        : `${entry.local}/${entry.prefixlen}`
    );
}

/** The device's IPv4 routes as `ip -j route` shows them, e.g. "198.51.100.0/24 via 192.0.2.254 metric 5". */
function routes(name: string): string[] {
  return ipJson<IpRoute[]>(`route show dev ${name}`).map((route) =>
    [route.dst, route.gateway && `via ${route.gateway}`, route.metric && `metric ${route.metric}`]
      .filter(Boolean).join(" ")
  );
}

// deno-lint-ignore no-explicit-any
function link(name: string): any {
  return ipJson(`-d link show dev ${name}`)[0];
}

function assertOk(result: Output, what: string): void {
  assertStrictEquals(result.code, 0, `${what}: ${result.stderr}`);
}

/** Exit 1 and one `tuntap: …` line. */
function assertFailure(result: Output, pattern: RegExp): void {
  assertStrictEquals(result.code, 1, result.stderr);
  assertStrictEquals(result.stderr.split("\n").length, 2, `one line: ${result.stderr}`);
  assertMatch(result.stderr, pattern);
}

/** A persistent device made with `tuntap create`, removed on dispose. */
function device(prefix: string, ...options: string[]): Disposable & { name: string } {
  const name = uniqueName(prefix);
  assertOk(tuntap("create", name, ...options), `create ${name}`);
  return {
    name,
    [Symbol.dispose]: () => {
      if (interfaceExists(name)) sh(`ip link del ${name}`);
    },
  };
}

kernelTest("create takes every configuration flag, as ip -d link, addr and route show", () => {
  using tap = device(
    "setc",
    "--mode",
    "tap",
    "--address",
    "192.0.2.1/32",
    "--peer",
    "192.0.2.2",
    "--route",
    "198.51.100.0/24,via=192.0.2.2,metric=7",
    "--mtu",
    "1400",
    "--txqueuelen",
    "321",
    "--mac",
    "02:00:5e:10:00:01",
    "--owner",
    "4242",
    "--up",
  );
  const shown = link(tap.name);
  assertEquals(
    [shown.mtu, shown.txqlen, shown.address, shown.linkinfo.info_data.user],
    [1400, 321, "02:00:5e:10:00:01", 4242],
  );
  assert(shown.flags.includes("UP"), shown.flags);
  assertEquals(addresses(tap.name), ["192.0.2.1 peer 192.0.2.2/32"]);
  // The kernel adds the route to the peer itself.
  assertEquals(routes(tap.name), ["192.0.2.2", "198.51.100.0/24 via 192.0.2.2 metric 7"]);
});

kernelTest("create removes the device again when a setting fails after the attach", () => {
  const name = uniqueName("setf");
  // 2^32 - 1 packets per queue is more than the kernel can allocate: a RangeError, exit 2.
  const result = tuntap("create", name, "--txqueuelen", "4294967295");
  assertStrictEquals(result.code, 2, result.stderr);
  assertMatch(result.stderr, /Transmit queue length 4294967295 is more than/);
  assert(!interfaceExists(name), `${name} was left behind`);
});

kernelTest("set adds addresses, routes, MTU, queue length and state as ip shows them", () => {
  using tun = device("seta");
  assertOk(
    tuntap(
      "set",
      tun.name,
      "--address",
      "192.0.2.1/24",
      "--address",
      "2001:db8::1/64",
      "--route",
      "198.51.100.0/24,via=192.0.2.254",
      "--route",
      "203.0.113.0/24,metric=20",
      "--mtu",
      "1300",
      "--txqueuelen",
      "42",
      "--up",
    ),
    "set",
  );
  const shown = link(tun.name);
  assertEquals([shown.mtu, shown.txqlen], [1300, 42]);
  assert(shown.flags.includes("UP"), shown.flags);
  assertEquals(addresses(tun.name).sort(), ["192.0.2.1/24", "2001:db8::1/64"]);
  assertEquals(routes(tun.name), [
    "192.0.2.0/24",
    "198.51.100.0/24 via 192.0.2.254",
    "203.0.113.0/24 metric 20",
  ]);

  assertOk(
    tuntap(
      "set",
      tun.name,
      "--remove-route",
      "198.51.100.0/24",
      "--remove-route",
      "203.0.113.0/24,metric=20",
      "--remove-address",
      "2001:db8::1/64",
      "--address",
      "198.18.0.1/32",
      "--peer",
      "198.18.0.2",
    ),
    "set removals",
  );
  assertEquals(addresses(tun.name).sort(), ["192.0.2.1/24", "198.18.0.1 peer 198.18.0.2/32"]);
  assertEquals(routes(tun.name), ["192.0.2.0/24", "198.18.0.2"]);
  assertOk(tuntap("set", tun.name, "--down"), "set --down");
  assert(!link(tun.name).flags.includes("UP"), "down");
});

kernelTest("set changes the MAC address of a TAP device and refuses one for a TUN device", () => {
  using tap = device("setm", "--mode", "tap");
  assertOk(tuntap("set", tap.name, "--mac", "02:00:5e:10:00:02"), "set --mac");
  assertStrictEquals(link(tap.name).address, "02:00:5e:10:00:02");
  using tun = device("setm");
  assertUsage(tuntap("set", tun.name, "--mac", "02:00:5e:10:00:02"), /TUN device/);
});

kernelTest("set changes owner, group and persistence through the device's fd", () => {
  using tun = device("seto");
  assertOk(tuntap("set", tun.name, "--owner", "4242", "--group", "4343"), "set owner");
  const data = link(tun.name).linkinfo.info_data;
  assertEquals([data.user, data.group, data.persist], [4242, 4343, true]);
  // Not persistent and nothing holds it: the kernel removes it as set lets go.
  const result = tuntap("set", tun.name, "--persist", "off");
  assertOk(result, "set --persist off");
  assertMatch(result.stderr, /it is gone/);
  assert(!interfaceExists(tun.name));
});

kernelTest("set raises and drops the carrier of a multi-queue device a program holds", () => {
  const name = uniqueName("setk");
  // Up, since ip shows NO-CARRIER only on a device that is up.
  using held = TunInterface.open({ name, multiQueue: true, up: true });
  assertOk(tuntap("set", name, "--carrier", "off"), "carrier off");
  assert(link(name).flags.includes("NO-CARRIER"), "carrier dropped");
  assertOk(tuntap("set", name, "--carrier", "on"), "carrier on");
  assert(!link(name).flags.includes("NO-CARRIER"), "carrier raised");
  assertStrictEquals(held.closed, false);
});

kernelTest("set refuses the carrier of a device nothing holds, changing nothing", () => {
  using tun = device("setn");
  assertFailure(
    tuntap("set", tun.name, "--mtu", "1280", "--carrier", "on"),
    /Cannot set the carrier of .*nothing is attached/,
  );
  assertStrictEquals(link(tun.name).mtu, 1500);
});

kernelTest("set says another program holds a single-queue device, and undoes the rest", () => {
  const name = uniqueName("setb");
  using _held = TunInterface.open({ name, persist: false });
  assertFailure(
    tuntap("set", name, "--mtu", "1280", "--address", "192.0.2.1/24", "--owner", "4242"),
    /Cannot attach TUN device .*: EBUSY .*another program holds it/,
  );
  assertStrictEquals(link(name).mtu, 1500);
  assertEquals(addresses(name), []);
});

kernelTest("set undoes an added address when a route through an unreachable gateway fails", () => {
  using tun = device("setr", "--address", "192.0.2.1/24", "--up");
  const result = tuntap(
    "set",
    tun.name,
    "--remove-address",
    "192.0.2.1/24",
    "--address",
    "203.0.113.1/24",
    "--route",
    "198.51.100.0/24,via=198.18.0.1",
  );
  assertFailure(
    result,
    /^tuntap: Cannot add route 198\.51\.100\.0\/24 via 198\.18\.0\.1 to TUN device "[^"]+": ENETUNREACH/,
  );
  assertEquals(addresses(tun.name), ["192.0.2.1/24"]);
  assertEquals(routes(tun.name), ["192.0.2.0/24"]);
});

/** Exit 2 and one `tuntap: …` line naming `tuntap help set`. */
function assertUsage(result: Output, pattern: RegExp): void {
  assertStrictEquals(result.code, 2, result.stderr);
  assertStrictEquals(result.stderr.split("\n").length, 2, `one line: ${result.stderr}`);
  assertMatch(result.stderr, /^tuntap: .*\(see: tuntap help set\)\n$/);
  assertMatch(result.stderr, pattern);
}

kernelTest("set refuses a bad command line in one line, exit 2, before touching the device", () => {
  using tun = device("setu");
  const cases: [string[], RegExp][] = [
    [["--adress", "192.0.2.1/24"], /unknown option "--adress"; did you mean --address\?/],
    [["--up", "--down"], /--up and --down exclude each other/],
    [["--carrier", "maybe"], /--carrier takes on or off, not "maybe"/],
    [["--persist", "yes"], /--persist takes on or off/],
    [["--route", "198.51.100.0/24,vai=192.0.2.1"], /did you mean via=\?/],
    [["--route", "198.51.100.1/24"], /host bits set/],
    [["--remove-route", "198.51.100.0/24,metric=x"], /metric= takes a whole number/],
    [["--peer", "192.0.2.2"], /--peer applies to --address/],
    [["--address", "192.0.2.1/24", "--peer", "2001:db8::2"], /same family/],
    [["--address", "192.0.2.1/33"], /192\.0\.2\.1\/33/],
    [["--mtu", "0"], /MTU/],
    [["--txqueuelen", "x"], /--txqueuelen takes a whole number/],
    [["--owner", "no-such-user-here"], /--owner: there is no user "no-such-user-here"/],
    [["--group", "-5"], /--group takes an id/],
    [[], /set needs something to change/],
  ];
  for (const [args, pattern] of cases) {
    // With a change that would pass, so that the refusal must come before it.
    const change = args.length === 0 ? [] : ["--mtu", "1280"];
    assertUsage(tuntap("set", tun.name, ...change, ...args), pattern);
  }
  assertUsage(tuntap("set", "--up"), /set takes one NAME/);
  assertStrictEquals(link(tun.name).mtu, 1500, "nothing was changed");
});
