/**
 * `struct pollfd` from `<poll.h>`: `{ int fd; short events; short revents; }`.
 *
 * @module
 */

/** `sizeof(struct pollfd)`. */
export const sizeof_pollfd = 8;

/** An array of `struct pollfd`, one per fd, with `events` zeroed. */
export function pollfds(fds: readonly number[]): Uint8Array {
  const array = new Uint8Array(fds.length * sizeof_pollfd);
  const view = new DataView(array.buffer);
  fds.forEach((fd, i) => view.setInt32(i * sizeof_pollfd, fd, true));
  return array;
}

/** Sets `events` of entry `i` and clears its `revents`. */
export function set_events(array: Uint8Array, i: number, events: number): void {
  const view = new DataView(array.buffer, array.byteOffset);
  view.setInt16(i * sizeof_pollfd + 4, events, true);
  view.setInt16(i * sizeof_pollfd + 6, 0, true);
}

/** `revents` of entry `i`. */
export function revents(array: Uint8Array, i: number): number {
  return new DataView(array.buffer, array.byteOffset).getUint16(
    i * sizeof_pollfd + 6,
    true,
  );
}
