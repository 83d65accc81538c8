/**
 * The preallocated `struct mmsghdr` array of one direction of a UDP socket,
 * with an `iovec`, an address slot and a control buffer per message, reused
 * by every `recvmmsg`/`sendmmsg`: a batch fills a few words per message and
 * allocates nothing.
 *
 * Pointers are stored as two little-endian u32 words, from numbers, so that
 * no BigInt is made per message. The header array and everything it points
 * to belong to the batch and live as long as it; the caller's buffers are
 * only pointed to for the duration of one synchronous call, during which the
 * caller holds them.
 *
 * @module
 */
import { cmsg_len, cmsg_level, cmsg_space, cmsg_type, sizeof_cmsghdr } from "../ffi/cmsg.ts";
import {
  iovec_u32,
  mmsghdr_u32,
  sizeof_iovec,
  sizeof_mmsghdr,
  UIO_MAXIOV,
} from "../ffi/mmsghdr.ts";
import { sizeof_sockaddr_in6 } from "../ffi/sockaddr_in.ts";

/** Room for the one control message a message carries (a u16 or an int). */
const CONTROL_SPACE = cmsg_space(4);

// The address of each ArrayBuffer's first byte, so that a view's address
// is that plus its byteOffset: callers that reuse their buffers, or cut
// views from a few large ones (a slab of packets), pay for the lookup once
// per ArrayBuffer (Deno.UnsafePointer.of and .value cost far more than the
// map). Its bytes never move once the ArrayBuffer exists off the V8 heap,
// which reading `.buffer` ensures (V8 keeps arrays of up to 64 bytes on
// its heap until then). A view of an ArrayBuffer transferred since has
// length 0, so a stale address is never handed to the kernel with a length.
const bases = new WeakMap<ArrayBufferLike, number>();

/**
 * The address of `buffer`'s first byte, as a number (user-space addresses
 * fit 2^53 on the 64-bit platforms Deno runs on).
 */
export function addressOf(buffer: Uint8Array): number {
  const backing = buffer.buffer;
  let base = bases.get(backing);
  if (base === undefined) {
    base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer))) - buffer.byteOffset;
    bases.set(backing, base);
  }
  return base + buffer.byteOffset;
}

const HIGH = 2 ** 32;

/** Stores a pointer as the little-endian u64 at `words[at]`, `words[at + 1]`. */
function setPointer(words: Uint32Array, at: number, address: number): void {
  words[at] = address >>> 0;
  words[at + 1] = (address / HIGH) >>> 0;
}

/** A batch of message headers for `recvmmsg` or `sendmmsg`. */
export class MessageBatch {
  /** The `struct mmsghdr` array, passed to the call. */
  headers = new Uint8Array(0);
  /** The address slots, one `sockaddr_in6` of room per message. */
  names = new Uint8Array(0);
  #words = new Uint32Array(0);
  #iovecWords = new Uint32Array(0);
  // The control buffers, CONTROL_SPACE bytes per message.
  #controlView = new DataView(new ArrayBuffer(0));
  #capacity = 0;

  /** Grows the arrays to hold `count` messages (at most `UIO_MAXIOV`). */
  reserve(count: number): void {
    if (count <= this.#capacity) return;
    let capacity = Math.max(8, this.#capacity);
    while (capacity < count) capacity *= 2;
    capacity = Math.min(capacity, UIO_MAXIOV);
    const headers = new Uint8Array(new ArrayBuffer(capacity * sizeof_mmsghdr));
    const iovecs = new Uint8Array(new ArrayBuffer(capacity * sizeof_iovec));
    const names = new Uint8Array(new ArrayBuffer(capacity * sizeof_sockaddr_in6));
    const control = new Uint8Array(new ArrayBuffer(capacity * CONTROL_SPACE));
    const words = new Uint32Array(headers.buffer);
    const iovecsAt = addressOf(iovecs);
    const namesAt = addressOf(names);
    const controlAt = addressOf(control);
    for (let i = 0; i < capacity; i++) {
      const word = i * mmsghdr_u32.size;
      setPointer(words, word + mmsghdr_u32.msg_name, namesAt + i * sizeof_sockaddr_in6);
      setPointer(words, word + mmsghdr_u32.msg_iov, iovecsAt + i * sizeof_iovec);
      words[word + mmsghdr_u32.msg_iovlen] = 1;
      setPointer(words, word + mmsghdr_u32.msg_control, controlAt + i * CONTROL_SPACE);
    }
    this.headers = headers;
    this.names = names;
    this.#words = words;
    this.#iovecWords = new Uint32Array(iovecs.buffer);
    this.#controlView = new DataView(control.buffer);
    this.#capacity = capacity;
  }

  /** Points message `i`'s iovec at `buffer`. */
  setBuffer(i: number, buffer: Uint8Array): void {
    const word = i * iovec_u32.size;
    setPointer(
      this.#iovecWords,
      word + iovec_u32.iov_base,
      buffer.length === 0 ? 0 : addressOf(buffer),
    );
    // size_t: the high word stays 0 (a buffer is far below 4 GiB).
    this.#iovecWords[word + iovec_u32.iov_len] = buffer.length;
  }

  /** Sets message `i`'s address length (the kernel overwrites it on receive). */
  setNameLength(i: number, length: number): void {
    this.#words[i * mmsghdr_u32.size + mmsghdr_u32.msg_namelen] = length;
  }

  /** Points message `i` at an address of the caller's instead of its own slot (0, 0: none). */
  setName(i: number, address: number, length: number): void {
    this.#setPointerAndLength(i, mmsghdr_u32.msg_name, address, mmsghdr_u32.msg_namelen, length);
  }

  /** Sets message `i`'s control length: 0 for none, else the room of its buffer. */
  setControlLength(i: number, length: number): void {
    this.#words[i * mmsghdr_u32.size + mmsghdr_u32.msg_controllen] = length;
  }

  /** Points message `i`'s control at another message's buffer (one shared cmsg). */
  setControl(i: number, address: number, length: number): void {
    this.#setPointerAndLength(
      i,
      mmsghdr_u32.msg_control,
      address,
      mmsghdr_u32.msg_controllen,
      length,
    );
  }

  /** Sets a pointer field of message `i` and the length field that goes with it. */
  #setPointerAndLength(
    i: number,
    pointer: number,
    address: number,
    lengthField: number,
    length: number,
  ): void {
    const word = i * mmsghdr_u32.size;
    setPointer(this.#words, word + pointer, address);
    this.#words[word + lengthField] = length;
  }

  /** `msg_len` of message `i`: the bytes received or sent. */
  length(i: number): number {
    return this.#words[i * mmsghdr_u32.size + mmsghdr_u32.msg_len];
  }

  /** Where message `i`'s address slot starts in {@linkcode MessageBatch.names}. */
  nameOffset(i: number): number {
    return i * sizeof_sockaddr_in6;
  }

  /**
   * The int data of message `i`'s first control message when it is of
   * `level`/`type` (as the kernel filled it on receive), else 0.
   */
  controlInt(i: number, level: number, type: number): number {
    const used = this.#words[i * mmsghdr_u32.size + mmsghdr_u32.msg_controllen];
    if (used < cmsg_len(4)) return 0;
    const offset = i * CONTROL_SPACE;
    const view = this.#controlView;
    if (cmsg_level(view, offset) !== level || cmsg_type(view, offset) !== type) return 0;
    return view.getInt32(offset + sizeof_cmsghdr, true);
  }
}

export { CONTROL_SPACE };
