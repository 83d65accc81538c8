/**
 * Waiting for a non-blocking device fd without parking a read on a pool thread.
 *
 * Every device fd sits in one epoll set, shared by all the handles of this
 * isolate, beside one eventfd; both live as long as the isolate. One `poll()`
 * at a time runs on Deno's blocking pool, and it watches only that epoll fd,
 * never a device fd. So `close()` closes the device fd at once (the kernel
 * drops it from the epoll set) and holds nothing back: when it returns the
 * device is detached, its name is free and the handle owns no fd, even if
 * the program never lets the event loop run in between. A per-handle epoll
 * fd could not be closed while a pool thread polls it (the kernel could hand
 * its number to the next `open()` while the poll still looks it up), and
 * closing it later would let a loop of open, read, close that never yields
 * to the event loop pile up fds without bound.
 *
 * A device is registered once, edge-triggered, for input and output, under
 * an id of its own (never reused, so a late event cannot reach a stranger):
 * a waiter of either direction that arrives while a poll is in flight is
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

const WAKE = 0;
const WAKE_READERS = EPOLLIN | EPOLLERR | EPOLLHUP;
const WAKE_WRITERS = EPOLLOUT | EPOLLERR | EPOLLHUP;
const MAX_EVENTS = 64;
const counter = new BigUint64Array(1);

/** The fds a {@linkcode Readiness} holds, for a finalization backstop. */
export interface ReadinessFds {
  fd: number;
  /** -1: the epoll set is shared and never closed. Kept for callers that close what they get. */
  epollFd: number;
  /** -1, as `epollFd`. */
  eventFd: number;
}

/** Closes fds that a forgotten handle still held. */
export function closeFds({ fd, epollFd, eventFd }: ReadinessFds): void {
  for (const each of [fd, epollFd, eventFd]) if (each >= 0) libc().close(each);
}

/** The isolate's epoll set, its wake-up eventfd and the one poll over them. */
class Poller {
  readonly epollFd: number;
  readonly #eventFd: number;
  readonly #pollfd: Uint8Array;
  readonly #events = epoll_events(MAX_EVENTS);
  // Weak, so that a handle nobody closed can still be collected (its
  // finalizer closes the fd, which leaves the epoll set by itself).
  readonly #registered = new Map<number, WeakRef<Readiness>>();
  // Handles with waiters: the poll runs while there is one.
  readonly active = new Set<Readiness>();
  #nextId = WAKE + 1;
  #polling = false;
  // Whether the poll is (or may still be) blocked in poll(): only then does
  // ending it need a wake-up.
  #sleeping = false;

  constructor() {
    const epollFd = check(
      libc().epoll_create1(EPOLL_CLOEXEC),
      "epoll_create1",
      () => "create the epoll set for TUN/TAP devices",
    );
    let eventFd = -1;
    try {
      eventFd = check(
        libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
        "eventfd",
        () => "create the wake-up eventfd for TUN/TAP devices",
      );
      check(
        libc().epoll_ctl(epollFd, EPOLL_CTL_ADD, eventFd, epoll_event(EPOLLIN, WAKE)),
        "epoll_ctl",
        () => "watch the wake-up eventfd for TUN/TAP devices",
      );
    } catch (error) {
      if (eventFd >= 0) libc().close(eventFd);
      libc().close(epollFd);
      throw error;
    }
    this.epollFd = epollFd;
    this.#eventFd = eventFd;
    this.#pollfd = pollfds([epollFd]);
    set_events(this.#pollfd, 0, POLLIN);
  }

  /** Adds `fd` to the set for `readiness`; its id. Throws a TunError on failure. */
  add(fd: number, readiness: Readiness, describe: () => string): number {
    const id = this.#nextId++;
    check(
      libc().epoll_ctl(
        this.epollFd,
        EPOLL_CTL_ADD,
        fd,
        epoll_event(EPOLLIN | EPOLLOUT | EPOLLET, id),
      ),
      "epoll_ctl",
      () => `watch ${describe()}`,
    );
    this.#registered.set(id, new WeakRef(readiness));
    return id;
  }

  /** Forgets `id`; its fd must be closed (which takes it out of the set). */
  remove(id: number): void {
    this.#registered.delete(id);
  }

  /** Starts the poll when a handle got waiters, or ends it when none is left. */
  update(readiness: Readiness, waiting: boolean): void {
    if (waiting) {
      this.active.add(readiness);
      if (!this.#polling) this.#poll();
    } else if (this.active.delete(readiness) && this.active.size === 0 && this.#sleeping) {
      // No one left to wait for: end the poll so no pool thread stays busy.
      counter[0] = 1n;
      libc().write(this.#eventFd, counter, 8n);
    }
  }

  async #poll(): Promise<void> {
    this.#polling = true;
    const events = this.#events;
    try {
      let count = 0;
      while (this.active.size > 0) {
        // A full batch of events may have left more behind: look again before sleeping.
        // A failed poll (EINTR on the pool thread) just goes round again.
        if (count < MAX_EVENTS) {
          this.#sleeping = true;
          await libc().poll(this.#pollfd, 1n, -1);
          this.#sleeping = false;
        }
        count = libc().epoll_wait(this.epollFd, events, MAX_EVENTS, 0);
        for (let i = 0; i < count; i++) {
          const id = event_data(events, i);
          if (id === WAKE) {
            libc().read(this.#eventFd, counter, 8n);
            continue;
          }
          const readiness = this.#registered.get(id)?.deref();
          if (readiness) readiness.ready(event_events(events, i));
          else this.#registered.delete(id);
        }
      }
    } finally {
      this.#polling = false;
      this.#sleeping = false;
    }
  }
}

let poller: Poller | undefined;

/** Waits for readability or writability of one fd; owns that fd's closing. */
export class Readiness {
  readonly #fd: number;
  readonly #poller: Poller;
  readonly #id: number;
  readonly #readers = new Set<Waiter>();
  readonly #writers = new Set<Waiter>();
  #closed = false;

  /** Adds `fd` to the epoll set; on failure throws a TunError (and leaves `fd` open). */
  constructor(fd: number, describe: () => string) {
    poller ??= new Poller();
    this.#fd = fd;
    this.#poller = poller;
    this.#id = poller.add(fd, this, describe);
  }

  /** The fds, for the finalization backstop. */
  get fds(): ReadinessFds {
    return { fd: this.#fd, epollFd: -1, eventFd: -1 };
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
        this.#poller.update(this, this.#readers.size + this.#writers.size > 0);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      waiter.resolve = (ready) => {
        signal.removeEventListener("abort", onAbort);
        resolve(ready);
      };
    }
    waiters.add(waiter);
    this.#poller.update(this, true);
    return promise;
  }

  /** Called by the poll with the events the device reported. */
  ready(events: number): void {
    if (events & WAKE_READERS) settle(this.#readers);
    if (events & WAKE_WRITERS) settle(this.#writers);
    this.#poller.update(this, this.#readers.size + this.#writers.size > 0);
  }

  /**
   * Closes the device fd at once (which takes it out of the epoll set) and
   * wakes every waiter with `false`. Nothing is left to release later.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc().close(this.#fd);
    this.#poller.remove(this.#id);
    const waiters = [...this.#readers, ...this.#writers];
    this.#readers.clear();
    this.#writers.clear();
    this.#poller.update(this, false);
    for (const waiter of waiters) waiter.resolve(false);
  }
}

function settle(waiters: Set<Waiter>): void {
  const woken = [...waiters];
  waiters.clear();
  for (const waiter of woken) waiter.resolve(true);
}

/**
 * The writes that had to wait for room, run one after another so that
 * packets keep their order. While it is idle a new write may go straight
 * to the kernel.
 */
export class WriteQueue {
  #tail: Promise<unknown> | undefined;

  /** Whether no queued write is pending. */
  get idle(): boolean {
    return this.#tail === undefined;
  }

  /** Runs `task` after every task queued before it. */
  enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = (this.#tail ?? Promise.resolve()).then(task);
    const tail = result.then(() => {}, () => {});
    this.#tail = tail;
    tail.then(() => {
      if (this.#tail === tail) this.#tail = undefined;
    });
    return result;
  }
}
