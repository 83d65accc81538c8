/**
 * `struct epoll_event` from `<sys/epoll.h>`: `{ uint32_t events; epoll_data_t data; }`.
 * x86_64 packs it (12 bytes, `data` at offset 4); other architectures align
 * `data` to 8 (16 bytes).
 *
 * @module
 */

/** `sizeof(struct epoll_event)` on this architecture. */
export const sizeof_epoll_event = Deno.build.arch === "x86_64" ? 12 : 16;
const DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;

/** An array of `count` zeroed `struct epoll_event`s. */
export function epoll_events(count: number): Uint8Array {
  return new Uint8Array(count * sizeof_epoll_event);
}

/** One `struct epoll_event` with `events` and a 32-bit `data.u32`, for `epoll_ctl`. */
export function epoll_event(events: number, data: number): Uint8Array {
  const event = epoll_events(1);
  const view = new DataView(event.buffer);
  view.setUint32(0, events >>> 0, true);
  view.setUint32(DATA_OFFSET, data, true);
  return event;
}

/** `events` of entry `i`. */
export function event_events(array: Uint8Array, i: number): number {
  return new DataView(array.buffer, array.byteOffset).getUint32(i * sizeof_epoll_event, true);
}

/** `data.u32` of entry `i`. */
export function event_data(array: Uint8Array, i: number): number {
  return new DataView(array.buffer, array.byteOffset).getUint32(
    i * sizeof_epoll_event + DATA_OFFSET,
    true,
  );
}
