import { assert, assertMatch } from "./assert.ts";
import { kernelTest, sh, uniqueName } from "./kernel.ts";

const root = new URL("..", import.meta.url).pathname;
const readme = Deno.readTextFileSync(`${root}README.md`);

/** The README's first TypeScript block, importing this checkout instead of JSR. */
function readmeExample(name: string): { code: string; lines: number } {
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error("README.md has no ts code block");
  const code = block
    .replace('"jsr:@tuntap/tuntap/packet"', JSON.stringify(`${root}packet/mod.ts`))
    .replace('"jsr:@tuntap/tuntap"', JSON.stringify(`${root}mod.ts`))
    .replace('"tun0"', JSON.stringify(name));
  return { code, lines: block.trim().split("\n").length };
}

kernelTest("the README's ping responder answers ping over IPv4 and IPv6", async () => {
  const name = uniqueName("readme");
  const { code, lines } = readmeExample(name);
  assert(lines < 20, `the README example has ${lines} lines`);
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(script, code);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", script],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    // Bounded wait for the script to bring the device up.
    for (let i = 0; i < 100 && !sh(`ip -br link show up`).includes(name); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assertMatch(sh("ping -c 2 -W 2 192.0.2.7"), /2 received/);
    assertMatch(sh("ping -6 -c 2 -W 2 2001:db8::7"), /2 received/);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await child.stderr.cancel();
    await Deno.remove(script);
  }
});
