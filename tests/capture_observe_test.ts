import { type TunInterface, TunInterface as Tun } from "../mod.ts";
import { readPcap } from "../packet/mod.ts";
import { captureDevice } from "../src/capture_device.ts";
import { assert, assertEquals, assertMatch, assertRejects, assertStrictEquals } from "./assert.ts";
import { Capture, tcpdumpRead, tuntap, waitFor } from "./cli_run.ts";
import { isIpv4Udp, kernelTest, quietDevice, swapUdp, within } from "./kernel.ts";

const PEER = "192.0.2.9";

/**
 * Plays the program that owns the device: sends `count` datagrams from
 * 192.0.2.1 (one socket per flow, so a multi-queue device spreads them),
 * reads each from whichever queue the kernel chose and writes the reply back.
 * Resolves how many the program read and how many replies the sockets got.
 */
async function ownerTraffic(
  queues: TunInterface[],
  count: number,
): Promise<{ read: number; replies: number }> {
  const sockets = Array.from(
    { length: count },
    () => Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 0 }),
  );
  let read = 0;
  const done = new AbortController();
  const readers = queues.map(async (queue) => {
    try {
      while (read < count) {
        const packet = await queue.read({ signal: done.signal });
        if (packet === null) return;
        if (!isIpv4Udp(packet)) continue;
        read++;
        await queue.write(swapUdp(packet));
      }
    } catch (error) {
      if (!done.signal.aborted) throw error;
    }
  });
  try {
    for (const [i, socket] of sockets.entries()) {
      await socket.send(new TextEncoder().encode(`flow ${i}`), {
        transport: "udp",
        hostname: PEER,
        port: 5000,
      });
    }
    let replies = 0;
    await within(
      Promise.all(sockets.map(async (socket) => {
        await socket.receive();
        replies++;
      })),
      10000,
      `${count} replies`,
    );
    return { read, replies };
  } finally {
    done.abort();
    await Promise.all(readers);
    for (const socket of sockets) socket.close();
  }
}

/** tcpdump's lines of a LINUX_SLL2 file without the interface column, as capture prints them. */
function withoutInterface(lines: string[]): string[] {
  return lines.map((line) => line.replace(/^(\S+) \S+ +/, "$1 "));
}

async function observeBeside(queues: TunInterface[], count: number): Promise<void> {
  const name = queues[0].name;
  const file = `${Deno.makeTempDirSync()}/observed.pcap`;
  const capture = new Capture([name, "-w", file, "--timeout", "30"]);
  await capture.ready();
  assertMatch(capture.stderr, /observing/);
  const { read, replies } = await ownerTraffic(queues, count);
  assertStrictEquals(read, count, "the program read every datagram sent into the device");
  assertStrictEquals(replies, count, "every reply the program wrote was delivered");
  await waitFor(() => capture.lines.length >= 2 * count, `${2 * count} packet lines`);
  capture.kill("SIGINT");
  const status = await capture.finish();
  assertStrictEquals(status.code, 0, capture.stderr);
  const out = capture.lines.filter((line) =>
    /^\S+ Out IP 192\.0\.2\.1\.\d+ > 192\.0\.2\.9\.5000: UDP/.test(line)
  );
  const into = capture.lines.filter((line) =>
    /^\S+ In {2}IP 192\.0\.2\.9\.5000 > 192\.0\.2\.1\.\d+: UDP/.test(line)
  );
  assertStrictEquals(out.length, count, capture.stdout);
  assertStrictEquals(into.length, count, capture.stdout);
  assertStrictEquals(capture.lines.length, 2 * count, capture.stdout);

  const { lines, stderr } = tcpdumpRead(file);
  assertMatch(stderr, /link-type LINUX_SLL2/);
  assertStrictEquals(lines.filter((line) => / Out IP /.test(line)).length, count);
  assertStrictEquals(lines.filter((line) => / In {2}IP /.test(line)).length, count);
  // The timestamps, directions and summaries printed are the ones recorded.
  assertEquals(withoutInterface(lines), capture.lines);
  const index = Number(
    JSON.parse(new TextDecoder().decode(
      new Deno.Command("ip", { args: ["-j", "link", "show", name] }).outputSync().stdout,
    ))[0].ifindex,
  );
  for await (const record of readPcap(await Deno.open(file))) {
    assertStrictEquals(record.interfaceIndex, index);
    assertStrictEquals(record.protocol, 0x0800);
  }
}

kernelTest(
  "capture observes a single-queue device beside its owner: nothing lost, both directions",
  async () => {
    using tun = quietDevice("obs1");
    await observeBeside([tun], 8);
  },
);

kernelTest(
  "capture observes a multi-queue device beside its owner: nothing lost, both directions",
  async () => {
    using first = quietDevice("obsmq", { multiQueue: true });
    using second = Tun.open({ name: first.name, multiQueue: true });
    await observeBeside([first, second], 16);
  },
);

kernelTest("capture --attach refuses a device another program holds unless --force", () => {
  using first = quietDevice("obsatt", { multiQueue: true });
  const refused = tuntap("capture", first.name, "--attach", "--timeout", "0.2");
  assertStrictEquals(refused.code, 1);
  assertMatch(
    refused.stderr,
    /^tuntap: .* is held by another program: attaching would add a queue/,
  );
  assertMatch(refused.stderr, /--force/);
  const forced = tuntap("capture", first.name, "--attach", "--force", "--timeout", "0.2");
  assertStrictEquals(forced.code, 0, forced.stderr);
  assertMatch(forced.stderr, /attached/);

  using single = quietDevice("obsatt1");
  const busy = tuntap("capture", single.name, "--attach", "--timeout", "0.2");
  assertStrictEquals(busy.code, 1);
  assertMatch(busy.stderr, /is held by another program/);
});

kernelTest("capture without --attach refuses a device that does not exist", () => {
  const result = tuntap("capture", "obsnone0", "--timeout", "0.2");
  assertStrictEquals(result.code, 1);
  assertMatch(result.stderr, /^tuntap: there is no TUN\/TAP device obsnone0 to observe/);
});

kernelTest("captureDevice yields both directions with kernel timestamps", async () => {
  using tun = quietDevice("obslib");
  const controller = new AbortController();
  const packets = captureDevice(tun.name, { signal: controller.signal });
  const before = BigInt(Date.now()) * 1_000_000n;
  const { read, replies } = await ownerTraffic([tun], 2);
  assertEquals([read, replies], [2, 2]);
  const seen = [];
  for (let i = 0; i < 4; i++) seen.push((await within(packets.next(), 5000, "a packet")).value!);
  const after = BigInt(Date.now()) * 1_000_000n;
  assertEquals(seen.map((packet) => packet.direction).sort(), ["in", "in", "out", "out"]);
  // Date.now() is whole milliseconds and a packet read before its kernel stamp
  // existed gets performance's clock: a second either way still says "now".
  const slack = 1_000_000_000n;
  for (const packet of seen) {
    assert(
      packet.timestampNs >= before - slack && packet.timestampNs <= after + slack,
      `${packet.timestampNs} not within ${before}..${after}`,
    );
    assert(isIpv4Udp(packet.bytes));
  }
  const pending = packets.next();
  controller.abort(new Error("enough"));
  await assertRejects(() => pending, Error, "enough");
});

kernelTest("captureDevice ends when the device is deleted", async () => {
  const tun = quietDevice("obsdel");
  const packets = captureDevice(tun.name);
  const pending = packets.next();
  tun.close();
  assertEquals(await within(pending, 5000, "the end of the capture"), {
    done: true,
    value: undefined,
  });
});

kernelTest("captureDevice without CAP_NET_RAW says it needs it", () => {
  using tun = quietDevice("obsperm");
  const script = `import { captureDevice } from ${
    JSON.stringify(new URL("../src/capture_device.ts", import.meta.url).href)
  };
try { captureDevice(${JSON.stringify(tun.name)}); } catch (error) { console.log(error.message); }`;
  const output = new Deno.Command("capsh", {
    args: [
      "--drop=cap_net_raw",
      "--",
      "-c",
      `${Deno.execPath()} eval --allow-ffi '${script}'`,
    ],
  }).outputSync();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  assertMatch(text, /Cannot capture on ".*": EPERM .*CAP_NET_RAW/);
});
