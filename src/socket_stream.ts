/**
 * A non-blocking socket read as an async iterator, the way the library waits
 * everywhere: synchronous reads until EAGAIN, then one wait in the shared
 * poll. Link events and captures are both this, with their own decoding.
 *
 * @module
 */
import { libc } from "../ffi/libc.ts";
import { closeFds, Readiness, type ReadinessFds } from "./readiness.ts";

/** What a {@linkcode SocketStream} asks of the socket's owner. */
export interface SocketSource {
  /** Reads everything queued on the socket into the stream's queue, until EAGAIN or close. */
  receive(): void;
  /** Waits until the socket may be readable; omitted, the shared poll does. */
  wait?(): Promise<unknown>;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

// Holds fd numbers only: holding the stream would keep it alive forever.
const forgotten = new FinalizationRegistry<ReadinessFds>(closeFds);

/**
 * Items read from a socket, handed out one step at a time. Steps run one
 * after another, so each sees the state the last one left; aborting the
 * signal closes the socket and rejects the pending step with the reason.
 */
export class SocketStream<T> {
  /** Items read but not handed out yet. */
  readonly queue: T[] = [];
  /** The socket's waiting, which also owns closing it. */
  readonly readiness: Readiness;
  /** The signal that ends the stream, if any. */
  readonly signal?: AbortSignal;
  readonly #source: SocketSource;
  readonly #onAbort?: () => void;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** Takes `fd` over (closing it if that fails). */
  constructor(
    fd: number,
    describe: () => string,
    signal: AbortSignal | undefined,
    source: SocketSource,
  ) {
    try {
      this.readiness = new Readiness(fd, describe);
    } catch (error) {
      libc().close(fd);
      throw error;
    }
    this.#source = source;
    forgotten.register(this, this.readiness.fds, this);
    if (signal) {
      this.signal = signal;
      // Weak, so that a long-lived signal does not keep a dropped stream alive.
      const stream = new WeakRef(this);
      this.#onAbort = () => stream.deref()?.close();
      if (signal.aborted) this.close();
      else signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** Whether the stream has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the socket; the next step is done. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    forgotten.unregister(this);
    if (this.#onAbort) this.signal?.removeEventListener("abort", this.#onAbort);
    this.readiness.close();
  }

  /** The stream as an iterator; `return()` (a `break`) closes the socket. */
  iterator(): AsyncIterableIterator<T> {
    const iterator: AsyncIterableIterator<T> = {
      next: () => {
        const result = this.#tail.then(() => this.#step());
        this.#tail = result.catch(() => {});
        return result;
      },
      return: () => {
        this.close();
        return Promise.resolve(DONE);
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  async #step(): Promise<IteratorResult<T>> {
    try {
      while (true) {
        this.signal?.throwIfAborted();
        if (this.queue.length > 0) return { done: false, value: this.queue.shift()! };
        if (this.#closed) return DONE;
        this.#source.receive();
        // Only after EAGAIN: the epoll registration is edge-triggered.
        if (this.queue.length === 0 && !this.#closed) {
          await (this.#source.wait?.() ?? this.readiness.wait("read", this.signal));
        }
      }
    } catch (error) {
      this.close();
      throw error;
    }
  }
}
