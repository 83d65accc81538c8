/**
 * IPv4 and TCP option lists, which share one layout (RFC 791, RFC 9293):
 * kind 0 ends the list, kind 1 is a one-byte no-operation, and every other
 * option is kind, length (counting both), data. Internal: not exported
 * from the package.
 *
 * @module
 */

/**
 * The offset of the first option in `bytes[start, end)` for which `match`
 * holds, or -1. The end of the list or a malformed length ends the search
 * rather than throws: a reader that only looks for one option does not
 * make the packet unreadable.
 */
export function findOption(
  bytes: Uint8Array,
  start: number,
  end: number,
  match: (kind: number, length: number, at: number) => boolean,
): number {
  let cursor = start;
  while (cursor < end) {
    const kind = bytes[cursor];
    if (kind === 0) return -1; // end of option list
    if (kind === 1) { // no operation
      cursor++;
      continue;
    }
    if (cursor + 1 >= end) return -1;
    const length = bytes[cursor + 1];
    if (length < 2 || cursor + length > end) return -1;
    if (match(kind, length, cursor)) return cursor;
    cursor += length;
  }
  return -1;
}
