/**
 * `tuntap watch`: the live view as a terminal shows it (driven in tmux and
 * read back with `capture-pane`), and the JSON lines it prints without one.
 *
 * @module
 */
import { assert, assertStrictEquals } from "./assert.ts";
import { cli, sendUdp, tuntap, waitFor } from "./cli_run.ts";
import { kernelTest, quietDevice } from "./kernel.ts";
import type { TunInterface } from "../mod.ts";

const decoder = new TextDecoder();

/** A tmux server of its own (no user config), removed on dispose. */
function tmuxServer(): Disposable & { run(...args: string[]): string } {
  const socket = `tuntap-watch-${Deno.pid}`;
  const run = (...args: string[]) => {
    const output = new Deno.Command("tmux", {
      args: ["-L", socket, "-f", "/dev/null", ...args],
      stdin: "null",
    }).outputSync();
    if (!output.success) {
      throw new Error(`tmux ${args.join(" ")} failed: ${decoder.decode(output.stderr)}`);
    }
    return decoder.decode(output.stdout);
  };
  return {
    run,
    [Symbol.dispose]: () => {
      new Deno.Command("tmux", { args: ["-L", socket, "kill-server"], stderr: "null" })
        .outputSync();
    },
  };
}

/**
 * Reads `tun` until it is closed: the kernel counts a packet it sends
 * through a TUN device when the program reads it, not when it is queued.
 */
async function drain(tun: TunInterface): Promise<void> {
  while (await tun.read() !== null) continue;
}

/** The text of a cell of `name`'s row, under the header `column`. */
function cell(screen: string, name: string, column: string, next: string): string | undefined {
  const lines = screen.split("\n");
  const header = lines.find((line) => line.startsWith("NAME "));
  const row = lines.find((line) => line.startsWith(`${name} `));
  if (header === undefined || row === undefined) return undefined;
  return row.slice(header.indexOf(column), header.indexOf(next)).trim();
}

kernelTest("watch shows devices come and go, their state and traffic; Ctrl-C ends it", async () => {
  using tmux = tmuxServer();
  // The shell says how watch ended (it outlives the Ctrl-C, which reaches the
  // whole foreground group, since it is waiting for its child), then stays:
  // tmux can lose what a pane wrote just before it ended.
  const command = `${Deno.execPath()} run --no-prompt --allow-ffi ${cli} watch; ` +
    `echo "watch exited with $?"; sleep 60`;
  tmux.run("new-session", "-d", "-x", "150", "-y", "20", "-s", "watch", command);
  let screen = "";
  const show = () => screen = tmux.run("capture-pane", "-p", "-t", "watch");
  await waitFor(() => show().includes("tuntap watch"), `the view, on a screen of:\n${screen}`);

  const tun = quietDevice("watch");
  const reading = drain(tun);
  try {
    await waitFor(
      () => cell(show(), tun.name, "STATE", "RX PKT/S") === "up",
      `${tun.name} shown up, on a screen of:\n${screen}`,
    );
    // Traffic until a refresh shows it (one interval at least; bounded).
    const deadline = Date.now() + 10000;
    let rate = "";
    while (Date.now() < deadline && !/^[1-9]/.test(rate)) {
      await sendUdp("192.0.2.1", "192.0.2.2", 20);
      await new Promise((resolve) => setTimeout(resolve, 100));
      rate = cell(show(), tun.name, "TX PKT/S", "TX BIT/S") ?? "";
    }
    assert(/^[1-9]/.test(rate), `a non-zero TX PKT/S for ${tun.name}, on a screen of:\n${screen}`);
    assert(/^[1-9]/.test(cell(screen, tun.name, "TX BIT/S", "DROPS") ?? ""), screen);
    assert(/[▂▃▄▅▆▇█]/.test(screen), `a sparkline with traffic, on a screen of:\n${screen}`);
  } finally {
    tun.close();
    await reading;
  }
  await waitFor(
    () => !show().split("\n").some((line) => line.startsWith(`${tun.name} `)),
    `${tun.name} to disappear, on a screen of:\n${screen}`,
  );

  tmux.run("send-keys", "-t", "watch", "C-c");
  await waitFor(() => show().includes("watch exited"), `watch to end on Ctrl-C:\n${screen}`);
  assert(screen.includes("watch exited with 0"), screen);
  // Back from the alternate screen: the view is gone, the shell's screen is back.
  assert(!screen.includes("tuntap watch"), `the view left behind:\n${screen}`);
});

kernelTest("watch without a terminal prints a JSON line per device per refresh", async () => {
  using tun = quietDevice("watchj");
  const reading = drain(tun);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--no-prompt", "--allow-ffi", cli],
      ...["watch", "--json", "--interval", "0.5", "--count", "4", tun.name],
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    await sendUdp("192.0.2.1", "192.0.2.2", 10);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const output = await child.output();
  assertStrictEquals(output.code, 0, decoder.decode(output.stderr));
  const lines = decoder.decode(output.stdout).trim().split("\n").map((line) => JSON.parse(line));
  assertStrictEquals(lines.length, 4);
  for (const line of lines) {
    assertStrictEquals(line.name, tun.name);
    assertStrictEquals(line.up, true);
    assertStrictEquals(line.carrier, true);
    assertStrictEquals(typeof line.operState, "string");
    for (
      const key of [
        "index",
        "mtu",
        "rxPackets",
        "txPackets",
        "rxBytes",
        "txBytes",
        "rxDropped",
        "txDropped",
        "rxPacketsPerSecond",
        "txPacketsPerSecond",
        "rxBitsPerSecond",
        "txBitsPerSecond",
      ]
    ) assertStrictEquals(typeof line[key], "number", key);
  }
  assert(lines.some((line) => line.txPacketsPerSecond > 0), JSON.stringify(lines));
  assert(lines.every((line, i) => i === 0 || line.txPackets >= lines[i - 1].txPackets));

  // Without --json, a pipe gets the same lines.
  const piped = tuntap("watch", "--interval", "0.2", "--count", "1", tun.name);
  assertStrictEquals(piped.code, 0, piped.stderr);
  assertStrictEquals(JSON.parse(piped.stdout).name, tun.name);
  tun.close();
  await reading;
});

Deno.test("watch refuses a bad --interval or --count in one line", () => {
  for (const args of [["--interval", "0"], ["--interval", "x"], ["--count", "1.5"]]) {
    const result = tuntap("watch", ...args);
    assertStrictEquals(result.code, 2, args.join(" "));
    assert(result.stderr.includes(args[0]), result.stderr);
  }
});
