/**
 * Waiting for a non-blocking fd without parking a read on a pool thread.
 *
 * One `poll()` at a time runs on Deno's blocking pool, over the device fd and
 * an eventfd. Readers and writers that met EAGAIN queue here and are woken
 * together when it returns; they then retry their synchronous calls. The
 * eventfd lets `close()` and an aborted wait end a poll that no one needs any
 * more, and the fds are released only once no poll can still be watching
 * them (otherwise the kernel could hand the same number to the next `open()`
 * while the old poll still watches it).
 *
 * @module
 */
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
} from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { pollfds, revents, set_events } from "../ffi/pollfd.ts";
import { check } from "./syscall.ts";

interface Waiter {
  resolve(ready: boolean): void;
  reject(reason: unknown): void;
}

const WAKE_READERS = POLLIN | POLLERR | POLLHUP | POLLNVAL;
const WAKE_WRITERS = POLLOUT | POLLERR | POLLHUP | POLLNVAL;
const counter = new BigUint64Array(1);

/** Waits for readability or writability of one fd; owns that fd's closing. */
export class Readiness {
  readonly #fd: number;
  readonly #eventFd: number;
  readonly #pollfds: Uint8Array;
  readonly #readers = new Set<Waiter>();
  readonly #writers = new Set<Waiter>();
  #polling = false;
  #closed = false;
  #released = false;

  /** Creates the eventfd; throws a TunError (and leaves `fd` open) on failure. */
  constructor(fd: number, describe: () => string) {
    this.#fd = fd;
    this.#eventFd = check(
      libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
      "eventfd",
      () => `create the wake-up eventfd for ${describe()}`,
    );
    this.#pollfds = pollfds([fd, this.#eventFd]);
  }

  /** The eventfd, for the finalization backstop. */
  get eventFd(): number {
    return this.#eventFd;
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
        if (this.#readers.size + this.#writers.size === 0) this.#wake();
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
   * Wakes every waiter with `false` and releases both fds, at once when no
   * poll is in flight, else as soon as the eventfd has ended it.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of [...this.#readers, ...this.#writers]) {
      waiter.resolve(false);
    }
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
    const fds = this.#pollfds;
    try {
      while (!this.#closed && this.#readers.size + this.#writers.size > 0) {
        set_events(
          fds,
          0,
          (this.#readers.size ? POLLIN : 0) |
            (this.#writers.size ? POLLOUT : 0),
        );
        set_events(fds, 1, POLLIN);
        // A failed poll (EINTR on the pool thread) has zero revents: go round.
        await libc().poll(fds, 2n, -1);
        if (this.#closed) break;
        if (revents(fds, 1) & POLLIN) libc().read(this.#eventFd, counter, 8n);
        const device = revents(fds, 0);
        if (device & WAKE_READERS) settle(this.#readers);
        if (device & WAKE_WRITERS) settle(this.#writers);
      }
    } finally {
      this.#polling = false;
      if (this.#closed) this.#release();
    }
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    libc().close(this.#fd);
    libc().close(this.#eventFd);
  }
}

function settle(waiters: Set<Waiter>): void {
  const woken = [...waiters];
  waiters.clear();
  for (const waiter of woken) waiter.resolve(true);
}
