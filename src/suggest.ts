/**
 * "Did you mean …?" suggestions for misspelt option keys, commands and
 * flags.
 *
 * @module
 */

/** Beyond this many edits a suggestion is more confusing than helpful. */
const MAX_DISTANCE = 2;

/**
 * Returns the name in `names` closest to `input` by Levenshtein distance
 * (insertions, deletions and substitutions of UTF-16 code units), if that
 * distance is at most 2; on a tie, the one listed first. An exact match is
 * returned as is.
 *
 * @example Suggest the intended option key
 * ```ts
 * import { closestName } from "./suggest.ts";
 *
 * closestName("nmae", ["name", "mode", "mtu"]); // "name"
 * closestName("colour", ["name", "mode", "mtu"]); // undefined
 * ```
 *
 * @param input The unknown word the user typed.
 * @param names The valid words, in order of preference for ties.
 * @returns The closest valid word, or `undefined` if none is within 2 edits.
 */
export function closestName(
  input: string,
  names: readonly string[],
): string | undefined {
  let best: string | undefined;
  let bestDistance = MAX_DISTANCE + 1;
  for (const name of names) {
    const distance = levenshtein(input, name, bestDistance);
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
      if (distance === 0) break;
    }
  }
  return best;
}

/**
 * Edit distance between `a` and `b`, or any value ≥ `limit` once it is
 * certain to reach `limit`: callers only care whether it beats the best so
 * far, and the early exit keeps long unrelated inputs cheap.
 */
function levenshtein(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      const value = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + cost,
      );
      current.push(value);
      if (value < rowMin) rowMin = value;
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return previous[b.length];
}
