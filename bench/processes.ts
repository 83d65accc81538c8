/**
 * The processes of the benchmark's network cases: commands run to their
 * end, named network namespaces, and long-running services (forwarders,
 * tunnels, iperf3 servers) waited on by what they print.
 *
 * @module
 */

const decoder = new TextDecoder();

/** Runs a command to its end; its stdout, or a failure with its stderr. */
export function run(command: string, ...args: string[]): string {
  const output = new Deno.Command(command, { args, stdin: "null" }).outputSync();
  if (!output.success) {
    const stderr = decoder.decode(output.stderr).trim();
    throw new Error(`${command} ${args.join(" ")} failed: ${stderr}`);
  }
  return decoder.decode(output.stdout);
}

/** Runs a command to its end, whatever becomes of it (for clean-ups). */
export function quietly(command: string, ...args: string[]): void {
  new Deno.Command(command, { args, stdin: "null", stdout: "null", stderr: "null" }).outputSync();
}

/** Like {@linkcode run}, but killed (and failing) after `seconds`, without blocking the loop. */
export async function runFor(seconds: number, command: string, ...args: string[]): Promise<string> {
  const output = await new Deno.Command(command, {
    args,
    stdin: "null",
    signal: AbortSignal.timeout(seconds * 1000),
  }).output();
  if (!output.success) {
    const stderr = decoder.decode(output.stderr).trim();
    const stdout = decoder.decode(output.stdout).trim().slice(-2000);
    throw new Error(`${command} ${args.join(" ")} failed (${output.code}): ${stderr}${stdout}`);
  }
  return decoder.decode(output.stdout);
}

/**
 * A named network namespace with `lo` up and IPv6 off, so that nothing but
 * the benchmark's own packets (no router solicitations, no MLD) crosses it.
 */
export function addNamespace(name: string): void {
  run("ip", "netns", "add", name);
  run("ip", "-n", name, "link", "set", "lo", "up");
  for (const conf of ["all", "default"]) {
    run("ip", "netns", "exec", name, "sysctl", "-qw", `net.ipv6.conf.${conf}.disable_ipv6=1`);
  }
}

/**
 * A long-running process: waited on by what it prints, stopped by a signal.
 * `inNamespace` runs one inside a named network namespace (`ip netns exec`);
 * `tests/udp_tunnel_example_test.ts` runs the tunnel's two ends that way.
 *
 * @example Run iperf3's server in a namespace until it is listening
 * ```ts ignore
 * import { Service } from "./processes.ts";
 *
 * const server = Service.inNamespace("iperf3 -s", "right", ["iperf3", "-s", "-1"]);
 * await server.line(/Server listening/);
 * console.log(await server.stop());
 * ```
 */
export class Service {
  readonly #child: Deno.ChildProcess;
  readonly #stdout: Promise<string>;
  readonly #stderr: Promise<string>;
  #text = "";
  #exited = false;

  /** Starts `command` with `args`; `what` names it in errors. */
  constructor(readonly what: string, command: string, args: string[]) {
    this.#child = new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child.status.then(() => this.#exited = true);
    this.#stdout = this.#collect(this.#child.stdout);
    this.#stderr = new Response(this.#child.stderr).text();
  }

  /** Starts `args` inside the named network namespace `namespace`. */
  static inNamespace(what: string, namespace: string, args: string[]): Service {
    return new Service(what, "ip", ["netns", "exec", namespace, ...args]);
  }

  async #collect(stdout: ReadableStream<Uint8Array>): Promise<string> {
    for await (const text of stdout.pipeThrough(new TextDecoderStream())) this.#text += text;
    return this.#text;
  }

  /** Waits up to `seconds` for stdout to match `pattern` (use `m` to anchor on lines). */
  async line(pattern: RegExp, seconds = 30): Promise<void> {
    for (let i = 0; i < seconds * 50; i++) {
      if (pattern.test(this.#text)) return;
      if (this.#exited) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await this.stop();
    throw new Error(`${this.what} printed no ${pattern}:\n${this.#text}\n${await this.#stderr}`);
  }

  /** Fails with its stderr if it exited on its own. */
  async check(): Promise<void> {
    if (!this.#exited) return;
    const { code } = await this.#child.status;
    throw new Error(`${this.what} exited with ${code}: ${await this.#stderr}`);
  }

  /** The exit code and stderr, once it has exited. */
  async status(): Promise<{ code: number; stderr: string }> {
    const { code } = await this.#child.status;
    await this.#stdout;
    return { code, stderr: await this.#stderr };
  }

  /** What it printed so far. */
  get output(): string {
    return this.#text;
  }

  /** Sends `signal` (SIGTERM by default), then SIGKILL 5 s later; its stdout. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<string> {
    const kill = (signal: Deno.Signal) => {
      try {
        if (!this.#exited) this.#child.kill(signal);
      } catch {
        // It exited between the check and the kill.
      }
    };
    kill(signal);
    const timer = setTimeout(() => kill("SIGKILL"), 5000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#stderr;
    return await this.#stdout;
  }
}
