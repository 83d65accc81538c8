/**
 * Helpers for the CLI tests: run `tuntap` as a user would, a capture in the
 * background, UDP to send, tcpdump to read what was recorded.
 *
 * @module
 */
import { assertStrictEquals } from "./assert.ts";
import { interfaceExists, sh, uniqueName } from "./kernel.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();
/** The CLI entry point. */
export const cli = new URL("../cli/main.ts", import.meta.url).pathname;

/** What a CLI run printed and its exit status. */
export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with only --allow-ffi, as a user would. */
export function tuntap(...args: string[]): Output {
  return run(["--allow-ffi"], args);
}

/** Runs the CLI as `deno task tuntap` does: --allow-ffi and --allow-write. */
export function tuntapWrite(...args: string[]): Output {
  return run(["--allow-ffi", "--allow-write"], args);
}

/** Runs the CLI with the permissions given, NO_COLOR set and no stdin. */
export function run(permissions: string[], args: string[]): Output {
  const output = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...permissions, cli, ...args],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).outputSync();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Polls `done` every 20 ms; fails after `ms` milliseconds saying what was awaited. */
export async function waitFor(done: () => boolean, what: string, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A `tuntap capture` running in the background, its output collected as it comes. */
export class Capture {
  stdout = "";
  stderr = "";
  exited = false;
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<Deno.CommandStatus>;

  /** With `umask`, the capture runs under that umask (an octal string, e.g. "000"). */
  constructor(args: string[], options: { umask?: string } = {}) {
    const deno = [
      Deno.execPath(),
      "run",
      "--no-prompt",
      "--allow-ffi",
      "--allow-write",
      cli,
      "capture",
      ...args,
    ];
    const [program, ...rest] = options.umask === undefined
      ? deno
      : ["sh", "-c", `umask ${options.umask} && exec "$@"`, "sh", ...deno];
    this.#child = new Deno.Command(program, {
      args: rest,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
      const text = new TextDecoder();
      for await (const chunk of stream) this[key] += text.decode(chunk, { stream: true });
    };
    const streams = Promise.all([
      collect(this.#child.stdout, "stdout"),
      collect(this.#child.stderr, "stderr"),
    ]);
    this.#done = this.#child.status.then(async (status) => {
      await streams;
      this.exited = true;
      return status;
    });
  }

  /** Resolves once the device is attached and the signal handlers are in place. */
  ready(): Promise<void> {
    return waitFor(
      () => this.stderr.includes("capturing on") || this.exited,
      "capture to attach",
    ).then(() => {
      if (!this.stderr.includes("capturing on")) {
        throw new Error(`capture ended before attaching: ${this.stderr}`);
      }
    });
  }

  /** The packet lines printed so far. */
  get lines(): string[] {
    return this.stdout.split("\n").filter((line) => line !== "");
  }

  /** The process id of the capture. */
  get pid(): number {
    return this.#child.pid;
  }

  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Waits for the process to end, killing it after `ms` milliseconds. */
  async finish(ms = 20000): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#child.kill("SIGKILL");
        reject(new Error(`capture did not end within ${ms} ms: ${this.stderr}`));
      }, ms);
    });
    try {
      return await Promise.race([this.#done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Sends `count` UDP datagrams from `from` to `to` port 9. */
export async function sendUdp(from: string, to: string, count: number): Promise<void> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: from, port: 0 });
  try {
    for (let i = 0; i < count; i++) {
      await socket.send(encoder.encode(`datagram ${i}`), {
        transport: "udp",
        hostname: to,
        port: 9,
      });
    }
  } finally {
    socket.close();
  }
}

/** `tcpdump -r FILE`: its packet lines and its stderr. */
export function tcpdumpRead(file: string): { lines: string[]; stderr: string } {
  const output = new Deno.Command("tcpdump", { args: ["-n", "-r", file], stdin: "null" })
    .outputSync();
  const stderr = decoder.decode(output.stderr);
  if (!output.success) throw new Error(`tcpdump -r ${file} failed: ${stderr}`);
  return {
    lines: decoder.decode(output.stdout).split("\n").filter((line) => line !== ""),
    stderr,
  };
}

/**
 * A persistent TUN (or TAP) device made by `tuntap create` with an IPv4
 * address, up, and IPv6 off so that no router solicitation or MLD report
 * joins the packets a test counts. Removed on dispose.
 */
export function testDevice(prefix: string, cidr: string, ...options: string[]): Disposable & {
  name: string;
} {
  const name = uniqueName(prefix);
  const created = tuntap("create", name, "--address", cidr, "--up", ...options);
  assertStrictEquals(created.code, 0, created.stderr);
  sh(`echo 1 > /proc/sys/net/ipv6/conf/${name}/disable_ipv6`);
  return {
    name,
    [Symbol.dispose]: () => {
      if (interfaceExists(name)) sh(`ip link del ${name}`);
    },
  };
}

/**
 * What `tuntap list` prints on a terminal (through `script`), in a clean
 * environment plus `env`: the runner's own NO_COLOR must not leak in.
 */
export function listOnTerminal(env: Record<string, string>): string {
  return decoder.decode(
    new Deno.Command("script", {
      args: ["-qec", `${Deno.execPath()} run --allow-ffi ${cli} list`, "/dev/null"],
      stdin: "null",
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
    }).outputSync().stdout,
  );
}
