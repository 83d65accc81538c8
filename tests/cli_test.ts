import { type TunDeviceDetails, type TunDeviceInfo, TunError, TunInterface } from "../mod.ts";
import { readPcap } from "../packet/mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "./assert.ts";
import {
  Capture,
  cli,
  listOnTerminal,
  sendUdp,
  tcpdumpRead,
  testDevice,
  tuntap,
  tuntapWrite,
  waitFor,
} from "./cli_run.ts";
import { interfaceExists, ipJson, kernelTest, sh, uniqueName } from "./kernel.ts";

const decoder = new TextDecoder();

/** The number for a user or group `ip` printed by name (or already as a number). */
function idOf(database: "passwd" | "group", value: string | number | undefined): number | null {
  if (value === undefined) return null;
  if (typeof value === "number") return value;
  return Number(sh(`getent ${database} ${value}`).split(":")[2]);
}

/** The name `ip` prints for a uid or gid: the name when it has one, else the number. */
function nameOf(database: "passwd" | "group", id: number): string | number {
  const found = new Deno.Command("getent", { args: [database, String(id)], stdout: "piped" })
    .outputSync();
  return found.success ? decoder.decode(found.stdout).split(":")[0] : id;
}

/** What `ip -N -d -j link show` says about a link, as far as these tests read it. */
interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  operstate: string;
  mtu: number;
  address?: string;
  linkinfo?: {
    info_kind: string;
    info_data: {
      type: string;
      pi: boolean;
      vnet_hdr: boolean;
      multi_queue: boolean;
      numqueues?: number;
      persist: boolean;
      user?: string | number;
      group?: string | number;
    };
  };
}

const LIST_KEYS = [
  "name",
  "mode",
  "pi",
  "vnetHdr",
  "multiQueue",
  "persist",
  "owner",
  "group",
  "queues",
  "up",
  "carrier",
  "operState",
];
const SHOW_KEYS = [...LIST_KEYS, "index", "mtu", "mac", "addresses", "routes", "stats"];

// --- create --------------------------------------------------------------

kernelTest("tuntap create makes a persistent device of the mode, owner and group asked", () => {
  const name = uniqueName("clitap");
  const result = tuntap("create", name, "--mode", "tap", "--user", "1000", "--group", "1001");
  assertStrictEquals(result.code, 0, result.stderr);
  assertMatch(result.stdout, new RegExp(`created tap device ${name}`));
  const info = ipJson(`-N -d link show ${name}`)[0].linkinfo.info_data;
  assertStrictEquals(info.type, "tap");
  assertStrictEquals(info.persist, true);
  assertStrictEquals(idOf("passwd", info.user), 1000);
  assertStrictEquals(idOf("group", info.group), 1001);
  sh(`ip link del ${name}`);
});

kernelTest("tuntap create resolves user and group names without --allow-read", () => {
  const name = uniqueName("cliname");
  const user = String(nameOf("passwd", 0));
  const group = String(nameOf("group", 0));
  const result = tuntap("create", name, "--user", user, "--group", group);
  assertStrictEquals(result.code, 0, result.stderr);
  const info = ipJson(`-N -d link show ${name}`)[0].linkinfo.info_data;
  assertStrictEquals(idOf("passwd", info.user), 0);
  assertStrictEquals(idOf("group", info.group), 0);
  sh(`ip link del ${name}`);
});

kernelTest(
  "tuntap create applies --pi, --vnet-hdr, --multi-queue, --address, --mtu and --up",
  () => {
    const name = uniqueName("cliall");
    const result = tuntap(
      "create",
      name,
      "--pi",
      "--vnet-hdr",
      "--multi-queue",
      "--address",
      "192.0.2.1/24",
      "--address",
      "2001:db8::1/64",
      "--mtu",
      "1400",
      "--up",
    );
    assertStrictEquals(result.code, 0, result.stderr);
    try {
      const link = ipJson(`-N -d link show ${name}`)[0];
      const info = link.linkinfo.info_data;
      assertEquals(
        [info.pi, info.vnet_hdr, info.multi_queue, info.persist, info.numqueues],
        [true, true, true, true, 0],
      );
      assertStrictEquals(link.mtu, 1400);
      assert(link.flags.includes("UP"));
      const addresses = ipJson(`addr show dev ${name}`)[0].addr_info
        .map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
      assert(addresses.includes("192.0.2.1/24") && addresses.includes("2001:db8::1/64"));
    } finally {
      sh(`ip link del ${name}`);
    }
  },
);

kernelTest("tuntap create refuses a name that exists, with exit 1 and one line", () => {
  const name = uniqueName("clidup");
  assertStrictEquals(tuntap("create", name).code, 0);
  const again = tuntap("create", name);
  assertStrictEquals(again.code, 1);
  assertMatch(again.stderr, /^tuntap: Cannot create TUN device ".*": EEXIST .*already exists\n$/);
  sh(`ip link del ${name}`);
});

// --- destroy -------------------------------------------------------------

kernelTest("tuntap destroy removes persistent devices and refuses other names", () => {
  const tun = uniqueName("clid");
  const tap = uniqueName("clid");
  assertStrictEquals(tuntap("create", tun).code, 0);
  assertStrictEquals(tuntap("create", tap, "--mode", "tap").code, 0);
  const result = tuntap("destroy", tun, "lo", "nosuchdev", tap);
  assertStrictEquals(result.code, 1);
  assert(!interfaceExists(tun) && !interfaceExists(tap), "both TUN/TAP devices are gone");
  assert(interfaceExists("lo"), "lo is left alone");
  assertMatch(result.stderr, /"lo".*not a TUN\/TAP device/);
  assertMatch(result.stderr, /"nosuchdev".*ENODEV/);
  assertStrictEquals(result.stderr.trim().split("\n").length, 2);
  assertStrictEquals(result.stdout, `destroyed ${tun}\ndestroyed ${tap}\n`);
});

kernelTest("tuntap destroy removes a device another process holds; its reads fail", async () => {
  using tun = TunInterface.open({ name: uniqueName("clihold") });
  const pending = tun.read();
  const result = tuntap("destroy", tun.name);
  assertStrictEquals(result.code, 0, result.stderr);
  assert(!interfaceExists(tun.name));
  const error = await pending.then(() => undefined, (error) => error);
  assert(error instanceof TunError && error.code === "EBADFD", String(error));
});

kernelTest("TunInterface.destroy deletes a held multi-queue device and refuses lo", () => {
  const name = uniqueName("dmq");
  using _a = TunInterface.open({ name, multiQueue: true });
  using _b = TunInterface.open({ name, multiQueue: true });
  TunInterface.destroy(name);
  assert(!interfaceExists(name));
  let error: unknown;
  try {
    TunInterface.destroy("lo");
  } catch (caught) {
    error = caught;
  }
  assert(error instanceof TunError && error.code === "EINVAL", String(error));
  assertMatch(error.message, /Cannot destroy device "lo".*not a TUN\/TAP device/);
});

// --- list ----------------------------------------------------------------

kernelTest(
  "tuntap list --json agrees field for field with ip -d link show for every flag combination",
  async () => {
    const handles: TunInterface[] = [];
    const expected = new Map<string, TunDeviceInfo>();
    try {
      let i = 0;
      for (const mode of ["tun", "tap"] as const) {
        for (const pi of [false, true]) {
          for (const vnetHdr of [false, true]) {
            for (const multiQueue of [false, true]) {
              for (const persist of [false, true]) {
                const name = uniqueName("ls");
                const owner = [null, 0, 4242][i % 3];
                const group = [null, 0, 4343, 1000][i % 4];
                const up = Math.floor(i / 2) % 2 === 0;
                // A device without persist exists only while attached.
                const queues = persist ? (multiQueue ? i % 3 : i % 2) : multiQueue ? 1 + i % 2 : 1;
                const flags = { name, mode, packetInfo: pi, vnetHeader: vnetHdr, multiQueue };
                const first = TunInterface.open({
                  ...flags,
                  persist,
                  up,
                  owner: owner ?? undefined,
                  group: group ?? undefined,
                });
                if (queues === 0) first.close();
                else handles.push(first);
                for (let q = 1; q < queues; q++) handles.push(TunInterface.open(flags));
                expected.set(name, {
                  name,
                  mode,
                  pi,
                  vnetHdr,
                  multiQueue,
                  persist,
                  owner,
                  group,
                  queues,
                  up,
                  // The kernel gives a TUN/TAP device a carrier while attached.
                  carrier: queues > 0,
                  // Up and attached reads UNKNOWN or UP by the device's history.
                  operState: up && queues > 0 ? "UNKNOWN" : "DOWN",
                });
                i++;
              }
            }
          }
        }
      }

      // The kernel settles the operational state up to a second after the
      // carrier changes; compare once ip shows every device settled.
      const tunLinks = () =>
        ipJson<IpLink[]>("-N -d link show").filter((link) => link.linkinfo?.info_kind === "tun");
      await waitFor(
        () =>
          tunLinks().every((link) =>
            link.flags.includes("UP") && link.flags.includes("LOWER_UP")
              ? link.operstate === "UNKNOWN" || link.operstate === "UP"
              : link.operstate === "DOWN"
          ),
        "the operational states to settle",
      );
      const result = tuntap("list", "--json");
      assertStrictEquals(result.code, 0, result.stderr);
      const listed = JSON.parse(result.stdout) as TunDeviceInfo[];
      assert(Array.isArray(listed));
      const links = tunLinks();
      assertEquals(
        listed.map((device) => device.name),
        links.map((link) => link.ifname),
        "the same devices, in index order",
      );
      links.forEach((link, n) => {
        const data = link.linkinfo!.info_data;
        const device = listed[n];
        assertEquals(Object.keys(device), LIST_KEYS);
        assertEquals(device, {
          name: link.ifname,
          mode: data.type,
          pi: data.pi,
          vnetHdr: data.vnet_hdr,
          multiQueue: data.multi_queue,
          persist: data.persist,
          owner: idOf("passwd", data.user),
          group: idOf("group", data.group),
          // ip shows the count of a multi-queue device only.
          queues: data.multi_queue ? data.numqueues : device.queues,
          up: link.flags.includes("UP"),
          // ip shows the carrier of a device that is up only.
          carrier: link.flags.includes("UP") ? link.flags.includes("LOWER_UP") : device.carrier,
          operState: link.operstate,
        });
        if (link.flags.includes("UP")) {
          assertStrictEquals(link.flags.includes("NO-CARRIER"), !device.carrier, link.ifname);
        }
        const wanted = expected.get(link.ifname);
        if (wanted) {
          assertEquals(device, {
            ...wanted,
            operState: wanted.operState === "UNKNOWN" && device.operState === "UP"
              ? "UP"
              : wanted.operState,
          });
        }
      });
      assertEquals(listed.filter((device) => expected.has(device.name)).length, expected.size);
    } finally {
      for (const handle of handles) handle.close();
      for (const name of expected.keys()) if (interfaceExists(name)) sh(`ip link del ${name}`);
    }
  },
);

kernelTest(
  "tuntap list prints an aligned table and leaves out devices that are not TUN/TAP",
  () => {
    const short = uniqueName("t");
    const long = uniqueName("longername");
    using _a = TunInterface.open({ name: short, up: true });
    using _b = TunInterface.open({ name: long, mode: "tap", owner: 4242 });
    const result = tuntap("list");
    assertStrictEquals(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    const header = lines[0];
    assertMatch(
      header,
      /^NAME +MODE +STATE +QUEUES +PERSIST +OWNER +GROUP +PI +VNET_HDR +MULTI_QUEUE$/,
    );
    const starts = [...header.matchAll(/\S+/g)].map((match) => match.index);
    const rows = lines.slice(1);
    assert(!rows.some((row) => row.startsWith("lo ")), "lo is not listed");
    const row = (name: string) => rows.find((line) => line.startsWith(`${name} `)) ?? "";
    for (const line of [row(short), row(long)]) {
      // Every column starts where its header does.
      for (const start of starts.slice(1)) {
        assertStrictEquals(line[start - 1], " ", `${line}\n${header}`);
        assert(line[start] !== " ", `${line}\n${header}`);
      }
    }
    assertEquals(row(short).split(/ +/), [
      short,
      "tun",
      "up",
      "1",
      "off",
      "-",
      "-",
      "off",
      "off",
      "off",
    ]);
    assertEquals(row(long).split(/ +/), [
      long,
      "tap",
      "down",
      "1",
      "off",
      "4242",
      "-",
      "off",
      "off",
      "off",
    ]);
    assert(!result.stdout.includes("\x1b"), "no colour without a terminal");
  },
);

kernelTest("tuntap list colours the state on a terminal, and not with NO_COLOR", () => {
  using _tun = TunInterface.open({ name: uniqueName("colour"), up: true });
  const onTerminal = listOnTerminal;
  assert(onTerminal({}).includes("\x1b[32mup\x1b[39m"), "green up on a terminal");
  assert(!onTerminal({ NO_COLOR: "1" }).includes("\x1b["), "no colour with NO_COLOR");
});

// --- show ----------------------------------------------------------------

kernelTest(
  "tuntap show --json gives the list fields, index, MTU, MAC, addresses and routes",
  async () => {
    const name = uniqueName("clishow");
    const created = tuntap(
      "create",
      name,
      "--mode",
      "tap",
      "--address",
      "192.0.2.1/24",
      "--mtu",
      "1400",
      "--up",
    );
    assertStrictEquals(created.code, 0, created.stderr);
    using _device = { [Symbol.dispose]: () => void sh(`ip link del ${name}`) };
    using tap = TunInterface.open({ name, mode: "tap" });
    tap.addAddress("2001:db8::1/64");
    tap.addRoute("198.51.100.0/24", { via: "192.0.2.254", metric: 10 });
    // The kernel adds the link-local address once it sees the carrier; wait for it.
    await waitFor(
      () => JSON.stringify(ipJson(`addr show dev ${name}`)).includes("fe80::"),
      "the link-local address",
    );
    const result = tuntap("show", name, "--json");
    assertStrictEquals(result.code, 0, result.stderr);
    const shown = JSON.parse(result.stdout) as TunDeviceDetails;
    assertEquals(Object.keys(shown), SHOW_KEYS);
    const link = ipJson<IpLink[]>(`-N -d link show ${name}`)[0];
    assertEquals(
      [shown.name, shown.mode, shown.persist, shown.queues, shown.up, shown.carrier],
      [name, "tap", true, 1, true, true],
    );
    assertStrictEquals(shown.operState, link.operstate);
    assertStrictEquals(shown.index, link.ifindex);
    assertStrictEquals(shown.mtu, 1400);
    assertStrictEquals(shown.mac, link.address);
    const ipAddresses = ipJson(`addr show dev ${name}`)[0].addr_info
      .map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
    assertEquals(shown.addresses, ipAddresses);
    assert(shown.addresses.includes("192.0.2.1/24") && shown.addresses.includes("2001:db8::1/64"));
    assertEquals(shown.routes, tap.routes());
    assert(
      shown.routes.some((route) =>
        route.destination === "198.51.100.0/24" && route.via === "192.0.2.254" &&
        route.metric === 10
      ),
      JSON.stringify(shown.routes),
    );
    assertEquals(
      shown.routes.filter((route) => !route.destination.includes(":"))
        .map((route) => route.destination).sort(),
      ipJson(`route show dev ${name}`)
        .map((route: { dst: string }) => route.dst.includes("/") ? route.dst : `${route.dst}/32`)
        .sort(),
    );
  },
);

kernelTest("tuntap show prints aligned lines and a TUN device has no MAC", () => {
  using tun = TunInterface.open({
    name: uniqueName("clishowt"),
    addresses: ["192.0.2.1/24"],
    up: true,
  });
  const json = JSON.parse(tuntap("show", tun.name, "--json").stdout) as TunDeviceDetails;
  assertStrictEquals(json.mac, null);
  assertStrictEquals(json.mode, "tun");
  const result = tuntap("show", tun.name);
  assertStrictEquals(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split("\n");
  const column = lines[0].search(/ \S/) + 1;
  for (const line of lines) {
    assert(line[column - 1] === " " && line[column] !== " ", `misaligned: ${line}`);
  }
  assertMatch(result.stdout, new RegExp(`^name +${tun.name}\n`));
  assertMatch(result.stdout, /\nmac +-\n/);
  assertMatch(result.stdout, /\naddresses +192\.0\.2\.1\/24\n/);
  assertMatch(result.stdout, /\nroutes +192\.0\.2\.0\/24\n/);
});

kernelTest("tuntap show refuses a name that is not a TUN/TAP device or does not exist", () => {
  for (
    const [name, pattern] of [["lo", /"lo".*EINVAL.*not a TUN\/TAP device/], [
      "nosuchdev",
      /"nosuchdev".*ENODEV/,
    ]] as const
  ) {
    const result = tuntap("show", name, "--json");
    assertStrictEquals(result.code, 1);
    assertStrictEquals(result.stdout, "");
    assertMatch(result.stderr, /^tuntap: Cannot read TUN\/TAP device/);
    assertMatch(result.stderr, pattern);
    assertStrictEquals(result.stderr.trim().split("\n").length, 1, result.stderr);
  }
});

// --- capture -------------------------------------------------------------

kernelTest(
  "tuntap capture -w records what it prints, and tcpdump reads the count sent",
  async () => {
    using device = testDevice("clicap", "192.0.2.1/24");
    const file = `${Deno.makeTempDirSync()}/capture.pcap`;
    const capture = new Capture(["--attach", device.name, "-w", file, "--timeout", "30"]);
    await capture.ready();
    await sendUdp("192.0.2.1", "192.0.2.9", 5);
    await waitFor(() => capture.lines.length >= 5, "5 packet lines");
    capture.kill("SIGINT");
    const status = await capture.finish();
    assertStrictEquals(status.code, 0, capture.stderr);
    assertStrictEquals(capture.lines.length, 5, capture.stdout);
    for (const line of capture.lines) {
      assertMatch(
        line,
        /^\d\d:\d\d:\d\d\.\d{6} Out IP 192\.0\.2\.1\.\d+ > 192\.0\.2\.9\.9: UDP, length 10$/,
      );
    }
    assertMatch(capture.stderr, /5 packets captured/);
    const { lines, stderr } = tcpdumpRead(file);
    assertMatch(stderr, /link-type RAW/);
    assertStrictEquals(lines.length, 5, lines.join("\n"));
    // The timestamps and summaries printed are the ones recorded.
    assertEquals(lines, capture.lines.map((line) => line.replace(" Out ", " ")));
    assert(interfaceExists(device.name), "an existing device is left as it was");
    assertStrictEquals(
      ipJson(`-N -d link show ${device.name}`)[0].linkinfo.info_data.persist,
      true,
    );
  },
);

kernelTest("SIGTERM during a capture leaves a complete pcap and exit status 0", async () => {
  using device = testDevice("cliterm", "192.0.2.1/24");
  const file = `${Deno.makeTempDirSync()}/term.pcap`;
  const capture = new Capture(["--attach", device.name, "-w", file]);
  await capture.ready();
  await sendUdp("192.0.2.1", "192.0.2.10", 4);
  await waitFor(() => capture.lines.length >= 4, "4 packet lines");
  capture.kill("SIGTERM");
  const status = await capture.finish();
  assertStrictEquals(status.code, 0, capture.stderr);
  assertStrictEquals(status.signal, null);
  const { lines, stderr } = tcpdumpRead(file);
  assert(!/truncated|cut short/i.test(stderr), stderr);
  assertStrictEquals(lines.length, 4);
  let records = 0;
  for await (const _record of readPcap(await Deno.open(file))) records++;
  assertStrictEquals(records, 4);
});

kernelTest("tuntap capture -c COUNT stops after COUNT packets", async () => {
  using device = testDevice("clicount", "192.0.2.1/24");
  const file = `${Deno.makeTempDirSync()}/count.pcap`;
  const capture = new Capture(["--attach", device.name, "-c", "3", "-w", file, "--timeout", "30"]);
  await capture.ready();
  await sendUdp("192.0.2.1", "192.0.2.11", 6);
  const status = await capture.finish();
  assertStrictEquals(status.code, 0, capture.stderr);
  assertStrictEquals(capture.lines.length, 3, capture.stdout);
  assertMatch(capture.stderr, /3 packets captured/);
  assertStrictEquals(tcpdumpRead(file).lines.length, 3);
});

kernelTest("tuntap capture --timeout stops in time with exit 0", async () => {
  using device = testDevice("clitime", "192.0.2.1/24");
  const started = performance.now();
  const capture = new Capture(["--attach", device.name, "--timeout", "0.5"]);
  await capture.ready();
  const attached = performance.now();
  const status = await capture.finish(10000);
  const ended = performance.now();
  assertStrictEquals(status.code, 0, capture.stderr);
  assert(ended - attached < 3000, `ended ${Math.round(ended - attached)} ms after attaching`);
  assert(ended - started >= 500, `ended after ${Math.round(ended - started)} ms`);
  assertMatch(capture.stderr, /0 packets captured/);
});

kernelTest("tuntap capture on a TAP device writes an Ethernet pcap", async () => {
  using device = testDevice("clicapt", "192.0.2.1/24", "--mode", "tap");
  const file = `${Deno.makeTempDirSync()}/tap.pcap`;
  const capture = new Capture(["--attach", device.name, "-c", "1", "-w", file, "--timeout", "30"]);
  await capture.ready();
  // Nothing answers, so the kernel asks who has 192.0.2.12 over ARP.
  await sendUdp("192.0.2.1", "192.0.2.12", 1);
  const status = await capture.finish();
  assertStrictEquals(status.code, 0, capture.stderr);
  assertMatch(capture.lines[0], /ARP, Request who-has 192\.0\.2\.12/);
  const { lines, stderr } = tcpdumpRead(file);
  assertMatch(stderr, /link-type EN10MB/);
  assertStrictEquals(lines.length, 1);
  assertMatch(lines[0], /ARP, Request who-has 192\.0\.2\.12/);
});

kernelTest(
  "tuntap capture strips the packet-information and vnet headers of a device",
  async () => {
    using device = testDevice("clicaph", "192.0.2.1/24", "--pi", "--vnet-hdr");
    const file = `${Deno.makeTempDirSync()}/headers.pcap`;
    const capture = new Capture([
      "--attach",
      device.name,
      "-c",
      "2",
      "-w",
      file,
      "--timeout",
      "30",
    ]);
    await capture.ready();
    await sendUdp("192.0.2.1", "192.0.2.13", 2);
    const status = await capture.finish();
    assertStrictEquals(status.code, 0, capture.stderr);
    for (const line of capture.lines) {
      assertMatch(
        line,
        /IP 192\.0\.2\.1\.\d+ > 192\.0\.2\.13\.9: UDP/,
      );
    }
    assertEquals(
      tcpdumpRead(file).lines,
      capture.lines.map((line) => line.replace(" Out ", " ")),
    );
    const info = ipJson(`-N -d link show ${device.name}`)[0].linkinfo.info_data;
    assert(info.pi && info.vnet_hdr, "the device keeps its settings");
  },
);

kernelTest("tuntap capture of a missing name creates a device for the capture only", async () => {
  const name = uniqueName("clinew");
  const capture = new Capture([name, "--attach", "--mode", "tap", "--timeout", "0.5"]);
  await capture.ready();
  assertStrictEquals(ipJson(`-N -d link show ${name}`)[0].linkinfo.info_data.type, "tap");
  assertMatch(capture.stderr, /created for this capture/);
  const status = await capture.finish();
  assertStrictEquals(status.code, 0, capture.stderr);
  assert(!interfaceExists(name), "the device went away with the capture");
});

kernelTest("tuntap capture --attach --force still cannot take a held single-queue device", () => {
  using tun = TunInterface.open({ name: uniqueName("clibusy") });
  const result = tuntap("capture", tun.name, "--attach", "--force", "--timeout", "5");
  assertStrictEquals(result.code, 1);
  assertMatch(result.stderr, /^tuntap: Cannot attach TUN device ".*": EBUSY/);
  assertStrictEquals(result.stderr.trim().split("\n").length, 1, result.stderr);
});

kernelTest("tuntap capture -w without --allow-write fails before touching the device", () => {
  const name = uniqueName("clinowr");
  const file = `${Deno.makeTempDirSync()}/denied.pcap`;
  const result = tuntap("capture", name, "-w", file, "--timeout", "5");
  assertStrictEquals(result.code, 1);
  assertMatch(result.stderr, /^tuntap: writing .*denied\.pcap needs --allow-write/);
  assert(!interfaceExists(name));
  const missing = tuntapWrite("capture", name, "--attach", "-w", "/nonexistent/dir/x.pcap");
  assertStrictEquals(missing.code, 1);
  assertMatch(missing.stderr, /^tuntap: cannot write \/nonexistent\/dir\/x\.pcap/);
  assert(!interfaceExists(name));
});

// --- usage ---------------------------------------------------------------

Deno.test("tuntap usage errors exit 2 with one line and no stack trace", () => {
  for (
    const args of [
      [],
      ["create"],
      ["create", "x", "--bogus"],
      ["create", "x", "--mode", "tunnel"],
      ["create", "x", "--user", "no-such-user-tuntap"],
      ["create", "x", "--group", "no-such-group-tuntap"],
      ["create", "x", "--user", "4294967295"],
      ["create", "x", "--mtu", "big"],
      ["create", "x", "--mtu", "0"],
      ["create", "x", "--address", "192.0.2.300/24"],
      ["create", "bad name"],
      ["destroy"],
      ["list", "extra"],
      ["list", "--bogus"],
      ["show"],
      ["show", "a", "b"],
      ["show", "x", "--bogus"],
      ["capture"],
      ["capture", "x", "-c", "many"],
      ["capture", "x", "-c", "0"],
      ["capture", "x", "--timeout", "0"],
      ["capture", "x", "--timeout", "soon"],
      ["capture", "x", "--mode", "tunnel"],
      ["capture", "x", "-w"],
      ["help", "frobnicate"],
      ["frobnicate"],
    ]
  ) {
    const result = tuntap(...args);
    assertStrictEquals(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    if (args.length === 0) continue; // no command: the usage, as --help prints it
    assertStrictEquals(result.stderr.trim().split("\n").length, 1, result.stderr);
    assertMatch(result.stderr, /^tuntap: .*\(see: tuntap help/);
    assert(!/\n\s+at /.test(result.stderr), result.stderr);
  }
});

Deno.test("tuntap --help, help COMMAND and COMMAND --help print usage", () => {
  assertMatch(tuntap("--help").stdout, /^Usage: tuntap COMMAND/);
  const commands = tuntap("help").stdout;
  for (const command of ["create", "destroy", "list", "show", "capture"]) {
    assertMatch(commands, new RegExp(`\n  ${command} `));
    const help = tuntap("help", command);
    assertStrictEquals(help.code, 0);
    assertMatch(help.stdout, new RegExp(`^Usage: tuntap ${command}`));
    assertStrictEquals(tuntap(command, "--help").stdout, help.stdout);
  }
  assertMatch(tuntap("help", "list").stdout, /"vnetHdr": boolean/);
  assertMatch(tuntap("help", "list").stdout, /"owner": number \| null/);
  assertMatch(tuntap("help", "show").stdout, /"routes": \{ "destination": string/);
  assertMatch(tuntap("help", "capture").stdout, /SIGTERM/);
  assertMatch(tuntap("--version").stdout, /^tuntap \d+\.\d+\.\d+\n$/);
});

// --- deno compile ----------------------------------------------------------

/**
 * `deno compile` needs a `denort` runtime: it downloads one from dl.deno.land
 * unless `DENORT_BIN` names one. Where neither works (no network, as in the
 * private namespace the tests run in), the test is skipped with the reason.
 */
async function compileCli(): Promise<{ binary?: string; reason?: string }> {
  const directory = Deno.makeTempDirSync({ prefix: "tuntap-compile-" });
  const binary = `${directory}/tuntap`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["compile", "--allow-ffi", "--allow-write", "--output", binary, cli],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const output = await child.output();
  clearTimeout(timer);
  if (output.success) return { binary };
  Deno.removeSync(directory, { recursive: true });
  // deno prints an error, its causes numbered, then a backtrace: the last
  // cause says what went wrong ("failed to lookup address information").
  const text = decoder.decode(output.stderr).split("Stack backtrace")[0];
  const causes = text.split("\n").map((line) => line.trim()).filter((line) => /^\d+: /.test(line));
  const download = /Download (\S+)/.exec(text)?.[1];
  const why = (download ? `downloading ${download}: ` : "") +
    (causes.at(-1)?.replace(/^\d+: /, "") ?? text.trim().split("\n").at(-1));
  return {
    reason: `deno compile cannot produce a binary here (${
      Deno.env.get("DENORT_BIN") ? "DENORT_BIN is set" : "no DENORT_BIN"
    }; ${why || `exit ${output.code}`})`,
  };
}

const compiled = await compileCli();
if (compiled.reason) console.log(`Skipping the compiled-binary test: ${compiled.reason}.`);

Deno.test({
  name: "the binary deno compile makes runs the CLI",
  ignore: compiled.binary === undefined,
  fn() {
    const binary = compiled.binary!;
    const runBinary = (...args: string[]) => {
      const output = new Deno.Command(binary, { args, stdin: "null", env: { NO_COLOR: "1" } })
        .outputSync();
      return { code: output.code, stdout: decoder.decode(output.stdout) };
    };
    try {
      const version = runBinary("--version");
      assertEquals(
        [version.code, version.stdout],
        [0, tuntap("--version").stdout],
        "the binary does not run the CLI: a DENORT_BIN that is a full deno, not denort, " +
          "ignores the embedded program",
      );
      assertStrictEquals(runBinary("help", "list").stdout, tuntap("help", "list").stdout);
      assertStrictEquals(runBinary("create").code, 2);
    } finally {
      Deno.removeSync(binary.replace(/\/tuntap$/, ""), { recursive: true });
    }
  },
});
