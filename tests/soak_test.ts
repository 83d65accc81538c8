/**
 * Runs the soak (tests/soak.ts) for 10 seconds: `deno task soak` is the
 * same for 60 seconds or as long as asked.
 */
import { assert, assertStrictEquals } from "./assert.ts";
import { kernelTest } from "./kernel.ts";

const decoder = new TextDecoder();

kernelTest(
  "soak: 10 s of numbered UDP through the forward example lose none outside the kernel's counted drops, duplicate none, reorder none",
  async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--unstable-net",
        new URL("soak.ts", import.meta.url).pathname,
        "--seconds",
        "10",
      ],
      stdin: "null",
      signal: AbortSignal.timeout(120_000),
    }).output();
    const stdout = decoder.decode(output.stdout);
    console.log(stdout.trim());
    const last = stdout.trim().split("\n").at(-1) ?? "";
    assert(last.startsWith("soak result "), `${stdout}\n${decoder.decode(output.stderr)}`);
    const result = JSON.parse(last.slice("soak result ".length));
    const { left, right, udpRight } = result.kernelDrops;
    assert(result.sent > 0, "datagrams sent");
    assert(result.lost <= left.tx + right.rx + udpRight, `${result.lost} lost`);
    assertStrictEquals(result.duplicated, 0);
    assertStrictEquals(result.reordered, 0);
    assertStrictEquals(result.corrupted, 0);
    assertStrictEquals(output.code, 0, decoder.decode(output.stderr));
  },
);
