// Views of one buffer, kept by index and handed out again while their bounds repeat: a
// tunnel's batches cut the same buffers at the same places packet after packet, so in a
// steady stream no view is allocated at all.

/**
 * Views of `bytes` by index.
 *
 * @example Reuse a packet's view
 * ```ts ignore
 * const views = new ViewCache(new Uint8Array(4096), 64);
 * const a = views.view(0, 0, 1400);
 * a === views.view(0, 0, 1400); // true
 * ```
 */
export class ViewCache {
  readonly #bytes: Uint8Array;
  readonly #starts: Int32Array;
  readonly #ends: Int32Array;
  readonly #views: Uint8Array[];

  constructor(bytes: Uint8Array, size: number) {
    this.#bytes = bytes;
    this.#starts = new Int32Array(size).fill(-1);
    this.#ends = new Int32Array(size);
    this.#views = new Array(size);
  }

  /** `bytes.subarray(start, end)`, the one handed out last time for `index` if it matches. */
  view(index: number, start: number, end: number): Uint8Array {
    if (this.#starts[index] === start && this.#ends[index] === end) return this.#views[index];
    this.#starts[index] = start;
    this.#ends[index] = end;
    return this.#views[index] = this.#bytes.subarray(start, end);
  }
}
