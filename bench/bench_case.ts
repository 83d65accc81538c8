/**
 * One line of the benchmark's results: a case measured for the library and
 * for the C program doing the same work in the same run, and how they
 * compare. Every part of the benchmark (`main.ts`, `forward.ts`) hands its
 * results to the table, `results.json` and the chart in this shape.
 *
 * @module
 */

/** The smallest, median and largest of a case's per-round samples. */
export interface Spread {
  min: number;
  median: number;
  max: number;
}

/**
 * A benchmark case: the library against C.
 *
 * @example Reading a case
 * ```ts
 * import { type BenchCase } from "./bench_case.ts";
 *
 * const result: BenchCase = {
 *   name: "read 64B readBatch",
 *   unit: "pkt/s",
 *   library: { min: 850_000, median: 900_000, max: 910_000 },
 *   c: { min: 940_000, median: 960_000, max: 1_000_000 },
 *   ratio: 900_000 / 960_000,
 * };
 * console.log(`${result.name}: ${result.ratio.toFixed(2)} of C`);
 * ```
 */
export interface BenchCase {
  /** The scenario then the variant: `read 64B readBatch`, `forward MTU 1500 offload`. */
  name: string;
  /** What the numbers count: `pkt/s`, `Gbit/s`, `µs`. */
  unit: string;
  /** The library's samples, one per round. */
  library: Spread;
  /** The C program's samples from the same rounds. */
  c: Spread;
  /**
   * `library.median / c.median`. For a rate, above 1 means the library is
   * faster; for a time (`unit` µs, ms, ns or s), above 1 means it is slower.
   */
  ratio: number;
  /** Anything the numbers need to be read right ("delivered 100%"). */
  note?: string;
}

/**
 * The median of some samples (the mean of the middle two for an even count).
 *
 * @example The middle sample
 * ```ts
 * import { median } from "./bench_case.ts";
 *
 * console.log(median([3, 1, 2])); // 2
 * ```
 */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError("Cannot take the median of no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * The min, median and max of some samples.
 *
 * @example A spread
 * ```ts
 * import { spread } from "./bench_case.ts";
 *
 * console.log(spread([3, 1, 2])); // { min: 1, median: 2, max: 3 }
 * ```
 */
export function spread(samples: readonly number[]): Spread {
  return { min: Math.min(...samples), median: median(samples), max: Math.max(...samples) };
}

/**
 * How `main.ts` asks every part of the benchmark to run: `forwardCases()`
 * and `latencyCases()` take it too.
 *
 * @example The quick run
 * ```ts
 * import type { RunOptions } from "./bench_case.ts";
 *
 * const options: RunOptions = { rounds: 3, quick: true, tiny: false, only: ["forward"] };
 * console.log(options.rounds);
 * ```
 */
export interface RunOptions {
  /** Interleaved rounds per case (library, C, library, C…). */
  rounds: number;
  /** Counts small enough that every case together takes under two minutes. */
  quick: boolean;
  /** Counts so small the numbers mean nothing: for the test that keeps the bench from rotting. */
  tiny: boolean;
  /** Prefixes of the case names to run (see {@linkcode isSelected}); all when missing. */
  only?: string[];
}

/** What {@linkcode benchCase} takes besides the samples. */
export interface BenchCaseOptions {
  /** The scenario then the variant. */
  name: string;
  /** What the samples count. */
  unit: string;
  /** Anything the numbers need to be read right. */
  note?: string;
}

/**
 * Builds a case from the library's and C's per-round samples: their spreads
 * and the ratio of the medians, library / C.
 *
 * @example Two sample arrays
 * ```ts
 * import { benchCase } from "./bench_case.ts";
 *
 * const result = benchCase({ name: "write 64B write()", unit: "pkt/s" }, [
 *   300_000,
 *   320_000,
 *   310_000,
 * ], [400_000, 380_000, 390_000]);
 * console.log(result.ratio.toFixed(2)); // "0.79"
 * ```
 */
export function benchCase(
  options: BenchCaseOptions,
  library: readonly number[],
  c: readonly number[],
): BenchCase {
  const result: BenchCase = {
    name: options.name,
    unit: options.unit,
    library: spread(library),
    c: spread(c),
    ratio: median(library) / median(c),
  };
  if (options.note !== undefined) result.note = options.note;
  return result;
}

/**
 * Whether `--only` selects a case: every case when `only` is missing or
 * empty, otherwise a case whose name starts with one of its entries
 * (`read` selects every read case, `read 64B` the 64-byte ones,
 * `forward MTU 9000` both of that MTU).
 *
 * @example Filtering by scenario
 * ```ts
 * import { isSelected } from "./bench_case.ts";
 *
 * console.log(isSelected("read 64B readBatch", ["read 64B"])); // true
 * console.log(isSelected("forward MTU 1500", ["read"])); // false
 * ```
 */
export function isSelected(name: string, only?: readonly string[]): boolean {
  if (only === undefined || only.length === 0) return true;
  return only.some((prefix) => name.startsWith(prefix));
}

/**
 * Whether a unit counts time, where a smaller number (and ratio) is better.
 *
 * @example Rates and times
 * ```ts
 * import { isTimeUnit } from "./bench_case.ts";
 *
 * console.log(isTimeUnit("µs")); // true
 * console.log(isTimeUnit("Gbit/s")); // false
 * ```
 */
export function isTimeUnit(unit: string): boolean {
  return ["ns", "µs", "us", "ms", "s"].includes(unit);
}

/** The machine a run measured. */
export interface Machine {
  /** The CPU model, from /proc/cpuinfo. */
  cpu: string;
  /** Logical CPUs. */
  cores: number;
  /** The kernel release. */
  kernel: string;
  /** The Deno version. */
  deno: string;
}

/**
 * What `bench/results.json` holds and `chart.ts` draws.
 *
 * @example A report
 * ```ts
 * import type { BenchReport } from "./bench_case.ts";
 *
 * const report: BenchReport = {
 *   machine: { cpu: "Example CPU", cores: 2, kernel: "6.18.0", deno: "2.9.6" },
 *   date: new Date().toISOString(),
 *   cases: [],
 * };
 * console.log(report.cases.length);
 * ```
 */
export interface BenchReport {
  /** Where it ran. */
  machine: Machine;
  /** When it ran, ISO 8601. */
  date: string;
  /** Every case, in the order run. */
  cases: BenchCase[];
}
