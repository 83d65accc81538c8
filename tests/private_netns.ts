/**
 * Runs the tests, the demo, the benchmarks, the fuzzing or the soak inside a
 * network and mount namespace of their own, so that no device, address or
 * packet ever touches the machine's own network. `deno task test`,
 * `deno task demo`, `deno task bench`, `deno task fuzz` and `deno task soak`
 * call it.
 *
 * `--fuzz` runs the fuzz tests (`tests/fuzz/`, or the files given) with
 * `FUZZ_RUNS` runs per entry point, 20,000 unless set, and a fresh seed
 * unless `FUZZ_SEED` is set; `--soak` runs `tests/soak.ts` with the
 * arguments given (`--seconds N`).
 *
 * Before entering the namespace (which has no network) it caches the npm
 * packages and installs the Debian tools the tests and the benchmark use
 * (tcpdump, ping, iperf3, tmux). Inside it mounts a sysfs that shows the
 * namespace's interfaces, brings up `lo`, and lays a world-usable
 * `/dev/net/tun`, the deno binary and the repository under one directory so
 * that tests can run a script as an unprivileged uid.
 *
 * Where it cannot make the namespace (not root, no `unshare`, no
 * `/dev/net/tun`), it still runs the tests that need no kernel and says why
 * the others are skipped; `TUNTAP_REQUIRE_KERNEL_TESTS=1` turns that into a
 * failure.
 *
 * @module
 */

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const deno = Deno.execPath();
const [mode = "--test", ...extra] = Deno.args;

// Debian packages by the command they provide, for each mode that needs them.
const debianTools: Record<string, Record<string, string>> = {
  // tests/bench_test.ts runs the benchmark, forward cases included.
  "--test": { tcpdump: "tcpdump", ping: "iputils-ping", iperf3: "iperf3", tmux: "tmux" },
  "--bench": { iperf3: "iperf3" },
};

function commandExists(name: string): boolean {
  return new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "null" })
    .outputSync().success;
}

function runInherit(command: string, args: string[]): boolean {
  return new Deno.Command(command, { args, stdin: "null" }).outputSync().success;
}

function filesUnder(directory: string, pattern: RegExp): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync(`${root}/${directory}`)) {
    const path = `${directory}/${entry.name}`;
    if (entry.isDirectory) found.push(...filesUnder(path, pattern));
    else if (pattern.test(entry.name)) found.push(path);
  }
  return found.sort();
}

function installDebianTools(): void {
  const tools = debianTools[mode] ?? {};
  const missing = Object.entries(tools).filter(([tool]) => !commandExists(tool));
  if (missing.length === 0 || Deno.uid() !== 0 || !commandExists("apt-get")) return;
  const packages = missing.map(([, pkg]) => pkg);
  console.error(`Installing ${packages.join(", ")} for the ${mode.slice(2)}…`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const quiet = { stdin: "null", stdout: "null", env } as const;
  new Deno.Command("apt-get", { args: ["update", "-qq"], ...quiet }).outputSync();
  new Deno.Command("apt-get", {
    args: ["install", "-y", "-qq", "--no-install-recommends", ...packages],
    ...quiet,
  }).outputSync();
}

/** Why the namespace cannot be made here, or undefined when it can. */
function namespaceUnavailable(): string | undefined {
  if (Deno.build.os !== "linux") return "TUN/TAP devices need Linux";
  if (Deno.uid() !== 0) return "making a private network namespace needs root";
  try {
    Deno.statSync("/dev/net/tun");
  } catch {
    return "/dev/net/tun is missing (load the tun module: modprobe tun)";
  }
  if (!commandExists("unshare") || !commandExists("ip")) {
    return "unshare (util-linux) and ip (iproute2) are needed to make the namespace";
  }
  if (!runInherit("unshare", ["-nm", "true"])) return "unshare -nm is not permitted here";
  return undefined;
}

// Runs inside the new namespaces: a sysfs of this namespace, lo up, and a
// shared directory an unprivileged uid can use. The mounts vanish with the
// mount namespace. /run is the machine's own tmpfs: without a tmpfs of our
// own on /run/netns, the files of the namespaces `ip netns add` names would
// outlive the run there.
const insideScript = `
set -e
mount -t sysfs sysfs /sys
mkdir -p /run/netns && mount -t tmpfs -o mode=755 tmpfs /run/netns
ip link set lo up
shared=$(mktemp -d /tmp/tuntap-shared.XXXXXX)
chmod 755 "$shared"
mknod -m 666 "$shared/tun" c 10 200
mount --bind "$shared/tun" /dev/net/tun
touch "$shared/deno" && mount --bind "$TUNTAP_DENO" "$shared/deno"
mkdir "$shared/repo" && mount --bind "$TUNTAP_ROOT" "$shared/repo"
mkdir -m 1777 "$shared/home"
export TUNTAP_SHARED_DIR="$shared" TUNTAP_PRIVATE_NETNS=1
"$@" && status=0 || status=$?
umount "$shared/repo" "$shared/deno" /dev/net/tun 2>/dev/null || true
rm -rf "$shared"
exit $status
`;

function denoArgs(): string[] {
  switch (mode) {
    case "--test":
      return ["test", "--allow-all", "--unstable-net", ...extra];
    case "--fuzz":
      return ["test", "--allow-all", "--unstable-net", ...(extra.length ? extra : ["tests/fuzz/"])];
    case "--soak":
      return ["run", "--allow-all", "--unstable-net", "tests/soak.ts", ...extra];
    case "--demo":
      return ["run", "--allow-ffi", "--allow-net", "--unstable-net", "examples/demo.ts", ...extra];
    case "--bench":
      return ["run", "--allow-all", "--unstable-net", "bench/main.ts", ...extra];
  }
  console.error(`Usage: private_netns.ts --test|--demo|--bench|--fuzz|--soak [deno args…]`);
  Deno.exit(2);
}

async function run(): Promise<number> {
  const args = denoArgs();
  // No network inside the namespace: fetch npm packages and tools now.
  if (mode === "--test" || mode === "--fuzz") {
    runInherit(deno, ["cache", "--quiet", ...filesUnder("tests", /_test\.ts$/)]);
  }
  installDebianTools();
  const unavailable = namespaceUnavailable();
  const env: Record<string, string> = {
    TUNTAP_DENO: deno,
    TUNTAP_ROOT: root,
    TUNTAP_OUTER_NETNS: Deno.readLinkSync("/proc/self/ns/net"),
  };
  if (mode === "--fuzz") env.FUZZ_RUNS = Deno.env.get("FUZZ_RUNS") ?? "20000";
  let command: Deno.Command;
  if (unavailable === undefined) {
    command = new Deno.Command("unshare", {
      args: ["-nm", "--", "sh", "-c", insideScript, "sh", deno, ...args],
      cwd: root,
      env,
      stdout: "piped",
    });
  } else if (mode === "--test") {
    console.error(`Kernel tests will be skipped: ${unavailable}.`);
    command = new Deno.Command(deno, {
      args,
      cwd: root,
      env: { ...env, TUNTAP_KERNEL_UNAVAILABLE: unavailable },
      stdout: "piped",
    });
  } else {
    console.error(`Cannot run ${mode.slice(2)}: ${unavailable}.`);
    return 1;
  }
  const child = command.spawn();
  const summary = await relay(child.stdout);
  const status = await child.status;
  if ((mode === "--test" || mode === "--fuzz") && summary) {
    // The plain closing line that CI reads, whatever the runner printed.
    console.log(`${summary.passed} passed, ${summary.failed} failed, ${summary.ignored} skipped`);
  }
  return status.code;
}

interface Summary {
  passed: number;
  failed: number;
  ignored: number;
}

/** Copies the child's output through and picks up deno test's summary line. */
async function relay(stream: ReadableStream<Uint8Array>): Promise<Summary | undefined> {
  let summary: Summary | undefined;
  let pending = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    await Deno.stdout.write(chunk);
    pending += decoder.decode(chunk, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      // deno test: "ok | 12 passed | 0 failed | 3 ignored (1s)", ANSI colours removed
      // deno-lint-ignore no-control-regex
      const plain = line.replace(/\x1b\[[0-9;]*m/g, "");
      const match = /^(?:ok|FAILED) \| (\d+) passed.*?\| (\d+) failed(?:.*?\| (\d+) ignored)?/
        .exec(plain);
      if (match) {
        summary = {
          passed: Number(match[1]),
          failed: Number(match[2]),
          ignored: Number(match[3] ?? 0),
        };
      }
    }
  }
  return summary;
}

Deno.exit(await run());
