import { TunInterface } from "../mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "./assert.ts";
import { cli, type Output, run, tuntap } from "./cli_run.ts";
import { interfaceExists, kernelTest, sh, uniqueName } from "./kernel.ts";

const decoder = new TextDecoder();

/** Exit 2 and one `tuntap: …` line with no stack trace. */
function assertUsageLine(result: Output, what: string): string {
  assertStrictEquals(result.code, 2, `${what}: ${result.stderr}`);
  assertStrictEquals(result.stderr.split("\n").length, 2, `${what}: one line: ${result.stderr}`);
  assertMatch(result.stderr, /^tuntap: .*\(see: tuntap help[^)]*\)\n$/, what);
  return result.stderr;
}

Deno.test("without --allow-ffi every command says to add --allow-ffi in one line, exit 2", () => {
  for (
    const args of [["list"], ["show", "tun0"], ["create", "tunx"], ["destroy", "tunx"], [
      "capture",
      "tunx",
    ]]
  ) {
    const result = run([], args);
    assertStrictEquals(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assertMatch(result.stderr, /^tuntap: run with --allow-ffi[^\n]*\n$/, args.join(" "));
    assert(!result.stderr.includes("NotCapable"), result.stderr);
  }
  // Help needs no permission at all.
  assertStrictEquals(run([], ["help", "list"]).code, 0);
});

Deno.test("a negative number is refused in one line naming the option", () => {
  for (
    const [args, option] of [
      [["create", "x", "--user", "-1"], "--user"],
      [["create", "x", "--group", "-1"], "--group"],
      [["create", "x", "--mtu", "-1"], "--mtu"],
      [["capture", "x", "--timeout", "-1"], "--timeout"],
      [["capture", "x", "-c", "-1"], "--count"],
      [["capture", "x", "--timeout", "-0.5"], "--timeout"],
    ] as const
  ) {
    const line = assertUsageLine(tuntap(...args), args.join(" "));
    assert(line.startsWith(`tuntap: ${option} `) && line.includes("-"), line);
    assert(!/ambiguous|Did you forget/.test(line), line);
  }
});

Deno.test("unknown options and commands get one consistent line with a suggestion", () => {
  const cases: [string[], RegExp][] = [
    [["create", "x", "--moed", "tap"], /^tuntap: unknown option "--moed"; did you mean --mode\?/],
    [["--verison"], /^tuntap: unknown option "--verison"; did you mean --version\?/],
    [["list", "--jsno"], /^tuntap: unknown option "--jsno"; did you mean --json\?/],
    [["capture", "x", "--froce"], /^tuntap: unknown option "--froce"; did you mean --force\?/],
    [["create", "x", "--mode=tap", "--pi=1"], /^tuntap: --pi takes no value/],
    [["create", "x", "--mode"], /^tuntap: --mode needs a value/],
    [["lsit"], /^tuntap: unknown command "lsit"; did you mean list\?/],
    [["help", "shwo"], /^tuntap: unknown command "shwo"; did you mean show\?/],
    [["frobnicate"], /^tuntap: unknown command "frobnicate" \(see: tuntap help\)\n$/],
    [["create", "x", "--colour"], /^tuntap: unknown option "--colour" \(see: tuntap help create\)/],
    // An inherited property is no command.
    [["toString"], /^tuntap: unknown command "toString"/],
  ];
  for (const [args, pattern] of cases) {
    assertMatch(assertUsageLine(tuntap(...args), args.join(" ")), pattern);
  }
});

Deno.test("a control character in an argument is printed escaped", () => {
  const line = assertUsageLine(tuntap("\x1b[2Jx"), "escape");
  assert(!line.includes("\x1b"), JSON.stringify(line));
  assertMatch(line, /unknown command "\\x1b\[2Jx"/);
});

kernelTest(
  "EACCES on a 0600 /dev/net/tun says the mode forbids it, even with CAP_NET_ADMIN",
  () => {
    const shared = Deno.env.get("TUNTAP_SHARED_DIR");
    assert(shared, "TUNTAP_SHARED_DIR is set by deno task test");
    const node = `${shared}/tun-0600-${crypto.randomUUID()}`;
    sh(`mknod -m 600 ${node} c 10 200`);
    // uid 1000 holding CAP_NET_ADMIN, which is enough to create a device...
    const asUser = (name: string, bind: boolean) => {
      const output = new Deno.Command("unshare", {
        args: [
          "-m",
          "sh",
          "-c",
          `${bind ? 'mount --bind "$0" /dev/net/tun && ' : ""}exec "$@"`,
          node,
          "setpriv",
          "--reuid=1000",
          "--regid=1000",
          "--clear-groups",
          "--inh-caps=+net_admin",
          "--ambient-caps=+net_admin",
          `${shared}/deno`,
          "run",
          "--no-prompt",
          "--no-config",
          "--allow-ffi",
          cli.replace(new URL("..", import.meta.url).pathname, `${shared}/repo/`),
          "create",
          name,
        ],
        env: { HOME: `${shared}/home`, DENO_DIR: `${shared}/home/deno-1000`, NO_COLOR: "1" },
        stdin: "null",
      }).outputSync();
      return { code: output.code, stderr: decoder.decode(output.stderr) };
    };
    try {
      const allowed = uniqueName("eok");
      const created = asUser(allowed, false);
      assertStrictEquals(created.code, 0, created.stderr);
      assert(interfaceExists(allowed));
      sh(`ip link del ${allowed}`);
      // ...but not to open a node whose mode shuts the user out.
      const name = uniqueName("eacces");
      const refused = asUser(name, true);
      assertStrictEquals(refused.code, 1, refused.stderr);
      assertStrictEquals(refused.stderr.split("\n").length, 2, refused.stderr);
      assertMatch(refused.stderr, /^tuntap: Cannot open \/dev\/net\/tun .*EACCES/);
      assertMatch(refused.stderr, /mode of \/dev\/net\/tun \(0600 on some systems\)/);
      assertMatch(refused.stderr, /CAP_NET_ADMIN do not override/);
      assertMatch(refused.stderr, /chmod 0666 \/dev\/net\/tun.*udev rule.*run as root/);
      assert(!/needs root or CAP_NET_ADMIN/.test(refused.stderr), refused.stderr);
      assert(!interfaceExists(name));
    } finally {
      Deno.removeSync(node);
    }
  },
);

kernelTest("list, show, create and destroy print control characters in names escaped", () => {
  // The kernel takes any byte in a name but "/", ":" and whitespace: ESC and
  // C1 CSI (U+009B, C2 9B) included.
  const name = `e\x1b[2J\u009bq${uniqueName("")}`;
  using tun = TunInterface.open({ name, persist: true });
  using _device = {
    [Symbol.dispose]: () => {
      if (interfaceExists(tun.name)) TunInterface.destroy(tun.name);
    },
  };
  const shown = `e\\x1b[2J\\x9b${name.slice(6)}`;
  const raw = { test: (text: string) => text.includes("\x1b") || text.includes("\x9b") };
  const list = tuntap("list");
  assertStrictEquals(list.code, 0, list.stderr);
  assert(!raw.test(list.stdout), JSON.stringify(list.stdout));
  assert(list.stdout.split("\n").some((line) => line.startsWith(`${shown} `)), list.stdout);
  for (const args of [["list", "--json"], ["show", name, "--json"]]) {
    const json = tuntap(...args);
    assertStrictEquals(json.code, 0, json.stderr);
    assert(!raw.test(json.stdout), JSON.stringify(json.stdout));
    assertMatch(json.stdout, /"e\\u001b\[2J\\u009bq/);
    // Still JSON that gives the name back.
    const parsed = JSON.parse(json.stdout);
    assert([parsed].flat().some((device: { name: string }) => device.name === name));
  }
  const show = tuntap("show", name);
  assertStrictEquals(show.code, 0, show.stderr);
  assert(!raw.test(show.stdout), JSON.stringify(show.stdout));
  assertMatch(show.stdout, new RegExp(`^name +${shown.replace(/[\\[]/g, "\\$&")}\n`));
  tun.close();
  const destroyed = tuntap("destroy", name);
  assertEquals([destroyed.code, destroyed.stdout], [0, `destroyed ${shown}\n`]);
  const again = tuntap("destroy", name);
  assertStrictEquals(again.code, 1);
  assert(!raw.test(again.stderr), JSON.stringify(again.stderr));
  const made = tuntap("create", name);
  assertEquals([made.code, made.stdout], [0, `created tun device ${shown}\n`]);
});
