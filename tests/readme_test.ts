import { assert, assertMatch, assertStrictEquals } from "./assert.ts";
import { kernelTest, sh, uniqueName } from "./kernel.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const readme = Deno.readTextFileSync(`${root}/README.md`);

/** The README's first code block of a language. */
function readmeBlock(language: string): string {
  const block = new RegExp("```" + language + "\\n([\\s\\S]*?)```").exec(readme)?.[1];
  if (!block) throw new Error(`README.md has no ${language} code block`);
  return block;
}

/**
 * A project laid out as the README tells someone who is not on JSR yet: its
 * `deno.json` maps the package's names to this clone, and the README's ping
 * responder is its script, with the device name made unique.
 */
function readmeProject(name: string): { dir: string; lines: number } {
  const dir = Deno.makeTempDirSync();
  const code = readmeBlock("ts");
  Deno.writeTextFileSync(`${dir}/deno.json`, readmeBlock("json").replaceAll("../tuntap", root));
  Deno.writeTextFileSync(`${dir}/ping_responder.ts`, code.replace('"tun0"', JSON.stringify(name)));
  return { dir, lines: code.trim().split("\n").length };
}

/** Hands the device bytes no kernel stack would send: an IPv4 header cut short. */
function injectMalformed(device: string): void {
  const python = `import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.sendto(bytes([0x4f, 0, 0, 10, 0, 0, 0, 0, 64, 1]), ("${device}", 0x0800))`;
  sh(`python3 -c '${python}'`);
}

kernelTest(
  "the README's ping responder, imported through the README's deno.json, answers ping and survives big pings and malformed packets",
  async () => {
    const name = uniqueName("readme");
    const { dir, lines } = readmeProject(name);
    assert(lines < 20, `the README example has ${lines} lines`);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-ffi", "ping_responder.ts"],
      cwd: dir,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let exited = false;
    child.status.then(() => exited = true);
    try {
      // Bounded wait for the script to bring the device up.
      for (let i = 0; i < 200 && !exited && !sh(`ip -br link show up`).includes(name); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assertMatch(sh("ping -c 2 -W 2 192.0.2.7"), /2 received/);
      assertMatch(sh("ping -6 -c 2 -W 2 2001:db8::7"), /2 received/);
      // 2000 bytes arrive as fragments, which the responder passes over.
      sh("ping -c 1 -W 1 -s 2000 192.0.2.7 || true");
      sh("ping -6 -c 1 -W 1 -s 2000 2001:db8::7 || true");
      injectMalformed(name);
      assertMatch(sh("ping -c 2 -W 2 192.0.2.7"), /2 received/);
      assertStrictEquals(exited, false, "the responder died");
    } finally {
      if (!exited) child.kill("SIGTERM");
      await child.status;
      const stderr = await new Response(child.stderr).text();
      assert(!/error/i.test(stderr), stderr);
      Deno.removeSync(dir, { recursive: true });
    }
  },
);
