import { assert, assertEquals } from "./assert.ts";
import { kernelTest } from "./kernel.ts";
import type { BenchReport } from "../bench/bench_case.ts";

const root = new URL("..", import.meta.url).pathname;

// The read and write cases; forward.ts adds the forward and latency ones.
const packetCases = [
  ...["64B", "1400B"].flatMap((size) =>
    ["read()", "for await", "readable", "readInto", "readBatch"].map((v) => `read ${size} ${v}`)
  ),
  ...["64B", "1400B"].flatMap((size) =>
    ["write()", "writeBatch", "writable"].map((v) => `write ${size} ${v}`)
  ),
];

kernelTest(
  "bench --quick --tiny prints every case and writes it to results.json with positive numbers",
  async () => {
    const out = await Deno.makeTempDir({ prefix: "tuntap-bench-test-" });
    try {
      // What `deno task bench` runs once inside the private namespace, which this test is in.
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          "--unstable-net",
          "bench/main.ts",
          "--quick",
          "--tiny",
          "--out",
          out,
        ],
        cwd: root,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // A bound on a hung run, not an assertion about speed.
      const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
      const output = await child.output();
      clearTimeout(timer);
      const stdout = new TextDecoder().decode(output.stdout);
      const stderr = new TextDecoder().decode(output.stderr);
      assert(output.success, `bench exited with ${output.code}:\n${stdout}\n${stderr}`);

      const report = JSON.parse(await Deno.readTextFile(`${out}/results.json`)) as BenchReport;
      const names = report.cases.map((c) => c.name);
      assertEquals(names.slice(0, packetCases.length), packetCases);
      assert(names.some((n) => n.startsWith("forward ")), `no forward case in ${names}`);
      assert(names.some((n) => n.startsWith("latency ")), `no latency case in ${names}`);
      assert(names.some((n) => n.startsWith("tunnel ")), `no tunnel case in ${names}`);
      assertEquals(new Set(names).size, names.length, "case names repeat");
      for (const c of report.cases) {
        assert(stdout.includes(`| ${c.name} `), `the table lacks ${c.name}`);
        for (const value of [...Object.values(c.library), ...Object.values(c.c)]) {
          assert(Number.isFinite(value) && value > 0, `${c.name}: ${JSON.stringify(c)}`);
        }
        assert(c.ratio > 0 && Number.isFinite(c.ratio), `${c.name}: ratio ${c.ratio}`);
        assert(c.unit.length > 0, `${c.name} has no unit`);
      }
      assert(report.machine.cores > 0 && report.machine.kernel && report.machine.deno);
      assert(!Number.isNaN(Date.parse(report.date)), `date ${report.date}`);
      const svg = await Deno.readTextFile(`${out}/results.svg`);
      assert(svg.startsWith("<svg") && svg.trimEnd().endsWith("</svg>"), "results.svg is no SVG");
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
);
