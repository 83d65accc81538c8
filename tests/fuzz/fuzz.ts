/**
 * What every fuzz property shares: how many runs and which seed, which
 * outcomes are allowed, and the check that a run left no fd open and no
 * device behind.
 *
 * `deno task test` runs each entry point 2,000 times with a fixed seed, so
 * that CI is reproducible; `deno task fuzz` sets `FUZZ_RUNS` (20,000 unless
 * given) and draws a fresh seed unless `FUZZ_SEED` names one. The seed is
 * printed with every property: `FUZZ_SEED=… deno task fuzz` replays a
 * failure.
 *
 * @module
 */

import fc from "fast-check";
import { TunError } from "../../mod.ts";
import { openFdCount } from "../kernel.ts";

const FIXED_SEED = 20_261_127;

/** Runs per entry point: `FUZZ_RUNS`, or 2,000. */
export const RUNS: number = Number(Deno.env.get("FUZZ_RUNS") ?? 2_000);

/** `FUZZ_SEED`; else a fresh one under `deno task fuzz`, the fixed one in CI. */
export const SEED: number = Deno.env.get("FUZZ_SEED") !== undefined
  ? Number(Deno.env.get("FUZZ_SEED"))
  : Deno.env.get("FUZZ_RUNS") !== undefined
  ? crypto.getRandomValues(new Uint32Array(1))[0] | 0
  : FIXED_SEED;

/** The errors any entry point may throw: the caller's mistake or the kernel's refusal. */
export function isAllowedError(error: unknown): boolean {
  return error instanceof TypeError || error instanceof RangeError || error instanceof TunError;
}

/** Names of the network interfaces in this namespace, from its sysfs. */
export function interfaceNames(): Set<string> {
  return new Set([...Deno.readDirSync("/sys/class/net")].map((entry) => entry.name));
}

// Outcomes of the current property, printed with it: how many runs got past validation.
const tally = new Map<string, number>();

/**
 * Runs `body` and classifies its outcome: it must return or throw an error
 * that `allowed` accepts (by default {@linkcode isAllowedError}); anything
 * else fails the property with the error attached.
 */
export async function outcome<T>(
  body: () => T | Promise<T>,
  allowed: (error: unknown) => boolean = isAllowedError,
): Promise<{ value?: T; error?: unknown }> {
  try {
    const value = await body();
    tally.set("ok", (tally.get("ok") ?? 0) + 1);
    return { value };
  } catch (error) {
    if (allowed(error)) {
      const kind = (error as Error).constructor.name;
      tally.set(kind, (tally.get(kind) ?? 0) + 1);
      return { error };
    }
    throw new Error(`disallowed outcome: ${describeError(error)}`, { cause: error });
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}`;
  return `a thrown ${typeof error} (${String(error)})`;
}

/** Options of {@linkcode fuzz}. */
export interface FuzzOptions {
  /** Runs instead of {@linkcode RUNS} (say, a multiple for a pure function). */
  runs?: number;
  /**
   * Devices a run may leave on purpose (a `persist: true` open that
   * succeeded): removed after the run rather than reported.
   */
  expectedDevices?: () => Iterable<string>;
  /** Removes a device the run was allowed to leave. */
  removeDevice?: (name: string) => void;
}

/**
 * Checks `property` over `arbitrary` for {@linkcode RUNS} runs with
 * {@linkcode SEED}, and after every run that no fd stayed open and no
 * interface appeared or vanished (beyond `expectedDevices`). Prints the
 * runs, the seed and the time taken.
 */
export async function fuzz<T>(
  entryPoint: string,
  arbitrary: fc.Arbitrary<T>,
  property: (input: T) => Promise<void> | void,
  options: FuzzOptions = {},
): Promise<void> {
  const runs = options.runs ?? RUNS;
  tally.clear();
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(arbitrary, async (input) => {
      const fds = openFdCount();
      const devices = interfaceNames();
      await property(input);
      const expected = new Set(options.expectedDevices?.() ?? []);
      const after = interfaceNames();
      for (const name of after) {
        if (devices.has(name)) continue;
        if (!expected.has(name)) throw new Error(`device "${name}" was left behind`);
        options.removeDevice?.(name);
      }
      for (const name of devices) {
        if (!after.has(name)) throw new Error(`device "${name}" vanished`);
      }
      const left = openFdCount() - fds;
      if (left > 0) throw new Error(`${left} fd(s) left open`);
    }),
    { numRuns: runs, seed: SEED },
  );
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const outcomes = [...tally].map(([kind, count]) => `${kind} ${count}`).join(", ");
  console.log(`fuzz ${entryPoint}: ${runs} runs, seed ${SEED}, ${seconds} s (${outcomes})`);
}

/**
 * Any value at all, weighted towards the ones validation must tell apart:
 * wrong primitive types, edge numbers, empty and odd objects.
 */
export const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    undefined,
    null,
    true,
    false,
    0,
    -0,
    -1,
    1.5,
    NaN,
    Infinity,
    -Infinity,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    "",
    "0",
    "1",
    0n,
    Symbol("junk"),
    [],
    {},
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.anything({ maxDepth: 2, maxKeys: 3 }),
);
