import { listTunDevices, tunDeviceDetails, TunError, TunInterface, watchLinks } from "../mod.ts";
import { cstring, libc } from "../ffi/libc.ts";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "./assert.ts";
import { Capture, tuntap } from "./cli_run.ts";
import {
  interfaceExists,
  isIpv4Udp,
  kernelTest,
  type Namespace,
  namespace,
  readUntil,
  swapUdp,
  uniqueName,
} from "./kernel.ts";

// The namespace the test's JavaScript thread is in, as the kernel names it.
const ownNetns = () => Deno.readLinkSync("/proc/thread-self/ns/net");

/**
 * Sends a datagram from 192.0.2.1:4000 inside `ns` to 192.0.2.2:5000,
 * answers it through `tun` and resolves to the text the socket received.
 */
async function echoInside(ns: Namespace, tun: TunInterface, text: string): Promise<string> {
  const client = ns.deno(`
    setTimeout(() => Deno.exit(3), 10000);
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 4000 });
    await socket.send(new TextEncoder().encode(${JSON.stringify(text)}),
      { transport: "udp", hostname: "192.0.2.2", port: 5000 });
    const [data] = await socket.receive();
    console.log(new TextDecoder().decode(data));
    Deno.exit(0);
  `);
  const packet = await readUntil(tun, (p) => isIpv4Udp(p), 10000);
  await tun.write(swapUdp(packet));
  return (await client).trim();
}

kernelTest(
  "a device opened with netns is created, configured and answered in that namespace only",
  async () => {
    using ns = namespace("nsopen");
    const before = ownNetns();
    const name = uniqueName("nst");
    using tun = TunInterface.open({
      name,
      netns: ns.name,
      addresses: ["192.0.2.1/24"],
      mtu: 1400,
      up: true,
    });
    assertStrictEquals(ownNetns(), before);
    assert(!interfaceExists(name), "the device is not in the program's namespace");
    const [link] = JSON.parse(ns.sh(`ip -j addr show dev ${name}`));
    assertEquals(link.mtu, 1400);
    assert(link.flags.includes("UP"));
    assertEquals(
      link.addr_info.filter((a: { family: string }) => a.family === "inet").map((
        a: { local: string; prefixlen: number },
      ) => `${a.local}/${a.prefixlen}`),
      ["192.0.2.1/24"],
    );
    assertEquals(tun.index, link.ifindex);

    assertEquals(await echoInside(ns, tun, "inside"), "inside");
    // Later configuration and reads go to the device's namespace too.
    tun.setMtu(1300);
    assertEquals(tun.mtu, 1300);
    assert(tun.stats().rxPackets >= 1);
    assertEquals(listTunDevices({ netns: ns.name }).map((d) => d.name), [name]);
    assertEquals(tunDeviceDetails(name, { netns: ns.name }).mtu, 1300);
    assert(!listTunDevices().some((d) => d.name === name));
    assertStrictEquals(ownNetns(), before);
  },
);

kernelTest("a failing open with netns leaves the program in its own namespace", () => {
  using ns = namespace("nsfail");
  const before = ownNetns();
  assertThrows(
    () => TunInterface.open({ netns: uniqueName("absent") }),
    (e: unknown) => e instanceof TunError && e.code === "ENOENT",
  );
  // lo exists in the namespace and is not a TUN device: the attach fails there.
  assertThrows(
    () => TunInterface.open({ name: "lo", netns: ns.name }),
    (e: unknown) => e instanceof TunError && e.code === "EINVAL",
  );
  // A configuration step that fails inside the namespace undoes the device there.
  const name = uniqueName("nsbad");
  assertThrows(
    () =>
      TunInterface.open({
        name,
        netns: ns.name,
        routes: [{ destination: "198.51.100.0/24", via: "203.0.113.1" }],
      }),
    (e: unknown) => e instanceof TunError,
  );
  assertEquals(ns.sh(`ip link show ${name} 2>/dev/null || echo gone`).trim(), "gone");
  assertThrows(() => TunInterface.open({ netns: "../x" }), RangeError);
  assertStrictEquals(ownNetns(), before);
});

kernelTest(
  "moveToNetns moves the device and the handle keeps configuring and answering it",
  async () => {
    using ns = namespace("nsmove");
    const name = uniqueName("nsm");
    using tun = TunInterface.open({ name });
    tun.moveToNetns(ns.name);
    assert(!interfaceExists(name), "the device left the program's namespace");
    tun.addAddress("192.0.2.1/24");
    tun.up();
    const [link] = JSON.parse(ns.sh(`ip -j link show dev ${name}`));
    assertEquals(tun.index, link.ifindex);
    assertEquals(await echoInside(ns, tun, "moved"), "moved");
    assert(tun.addresses().includes("192.0.2.1/24"));
  },
);

kernelTest("tuntap create, list, show, set and destroy --netns work on the named namespace", () => {
  using ns = namespace("nscli");
  const name = uniqueName("nsc");
  const created = tuntap("create", name, "--netns", ns.name, "--mtu", "1280");
  assertEquals(created.code, 0, created.stderr);
  assert(!interfaceExists(name));
  const listed = tuntap("list", "--json", "--netns", ns.name);
  assertEquals(listed.code, 0, listed.stderr);
  assertEquals(JSON.parse(listed.stdout).map((d: { name: string }) => d.name), [name]);
  const shown = tuntap("show", name, "--json", "--netns", ns.name);
  assertEquals(JSON.parse(shown.stdout).mtu, 1280);
  // --owner needs the fd: set attaches the device inside the namespace.
  const changed = tuntap(
    "set",
    name,
    "--netns",
    ns.name,
    "--address",
    "192.0.2.1/24",
    "--owner",
    "0",
  );
  assertEquals(changed.code, 0, changed.stderr);
  const [link] = JSON.parse(ns.sh(`ip -j addr show dev ${name}`));
  assertEquals(
    link.addr_info.find((a: { family: string }) => a.family === "inet")?.local,
    "192.0.2.1",
  );
  assertEquals(tunDeviceDetails(name, { netns: ns.name }).owner, 0);
  assertEquals(tuntap("destroy", name, "--netns", ns.name).code, 0);
  assertEquals(ns.sh(`ip link show ${name} 2>/dev/null || echo gone`).trim(), "gone");
});

kernelTest("open and moveToNetns take an fd of a namespace, which stays the caller's", () => {
  using ns = namespace("nsfd");
  const fd = libc().open(cstring(`/run/netns/${ns.name}`), 0o2000000, 0);
  assert(fd >= 0);
  try {
    const name = uniqueName("nsf");
    using tun = TunInterface.open({ name, netns: fd, mtu: 1280 });
    assertEquals(JSON.parse(ns.sh(`ip -j link show dev ${name}`))[0].mtu, 1280);
    assertEquals(listTunDevices({ netns: fd }).map((d) => d.name), [name]);
    using moved = TunInterface.open({ name: uniqueName("nsg") });
    moved.moveToNetns(fd);
    moved.setMtu(1300);
    assertEquals(JSON.parse(ns.sh(`ip -j link show dev ${moved.name}`))[0].mtu, 1300);
    assertEquals(tun.mtu, 1280);
  } finally {
    assertEquals(libc().close(fd), 0, "the fd is still open");
  }
});

kernelTest(
  "events of a device in another namespace report its changes and its removal",
  async () => {
    using ns = namespace("nsev");
    const name = uniqueName("nse");
    const opened = TunInterface.open({ name, netns: ns.name, persist: true });
    const before = ownNetns();
    const events = opened.events({ signal: AbortSignal.timeout(10000) });
    const all = watchLinks({ netns: ns.name, signal: AbortSignal.timeout(10000) });
    assertStrictEquals(ownNetns(), before);
    opened.setMtu(1280);
    const changed = await events.next();
    assertEquals(changed.value?.kind, "changed");
    assertEquals(changed.value?.mtu, 1280);
    assertEquals((await all.next()).value?.mtu, 1280);
    opened.close();
    ns.sh(`ip link del ${name}`);
    const kinds: string[] = [];
    for await (const event of events) kinds.push(event.kind);
    assertEquals(kinds.at(-1), "removed");
    await all.return?.();
    assertStrictEquals(ownNetns(), before);
  },
);

kernelTest("tuntap watch --netns shows the devices of that namespace", () => {
  using ns = namespace("nswatch");
  const name = uniqueName("nsw");
  using _tun = TunInterface.open({ name, netns: ns.name, up: true });
  const output = tuntap("watch", "--netns", ns.name, "--json", "--interval", "0.1", "--count", "2");
  assertStrictEquals(output.code, 0, output.stderr);
  const lines = output.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assertEquals(lines.map((line) => line.name), [name, name]);
  assert(lines.every((line) => line.up && line.carrier));
});

kernelTest(
  "tuntap capture --netns observes a device of that namespace, both directions",
  async () => {
    using ns = namespace("nscap");
    const name = uniqueName("nsc");
    using tun = TunInterface.open({ name, netns: ns.name, addresses: ["192.0.2.1/24"], up: true });
    ns.sh(`sysctl -qw net.ipv6.conf.${name}.disable_ipv6=1`);
    const before = ownNetns();
    const capture = new Capture([name, "--netns", ns.name, "-c", "2"]);
    await capture.ready();
    assertEquals(await echoInside(ns, tun, "seen"), "seen");
    const status = await capture.finish();
    assertStrictEquals(status.code, 0, capture.stderr);
    assertEquals(capture.lines.map((line) => line.split(" ")[1]), ["Out", "In"]);
    assert(capture.lines.every((line) => line.includes("192.0.2.")), capture.lines.join("\n"));
    assertStrictEquals(ownNetns(), before);
  },
);
