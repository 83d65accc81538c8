import { MAX_PACKET_SIZE, TunError, TunInterface } from "../mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "./assert.ts";
import {
  interfaceExists,
  ipJson,
  isIpv4Udp,
  kernelTest,
  openFdCount,
  readUntil,
  runScript,
  sh,
  swapUdp,
  udpRoundTrip,
  uniqueName,
} from "./kernel.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function configure(name: string, cidr: string): void {
  sh(`ip addr add ${cidr} dev ${name} && ip link set ${name} up`);
}

kernelTest(
  "a UDP datagram from a socket is read from the device and a reply reaches the socket",
  async () => {
    using tun = TunInterface.open({ name: uniqueName("udp") });
    configure(tun.name, "192.0.2.1/24");
    const { packet, written, received, from } = await udpRoundTrip(tun, {
      port: 40000,
      peer: "192.0.2.77",
      text: "hello tun",
    });
    assertEquals([...packet.subarray(12, 16)], [192, 0, 2, 1]);
    assertEquals([...packet.subarray(16, 20)], [192, 0, 2, 77]);
    assertEquals(decoder.decode(packet.subarray(28)), "hello tun");
    assertStrictEquals(written, packet.length);
    assertEquals(received, "hello tun");
    assertEquals(from, { transport: "udp", hostname: "192.0.2.77", port: 5000 });
  },
);

kernelTest(
  "each read returns its own array of exactly the packet's length, never rewritten",
  async () => {
    using tun = TunInterface.open({ name: uniqueName("fresh") });
    configure(tun.name, "192.0.2.1/24");
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 40001 });
    try {
      const peer = { transport: "udp", hostname: "192.0.2.78", port: 5000 } as const;
      await socket.send(encoder.encode("a"), peer);
      await socket.send(encoder.encode("bbbbbbbb"), peer);
      const first = await readUntil(tun, (p) => isIpv4Udp(p));
      const second = await readUntil(tun, (p) => isIpv4Udp(p));
      assertStrictEquals(first.length, 29);
      assertStrictEquals(second.length, 36);
      // Views into one slab, side by side: reading on never touches earlier packets.
      const firstBytes = first.slice();
      assert(
        first.byteOffset + first.length <= second.byteOffset || first.buffer !== second.buffer,
      );
      for (let i = 0; i < 20; i++) await socket.send(encoder.encode("c".repeat(i + 1)), peer);
      for (let i = 0; i < 20; i++) await readUntil(tun, (p) => isIpv4Udp(p));
      assertEquals(first, firstBytes);
      assertEquals(decoder.decode(first.subarray(28)), "a");
      assertEquals(decoder.decode(second.subarray(28)), "bbbbbbbb");
    } finally {
      socket.close();
    }
  },
);

kernelTest(
  "TAP devices carry Ethernet frames: the kernel's ARP request arrives as one",
  async () => {
    using tap = TunInterface.open({ name: uniqueName("tap"), mode: "tap" });
    assertStrictEquals(tap.mode, "tap");
    configure(tap.name, "198.51.100.1/24");
    const mac = ipJson(`link show ${tap.name}`)[0].address as string;
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "198.51.100.1", port: 40002 });
    try {
      await socket.send(encoder.encode("x"), {
        transport: "udp",
        hostname: "198.51.100.2",
        port: 9,
      });
      const frame = await readUntil(tap, (f) => f[12] === 0x08 && f[13] === 0x06);
      const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0"));
      assertEquals(hex(frame.subarray(0, 6)).join(":"), "ff:ff:ff:ff:ff:ff");
      assertEquals(hex(frame.subarray(6, 12)).join(":"), mac);
      // ARP request (operation 1) asking for 198.51.100.2
      assertStrictEquals(frame[21], 1);
      assertEquals([...frame.subarray(38, 42)], [198, 51, 100, 2]);
    } finally {
      socket.close();
    }
  },
);

kernelTest("the kernel picks the name when none is given, and fills in a template", () => {
  using tun = TunInterface.open();
  using tap = TunInterface.open({ mode: "tap" });
  using templated = TunInterface.open({ name: "tmpl%d" });
  assertMatch(tun.name, /^tun\d+$/);
  assertMatch(tap.name, /^tap\d+$/);
  assertMatch(templated.name, /^tmpl\d+$/);
  for (const device of [tun, tap, templated]) assert(interfaceExists(device.name));
  const kinds = [tun, tap].map((d) =>
    ipJson(`-N -d link show ${d.name}`)[0].linkinfo.info_data.type
  );
  assertEquals(kinds, ["tun", "tap"]);
});

kernelTest("packetInfo adds the 4-byte flags and protocol header to reads and writes", async () => {
  using tun = TunInterface.open({ name: uniqueName("pi"), packetInfo: true });
  assertStrictEquals(tun.packetInfo, true);
  assertStrictEquals(ipJson(`-N -d link show ${tun.name}`)[0].linkinfo.info_data.pi, true);
  configure(tun.name, "192.0.2.1/24");
  const { packet, received } = await udpRoundTrip(tun, {
    port: 40003,
    peer: "192.0.2.79",
    text: "pi",
    offset: 4,
  });
  assertEquals([...packet.subarray(0, 4)], [0, 0, 0x08, 0x00]);
  assertStrictEquals(packet.length, 4 + 28 + 2);
  assertEquals(received, "pi");
});

kernelTest(
  "persist keeps a device after close, re-attaching keeps it, persist: false removes it",
  () => {
    const name = uniqueName("keep");
    TunInterface.open({ name, persist: true }).close();
    assert(interfaceExists(name));
    assertStrictEquals(ipJson(`-N -d link show ${name}`)[0].linkinfo.info_data.persist, true);

    TunInterface.open({ name }).close();
    assert(interfaceExists(name), "re-attaching without persist must not clear it");

    TunInterface.open({ name, persist: false }).close();
    assert(!interfaceExists(name));
  },
);

kernelTest("a device without persist goes away when closed", () => {
  const name = uniqueName("gone");
  const tun = TunInterface.open({ name });
  assert(interfaceExists(name));
  tun.close();
  assert(!interfaceExists(name));
});

kernelTest("a non-root owner attaches its own device and gets EPERM on another's", () => {
  const mine = uniqueName("own");
  const theirs = uniqueName("other");
  TunInterface.open({ name: mine, persist: true, owner: 1000 }).close();
  TunInterface.open({ name: theirs, persist: true, owner: 1001 }).close();
  try {
    const info = ipJson(`-N -d link show ${mine}`)[0].linkinfo.info_data;
    assertStrictEquals(String(info.user), userName(1000));
    const script = (name: string) => `
      import { TunInterface, TunError } from "tuntap";
      try {
        using tun = TunInterface.open({ name: ${JSON.stringify(name)} });
        console.log("attached " + tun.name);
      } catch (error) {
        console.log(error instanceof TunError ? error.code + ": " + error.message : String(error));
      }`;
    const attached = runScript(script(mine), { uid: 1000 });
    assertEquals(attached.stdout.trim(), `attached ${mine}`, attached.stderr);
    const refused = runScript(script(theirs), { uid: 1000 });
    assertMatch(refused.stdout, /^EPERM: Cannot attach TUN device .*root or CAP_NET_ADMIN/);
  } finally {
    TunInterface.open({ name: mine, persist: false }).close();
    TunInterface.open({ name: theirs, persist: false }).close();
  }
});

kernelTest("a member of the device's group attaches it without root", () => {
  const name = uniqueName("grp");
  TunInterface.open({ name, mode: "tap", persist: true, group: 4242 }).close();
  try {
    assertStrictEquals(ipJson(`-N -d link show ${name}`)[0].linkinfo.info_data.group, 4242);
    const result = runScript(
      `import { TunInterface } from "tuntap";
       using tap = TunInterface.open({ name: ${JSON.stringify(name)}, mode: "tap" });
       console.log(tap.name);`,
      { uid: 2000, gid: 4242 },
    );
    assertEquals(result.stdout.trim(), name, result.stderr);
  } finally {
    TunInterface.open({ name, mode: "tap", persist: false }).close();
  }
});

kernelTest("attaching a device held by another fd fails with EBUSY and says so", () => {
  using tun = TunInterface.open({ name: uniqueName("busy") });
  const fds = openFdCount();
  const error = assertThrowsTunError(() => TunInterface.open({ name: tun.name }));
  assertStrictEquals(error.code, "EBUSY");
  assertStrictEquals(error.errno, 16);
  assertStrictEquals(error.syscall, "ioctl(TUNSETIFF)");
  assertMatch(error.message, new RegExp(`^Cannot attach TUN device "${tun.name}": EBUSY \\(`));
  assertMatch(error.message, /attached to another file descriptor/);
  assertStrictEquals(openFdCount(), fds, "a failed open leaves no fd open");
});

kernelTest("attaching a TAP device as TUN fails with EINVAL and leaves it as it was", () => {
  const name = uniqueName("kind");
  TunInterface.open({ name, mode: "tap", persist: true }).close();
  try {
    const fds = openFdCount();
    const error = assertThrowsTunError(() => TunInterface.open({ name, mode: "tun" }));
    assertStrictEquals(error.code, "EINVAL");
    assertMatch(error.message, /exists and is not a TUN device/);
    assertStrictEquals(openFdCount(), fds);
    assertStrictEquals(ipJson(`-N -d link show ${name}`)[0].linkinfo.info_data.type, "tap");
  } finally {
    TunInterface.open({ name, mode: "tap", persist: false }).close();
  }
});

kernelTest("a missing /dev/net/tun gives ENOENT with a hint to load the tun module", () => {
  const result = runScript(
    `import { TunInterface, TunError } from "tuntap";
     try { TunInterface.open(); } catch (e) {
       console.log(e instanceof TunError, e.code, e.syscall, e.message);
     }`,
    { hideDevice: true },
  );
  assertMatch(result.stdout, /^true ENOENT open\(\/dev\/net\/tun\) Cannot open \/dev\/net\/tun/);
  assertMatch(result.stdout, /load the tun module/);
});

Deno.test("bad arguments throw TypeError or RangeError before any syscall", () => {
  const fds = openFdCount();
  const cases: [unknown, ErrorConstructor][] = [
    [{ name: "" }, RangeError],
    [{ name: "sixteen-bytes-xx" }, RangeError],
    [{ name: "a/b" }, RangeError],
    [{ name: "a:b" }, RangeError],
    [{ name: "a b" }, RangeError],
    [{ name: "a\tb" }, RangeError],
    [{ name: "a\0b" }, RangeError],
    [{ name: "." }, RangeError],
    [{ name: "tun%s" }, RangeError],
    [{ name: "t%d%d" }, RangeError],
    [{ name: 7 }, TypeError],
    [{ mode: "tunnel" }, TypeError],
    [{ mode: 1 }, TypeError],
    [{ owner: -1 }, RangeError],
    [{ owner: 1.5 }, RangeError],
    [{ owner: 2 ** 32 }, RangeError],
    [{ owner: "1000" }, TypeError],
    [{ group: -2 }, RangeError],
    [{ group: NaN }, RangeError],
    [{ packetInfo: "yes" }, TypeError],
    [{ persist: 1 }, TypeError],
    [null, TypeError],
  ];
  for (const [options, type] of cases) {
    assertThrows(
      () => TunInterface.open(options as Parameters<typeof TunInterface.open>[0]),
      type,
      `${Deno.inspect(options)} should throw ${type.name}`,
    );
  }
  // A 15-byte name (the kernel's limit) counts UTF-8 bytes, not characters.
  assertThrows(() => TunInterface.open({ name: "ééééééééx" }), RangeError);
  assertStrictEquals(openFdCount(), fds, "no fd was opened");
});

kernelTest("write checks the packet before any syscall: empty, too long or not bytes", async () => {
  using tun = TunInterface.open({ name: uniqueName("wchk") });
  await assertRejects(() => tun.write(new Uint8Array(0)), RangeError);
  await assertRejects(() => tun.write(new Uint8Array(MAX_PACKET_SIZE + 1)), RangeError);
  await assertRejects(() => tun.write("packet" as unknown as Uint8Array), TypeError);
  assert(!tun.closed);
});

kernelTest("close wakes a pending read within 50 ms and ends every iterator", async () => {
  const tun = TunInterface.open({ name: uniqueName("wake") });
  const pending = tun.read();
  const iterated = (async () => {
    let count = 0;
    for await (const _ of tun) count++;
    return count;
  })();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const start = performance.now();
  tun.close();
  assertStrictEquals(await pending, null);
  assertStrictEquals(await iterated, 0);
  const elapsed = performance.now() - start;
  assert(elapsed < 50, `woke after ${elapsed.toFixed(1)} ms`);
  assertStrictEquals(tun.closed, true);
  assertStrictEquals(await tun.read(), null);
});

kernelTest("close is idempotent and writing after it rejects with a TunError", async () => {
  const tun = TunInterface.open({ name: uniqueName("closed") });
  const name = tun.name;
  tun.close();
  tun.close();
  tun[Symbol.dispose]();
  assert(!interfaceExists(name));
  const error = await assertRejectsTunError(() => tun.write(new Uint8Array(20)));
  assertStrictEquals(error.code, "EBADF");
  assertMatch(error.message, /is closed/);
});

kernelTest("using closes the device at the end of the block", () => {
  let name: string;
  {
    using tun = TunInterface.open();
    name = tun.name;
    assert(interfaceExists(name));
  }
  assert(!interfaceExists(name));
});

kernelTest("await using closes the device at the end of the block", async () => {
  let name: string;
  {
    await using tun = TunInterface.open();
    name = tun.name;
  }
  assert(!interfaceExists(name));
});

kernelTest("a device deleted underneath fails the pending read with EBADFD", async () => {
  using tun = TunInterface.open({ name: uniqueName("del") });
  const pending = tun.read();
  await new Promise((resolve) => setTimeout(resolve, 20));
  sh(`ip link del ${tun.name}`);
  const error = await assertRejectsTunError(() => pending);
  assertStrictEquals(error.code, "EBADFD");
  assertMatch(error.message, /deleted while attached/);
});

kernelTest("1000 open/close cycles leave no fd and no device behind", () => {
  const name = uniqueName("cycle");
  TunInterface.open({ name, persist: true }).close();
  const fds = openFdCount();
  for (let i = 0; i < 1000; i++) TunInterface.open({ name }).close();
  TunInterface.open({ name, persist: false }).close();
  // Creating and deleting is slow in the kernel (≈16 ms), so fewer of these.
  for (let i = 0; i < 100; i++) TunInterface.open({ name: `${name}n` }).close();
  assertStrictEquals(openFdCount(), fds);
  assert(!interfaceExists(name) && !interfaceExists(`${name}n`));
});

kernelTest("a forgotten device is closed by the finalization backstop", () => {
  const result = runScript(
    `import { TunInterface } from "tuntap";
     const count = () => [...Deno.readDirSync("/proc/self/fd")].length;
     // The first open also opens the process's one netlink socket, which stays.
     TunInterface.open().close();
     const before = count();
     (() => { TunInterface.open(); })();
     const during = count();
     for (let i = 0; i < 20 && count() > before; i++) {
       globalThis.gc!();
       await new Promise((resolve) => setTimeout(resolve, 10));
     }
     console.log(during - before, count() - before);`,
    // Deno asks for --allow-all to read /proc/self.
    { permissions: ["--allow-all", "--v8-flags=--expose-gc"] },
  );
  // The device fd (the epoll set is shared by every handle), then none.
  assertEquals(result.stdout.trim(), "1 0", result.stderr);
});

kernelTest("the library needs --allow-ffi and nothing else", () => {
  const result = runScript(`
    import { TunInterface } from "tuntap";
    using tun = TunInterface.open({ name: "permonly", packetInfo: true });
    const timedOut = await tun.read({ signal: AbortSignal.timeout(100) }).catch((e) => e.name);
    console.log(tun.name, timedOut);`);
  assertEquals(result.stdout.trim(), "permonly TimeoutError", result.stderr);
});

kernelTest("writes keep their order and all arrive", async () => {
  using tun = TunInterface.open({ name: uniqueName("order") });
  configure(tun.name, "192.0.2.1/24");
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 40004 });
  try {
    const peer = { transport: "udp", hostname: "192.0.2.80", port: 5000 } as const;
    await socket.send(encoder.encode("00"), peer);
    const template = swapUdp(await readUntil(tun, (p) => isIpv4Udp(p)));
    const writes = Array.from({ length: 50 }, (_, i) => {
      const packet = template.slice();
      // Same length and checksum-neutral: swap the two payload digits' values.
      const text = String(i).padStart(2, "0");
      packet.set(encoder.encode(text), 28);
      fixUdpChecksum(packet);
      return tun.write(packet);
    });
    assertEquals(await Promise.all(writes), Array(50).fill(template.length));
    const received: string[] = [];
    for (let i = 0; i < 50; i++) received.push(decoder.decode((await socket.receive())[0]));
    assertEquals(received, Array.from({ length: 50 }, (_, i) => String(i).padStart(2, "0")));
  } finally {
    socket.close();
  }
});

/** How `ip` shows a uid: its user name where it has one. */
function userName(uid: number): string {
  try {
    return sh(`id -nu ${uid}`).trim();
  } catch {
    return String(uid);
  }
}

/** Clears the UDP checksum of an IPv4 packet: zero means "none" in IPv4. */
function fixUdpChecksum(packet: Uint8Array): void {
  const udp = (packet[0] & 0x0f) * 4;
  packet[udp + 6] = 0;
  packet[udp + 7] = 0;
}

function assertThrowsTunError(fn: () => unknown): TunError {
  try {
    fn();
  } catch (error) {
    assert(error instanceof TunError, `expected a TunError, got ${error}`);
    return error;
  }
  throw new Error("expected a TunError, nothing was thrown");
}

async function assertRejectsTunError(fn: () => Promise<unknown>): Promise<TunError> {
  try {
    await fn();
  } catch (error) {
    assert(error instanceof TunError, `expected a TunError, got ${error}`);
    return error;
  }
  throw new Error("expected a TunError, nothing was thrown");
}
