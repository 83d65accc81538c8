import { assert, assertMatch, assertStrictEquals } from "./assert.ts";
import { interfaceExists, ipJson, kernelTest, sh, uniqueName } from "./kernel.ts";

const decoder = new TextDecoder();

/** Runs the CLI with only --allow-ffi, as a user would. */
export function tuntap(...args: string[]): { code: number; stdout: string; stderr: string } {
  const output = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", new URL("../cli/main.ts", import.meta.url).pathname, ...args],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).outputSync();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

kernelTest("tuntap create makes a persistent device of the mode, owner and group asked", () => {
  const name = uniqueName("clitap");
  const result = tuntap("create", name, "--mode", "tap", "--user", "1000", "--group", "1001");
  assertStrictEquals(result.code, 0, result.stderr);
  assertMatch(result.stdout, new RegExp(`created tap device ${name}`));
  const info = ipJson(`-N -d link show ${name}`)[0].linkinfo.info_data;
  assertStrictEquals(info.type, "tap");
  assertStrictEquals(info.persist, true);
  assert(info.user !== undefined && info.group !== undefined);
  sh(`ip link del ${name}`);
});

kernelTest("tuntap create refuses a name that exists, with exit 1 and one line", () => {
  const name = uniqueName("clidup");
  assertStrictEquals(tuntap("create", name).code, 0);
  const again = tuntap("create", name);
  assertStrictEquals(again.code, 1);
  assertMatch(again.stderr, /^tuntap: Cannot create TUN device ".*": EEXIST .*already exists\n$/);
  sh(`ip link del ${name}`);
});

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
});

Deno.test("tuntap usage errors exit 2 with one line and no stack trace", () => {
  for (
    const args of [
      ["create"],
      ["create", "x", "--bogus"],
      ["create", "x", "--mode", "tunnel"],
      ["create", "x", "--user", "root"],
      ["create", "bad name"],
      ["destroy"],
      ["frobnicate"],
    ]
  ) {
    const result = tuntap(...args);
    assertStrictEquals(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assertStrictEquals(result.stderr.trim().split("\n").length, 1, result.stderr);
    assertMatch(result.stderr, /^tuntap: .*\(see: tuntap help/);
  }
});

Deno.test("tuntap --help, help COMMAND and COMMAND --help print usage", () => {
  assertMatch(tuntap("--help").stdout, /^Usage: tuntap COMMAND/);
  assertMatch(tuntap("help", "create").stdout, /^Usage: tuntap create NAME/);
  assertMatch(tuntap("destroy", "--help").stdout, /^Usage: tuntap destroy NAME/);
  assertMatch(tuntap("--version").stdout, /^tuntap \d+\.\d+\.\d+/);
});
