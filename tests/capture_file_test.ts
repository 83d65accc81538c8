import { TunInterface } from "../mod.ts";
import { readPcap } from "../packet/mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "./assert.ts";
import {
  Capture,
  sendUdp,
  tcpdumpRead,
  testDevice,
  tuntap,
  tuntapWrite,
  waitFor,
} from "./cli_run.ts";
import { interfaceExists, kernelTest, uniqueName } from "./kernel.ts";

/** The records of a pcap file; it must be a valid capture. */
async function pcapRecords(file: string): Promise<number> {
  let records = 0;
  for await (const _record of readPcap(await Deno.open(file))) records++;
  return records;
}

/** Printed lines as tcpdump prints a raw IP pcap: without the direction. */
function withoutDirection(lines: string[]): string[] {
  return lines.map((line) => line.replace(/^(\S+) (In |Out) /, "$1 "));
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

kernelTest("capture -w refuses an existing file unless --force, and leaves it as it was", () => {
  const file = `${Deno.makeTempDirSync()}/old.pcap`;
  Deno.writeTextFileSync(file, "keep me");
  const name = uniqueName("cfexist");
  const refused = tuntapWrite("capture", "--attach", name, "-w", file, "--timeout", "0.2");
  assertStrictEquals(refused.code, 1, refused.stderr);
  assertMatch(refused.stderr, /^tuntap: .*old\.pcap exists: add --force to replace it\n$/);
  assertStrictEquals(Deno.readTextFileSync(file), "keep me");
  assert(!interfaceExists(name), "the device made for the capture went with it");

  const forced = tuntapWrite(
    "capture",
    "--attach",
    name,
    "-w",
    file,
    "--force",
    "--timeout",
    "0.2",
  );
  assertStrictEquals(forced.code, 0, forced.stderr);
  assertStrictEquals(Deno.statSync(file).mode! & 0o777, 0o600);
  assertStrictEquals(tcpdumpRead(file).lines.length, 0);
});

kernelTest("capture -w never follows a symlink at FILE, dangling or not", () => {
  const directory = Deno.makeTempDirSync();
  const target = `${directory}/target`;
  const link = `${directory}/link.pcap`;
  const dangling = `${directory}/dangling.pcap`;
  Deno.writeTextFileSync(target, "secret");
  Deno.symlinkSync(target, link);
  Deno.symlinkSync(`${directory}/nowhere`, dangling);
  const name = uniqueName("cflink");
  for (const path of [link, dangling]) {
    const result = tuntapWrite("capture", "--attach", name, "-w", path, "--timeout", "0.2");
    assertStrictEquals(result.code, 1, result.stderr);
    assertMatch(result.stderr, /exists: add --force/);
  }
  assertStrictEquals(Deno.readTextFileSync(target), "secret");
  assert(!exists(`${directory}/nowhere`), "the dangling link's target is not created");
  // --force replaces the link itself; its target is left alone.
  const forced = tuntapWrite(
    "capture",
    "--attach",
    name,
    "-w",
    link,
    "--force",
    "--timeout",
    "0.2",
  );
  assertStrictEquals(forced.code, 0, forced.stderr);
  assert(Deno.lstatSync(link).isFile, "the link was replaced by a file");
  assertStrictEquals(Deno.readTextFileSync(target), "secret");
});

kernelTest("capture -w creates FILE 0600 even under umask 000", async () => {
  using device = testDevice("cfmode", "192.0.2.1/24");
  const file = `${Deno.makeTempDirSync()}/mode.pcap`;
  const capture = new Capture(["--attach", device.name, "-w", file, "--timeout", "0.3"], {
    umask: "000",
  });
  const status = await capture.finish();
  assertStrictEquals(status.code, 0, capture.stderr);
  assertStrictEquals(Deno.statSync(file).mode! & 0o777, 0o600);
});

kernelTest("a capture that fails before it starts leaves no file", () => {
  using tun = TunInterface.open({ name: uniqueName("cfbusy") });
  const file = `${Deno.makeTempDirSync()}/never.pcap`;
  const busy = tuntapWrite(
    "capture",
    tun.name,
    "--attach",
    "--force",
    "-w",
    file,
    "--timeout",
    "5",
  );
  assertStrictEquals(busy.code, 1);
  assertMatch(busy.stderr, /EBUSY/);
  assert(!exists(file), "no file for a capture that never started");
  const denied = tuntap("capture", uniqueName("cfdeny"), "-w", file, "--timeout", "5");
  assertStrictEquals(denied.code, 1);
  assert(!exists(file), "no file without --allow-write");
});

kernelTest("a capture killed before the first packet leaves a valid empty pcap", async () => {
  using device = testDevice("cfkill", "192.0.2.1/24");
  const file = `${Deno.makeTempDirSync()}/killed.pcap`;
  const capture = new Capture(["--attach", device.name, "-w", file]);
  await capture.ready();
  capture.kill("SIGKILL");
  await capture.finish();
  assertStrictEquals(Deno.statSync(file).size, 24, "the pcap file header, at once");
  assertStrictEquals(await pcapRecords(file), 0);
  assertMatch(tcpdumpRead(file).stderr, /link-type RAW/);
});

kernelTest("a capture killed after packets keeps every packet it printed", async () => {
  using device = testDevice("cfkill", "192.0.2.1/24");
  const file = `${Deno.makeTempDirSync()}/killed-late.pcap`;
  const capture = new Capture(["--attach", device.name, "-w", file]);
  await capture.ready();
  await sendUdp("192.0.2.1", "192.0.2.22", 2);
  await waitFor(() => capture.lines.length >= 2, "2 packet lines");
  capture.kill("SIGKILL");
  await capture.finish();
  assertEquals(tcpdumpRead(file).lines, withoutDirection(capture.lines));
});

kernelTest("SIGHUP stops a capture cleanly, as SIGINT and SIGTERM do", async () => {
  using device = testDevice("cfhup", "192.0.2.1/24");
  const file = `${Deno.makeTempDirSync()}/hup.pcap`;
  const capture = new Capture(["--attach", device.name, "-w", file]);
  await capture.ready();
  await sendUdp("192.0.2.1", "192.0.2.20", 2);
  await waitFor(() => capture.lines.length >= 2, "2 packet lines");
  capture.kill("SIGHUP");
  const status = await capture.finish();
  assertEquals([status.code, status.signal], [0, null], capture.stderr);
  assertMatch(capture.stderr, /\n2 packets captured\n$/);
  assertStrictEquals(await pcapRecords(file), 2);
});

kernelTest("Ctrl-C pressed again while a capture stops still prints the final count", async () => {
  using device = testDevice("cfint", "192.0.2.1/24");
  const file = `${Deno.makeTempDirSync()}/twice.pcap`;
  const capture = new Capture(["--attach", device.name, "-w", file]);
  await capture.ready();
  await sendUdp("192.0.2.1", "192.0.2.21", 3);
  await waitFor(() => capture.lines.length >= 3, "3 packet lines");
  // SIGINT as fast as the shell can send it until the capture is gone, so
  // that some arrive while it stops (bounded: at most 100,000 signals).
  const barrage = new Deno.Command("sh", {
    args: [
      "-c",
      `i=0; while [ $i -lt 100000 ] && kill -INT ${capture.pid} 2>/dev/null; do i=$((i+1)); done`,
    ],
    stdin: "null",
  }).output();
  const status = await capture.finish();
  await barrage;
  assertMatch(capture.stderr, /\n3 packets captured\n$/);
  assertStrictEquals(capture.stderr.match(/captured/g)?.length, 1, capture.stderr);
  // Ended by the capture (exit 0), or by a signal that came after the count
  // was printed and the handlers were gone.
  assert(status.code === 0 || status.signal === "SIGINT", JSON.stringify(status));
  assertStrictEquals(await pcapRecords(file), 3);
});
