/**
 * An example run as its own `deno run` process, for the tests that drive
 * the examples with real traffic.
 *
 * @module
 */

const root = new URL("..", import.meta.url).pathname;

/** A running example: its stdout as lines, waited on with bounded polling. */
export class Example implements AsyncDisposable {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<[void, string]>;
  #exited = false;

  constructor(script: string, args: string[], permissions = ["--allow-ffi"]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, `${root}examples/${script}`, ...args],
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child.status.then(() => {
      this.#exited = true;
    });
    this.#output = Promise.all([this.#collect(), new Response(this.#child.stderr).text()]);
  }

  async #collect(): Promise<void> {
    let partial = "";
    for await (const text of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
    }
    if (partial !== "") this.lines.push(partial);
  }

  /** The first line matching `pattern`, waiting up to `ms` for it. */
  async line(pattern: RegExp, ms = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (let i = 0; i < ms / 20 + 1 && Date.now() < deadline; i++) {
      for (const line of this.lines) {
        const match = line.match(pattern);
        if (match) return match;
      }
      if (this.#exited) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { stderr } = await this.exit("SIGKILL");
    throw new Error(`no line matching ${pattern} in:\n${this.lines.join("\n")}\n${stderr}`);
  }

  /**
   * Sends `signal` (if any) and waits up to `ms` for the exit; a process
   * still running then is killed, which its exit code shows.
   */
  async exit(signal?: Deno.Signal, ms = 10_000): Promise<{ code: number; stderr: string }> {
    if (signal) this.#kill(signal);
    const timer = setTimeout(() => this.#kill("SIGKILL"), ms);
    try {
      const { code } = await this.#child.status;
      const [, stderr] = await this.#output;
      return { code, stderr };
    } finally {
      clearTimeout(timer);
    }
  }

  #kill(signal: Deno.Signal): void {
    if (this.#exited) return;
    try {
      this.#child.kill(signal);
    } catch {
      // It exited between the check and the kill.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.exit("SIGKILL");
  }
}
