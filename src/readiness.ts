/**
 * Waiting for a non-blocking device fd without parking a read on a pool thread.
 *
 * The device fd and an eventfd sit in an epoll set. One `poll()` at a time
 * runs on Deno's blocking pool, and it watches only the epoll fd, never the
 * device fd: so `close()` can close the device fd at once (the kernel drops
 * it from the epoll set), and the device is detached and its name free when
 * `close()` returns. The epoll fd and the eventfd outlive a poll in flight
 * and are released when it returns, so their numbers cannot be handed to
 * another `open()` while a pool thread still watches them.
 *
 * The device is registered once, edge-triggered, for input and output: a
 * waiter of either direction that arrives while a poll is in flight is
 * covered, and the EPOLLIN-only wake-up with which the kernel reports a
 * deleted device reaches writers too. Edge-triggered is right because
 * readers and writers only wait after their synchronous call said EAGAIN,
 * and an edge that arrives while no one waits stays queued in the epoll set
 * until the next `epoll_wait`.
 *
 * @module
 */
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  POLLIN,
} from "../ffi/constants.ts";
import { epoll_event, epoll_events, event_data, event_events } from "../ffi/epoll_event.ts";
import { libc } from "../ffi/libc.ts";
import { pollfds, set_events } from "../ffi/pollfd.ts";
import { check } from "./syscall.ts";

interface Waiter {
  resolve(ready: boolean): void;
  reject(reason: unknown): void;
}

const DEVICE = 0;
const WAKE = 1;
const WAKE_READERS = EPOLLIN | EPOLLERR | EPOLLHUP;
const WAKE_WRITERS = EPOLLOUT | EPOLLERR | EPOLLHUP;
const counter = new BigUint64Array(1);

/** The fds a {@linkcode Readiness} holds, for a finalization backstop. */
export interface ReadinessFds {
  fd: number;
  epollFd: number;
  eventFd: number;
}

/** Closes fds that a forgotten handle still held. */
export function closeFds({ fd, epollFd, eventFd }: ReadinessFds): void {
  for (const each of [fd, epollFd, eventFd]) if (each >= 0) libc().close(each);
}

/** Waits for readability or writability of one fd; owns that fd's closing. */
export class Readiness {
  readonly #fd: number;
  readonly #epollFd: number;
  readonly #eventFd: number;
  readonly #pollfd: Uint8Array;
  readonly #events = epoll_events(2);
  readonly #readers = new Set<Waiter>();
  readonly #writers = new Set<Waiter>();
  #polling = false;
  #closed = false;
  #released = false;

  /**
   * Creates the epoll set and the eventfd; on failure throws a TunError and
   * closes what it made (but not `fd`).
   */
  constructor(fd: number, describe: () => string) {
    const made: number[] = [];
    try {
      const epollFd = check(
        libc().epoll_create1(EPOLL_CLOEXEC),
        "epoll_create1",
        () => `create the epoll set for ${describe()}`,
      );
      made.push(epollFd);
      const eventFd = check(
        libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
        "eventfd",
        () => `create the wake-up eventfd for ${describe()}`,
      );
      made.push(eventFd);
      const watch = (target: number, events: number, data: number) =>
        check(
          libc().epoll_ctl(epollFd, EPOLL_CTL_ADD, target, epoll_event(events, data)),
          "epoll_ctl",
          () => `watch ${describe()}`,
        );
      watch(fd, EPOLLIN | EPOLLOUT | EPOLLET, DEVICE);
      watch(eventFd, EPOLLIN, WAKE);
      this.#fd = fd;
      this.#epollFd = epollFd;
      this.#eventFd = eventFd;
    } catch (error) {
      for (const each of made) libc().close(each);
      throw error;
    }
    this.#pollfd = pollfds([this.#epollFd]);
    set_events(this.#pollfd, 0, POLLIN);
  }

  /** The fds, for the finalization backstop. */
  get fds(): ReadinessFds {
    return { fd: this.#fd, epollFd: this.#epollFd, eventFd: this.#eventFd };
  }

  /**
   * Resolves `true` once the fd may be readable (or writable), `false` once
   * closed; rejects with the signal's reason when aborted.
   */
  wait(direction: "read" | "write", signal?: AbortSignal): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (signal?.aborted) return Promise.reject(signal.reason);
    const waiters = direction === "read" ? this.#readers : this.#writers;
    const { promise, resolve, reject } = Promise.withResolvers<boolean>();
    const waiter: Waiter = { resolve, reject };
    if (signal) {
      const onAbort = () => {
        waiters.delete(waiter);
        reject(signal.reason);
        // No one left to wait for: end the poll so no pool thread stays busy.
        if (this.#readers.size + this.#writers.size === 0 && this.#polling) this.#wake();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      waiter.resolve = (ready) => {
        signal.removeEventListener("abort", onAbort);
        resolve(ready);
      };
    }
    waiters.add(waiter);
    if (!this.#polling) this.#poll();
    return promise;
  }

  /**
   * Closes the device fd at once and wakes every waiter with `false`. The
   * epoll fd and the eventfd go too, at once when no poll is in flight, else
   * as soon as the eventfd has ended it.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc().close(this.#fd);
    for (const waiter of [...this.#readers, ...this.#writers]) waiter.resolve(false);
    this.#readers.clear();
    this.#writers.clear();
    if (this.#polling) this.#wake();
    else this.#release();
  }

  #wake(): void {
    counter[0] = 1n;
    libc().write(this.#eventFd, counter, 8n);
  }

  async #poll(): Promise<void> {
    this.#polling = true;
    const events = this.#events;
    try {
      while (!this.#closed && this.#readers.size + this.#writers.size > 0) {
        // A failed poll (EINTR on the pool thread) just goes round again.
        await libc().poll(this.#pollfd, 1n, -1);
        if (this.#closed) break;
        const count = libc().epoll_wait(this.#epollFd, events, 2, 0);
        for (let i = 0; i < count; i++) {
          if (event_data(events, i) === WAKE) {
            libc().read(this.#eventFd, counter, 8n);
            continue;
          }
          const ready = event_events(events, i);
          if (ready & WAKE_READERS) settle(this.#readers);
          if (ready & WAKE_WRITERS) settle(this.#writers);
        }
      }
    } finally {
      this.#polling = false;
      if (this.#closed) this.#release();
    }
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    libc().close(this.#epollFd);
    libc().close(this.#eventFd);
  }
}

function settle(waiters: Set<Waiter>): void {
  const woken = [...waiters];
  waiters.clear();
  for (const waiter of woken) waiter.resolve(true);
}
