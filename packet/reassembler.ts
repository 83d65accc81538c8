/**
 * Reassembly of IPv4 (RFC 791) and IPv6 (RFC 8200 section 4.5) fragments,
 * with a timeout, a memory bound and RFC 5722's rule for overlaps.
 *
 * @module
 */

import { read16, read32, write16 } from "./bytes.ts";
import { finishChecksum, ipv4HeaderChecksum, sumWords } from "./checksum.ts";
import { IpProtocol, optionsHeaderName } from "./constants.ts";
import { bytesArgument, optionsObject } from "./options.ts";

/** Options of the {@linkcode Reassembler} constructor. */
export interface ReassemblerOptions {
  /**
   * How long a datagram may take to arrive whole, in milliseconds, counted
   * from its first fragment; then what arrived of it is dropped. Defaults
   * to 30000, Linux's `net.ipv4.ipfrag_time` (RFC 8200 suggests 60 s for
   * IPv6, which Linux's `net.ipv6.ip6frag_time` uses).
   */
  timeoutMs?: number;
  /**
   * The most fragment bytes (headers and data) held at once. Past it the
   * oldest incomplete datagrams are dropped first. Defaults to 4 MiB,
   * Linux's `net.ipv4.ipfrag_high_thresh`.
   */
  maxBytes?: number;
  /**
   * The clock, in milliseconds; it must not go backwards. Defaults to
   * `performance.now`. Tests pass their own.
   */
  now?: () => number;
}

/** What a {@linkcode Reassembler} has done so far, by datagram unless said otherwise. */
export interface ReassemblerStats {
  /** Datagrams returned whole (atomic IPv6 fragments included). */
  reassembled: number;
  /** Datagrams dropped because they were still incomplete at their timeout. */
  timedOut: number;
  /** Datagrams dropped because two of their fragments overlapped (RFC 5722). */
  overlapped: number;
  /**
   * Datagrams dropped because a fragment was inconsistent: data past 65535
   * bytes, a non-last fragment whose length is not a multiple of 8, an
   * empty fragment, two different ends, or data beyond the end.
   */
  invalid: number;
  /** Incomplete datagrams dropped, oldest first, to stay within `maxBytes`. */
  evicted: number;
  /** Fragments ignored because one with the same offset and length had arrived. */
  duplicates: number;
  /**
   * Fragments ignored on their own because their IP header cannot be
   * trusted: a wrong IPv4 header checksum, or lengths beyond the bytes given.
   */
  malformed: number;
}

interface Piece {
  start: number;
  end: number;
  data: Uint8Array;
}

interface Datagram {
  deadline: number;
  version: 4 | 6;
  /** Sorted by `start`, never overlapping. */
  pieces: Piece[];
  /** Data bytes held. */
  received: number;
  /** Bytes counted against `maxBytes`. */
  bytes: number;
  /** Data length the last fragment gave, or -1 before it arrived. */
  total: number;
  /** The largest data end seen. */
  maxEnd: number;
  /** The first fragment's IPv4 header, or IPv6 headers before the Fragment header. */
  header?: Uint8Array;
  /** Where in `header` the next-header byte that named the Fragment header is (IPv6). */
  nextAt: number;
  /** The first fragment's Fragment header's next header (IPv6). */
  nextHeader: number;
  /** Dropped: later fragments are dropped too until the deadline. */
  dropped: boolean;
}

/** What one fragment brings. */
interface Arrival {
  version: 4 | 6;
  start: number;
  more: boolean;
  data: Uint8Array;
  /** The header to rebuild the datagram from, on the fragment at offset 0. */
  header: Uint8Array;
  nextAt: number;
  nextHeader: number;
  /** The largest data end that keeps the reassembled packet within 65535 bytes. */
  limit: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;
/** Dropped datagrams remembered at once; each costs a key, not its fragments. */
const MAX_REMEMBERED = 4096;

/**
 * Collects IP fragments and gives back each datagram once all of its
 * fragments arrived, in any order. Fragments belong together when they
 * share, for IPv4, source, destination, protocol and identification
 * (RFC 791), and for IPv6 source, destination and identification (RFC 8200).
 *
 * The whole datagram is rebuilt from the fragment at offset 0: for IPv4 its
 * header, with "more fragments" and the offset cleared and the total length
 * and header checksum rewritten; for IPv6 the headers before its Fragment
 * header, with the Fragment header removed, the next header that named it
 * set to what it carried, and the payload length rewritten.
 *
 * If two fragments of a datagram overlap, the whole datagram is dropped
 * (RFC 5722; Linux does the same for IPv4 too), and so is every later
 * fragment of it until its timeout, so that no mix of old and new data can
 * come out (at most 4096 such datagrams are remembered, the oldest
 * forgotten first). A fragment with the same offset and length as one already
 * held is ignored as a duplicate, as Linux does, without comparing its
 * bytes. Inconsistent fragments drop their datagram the same way (counted
 * as `invalid`). An IPv4 fragment with a wrong header checksum is ignored
 * on its own (counted as `malformed`): its fields, and so the datagram it
 * names, cannot be trusted; Linux drops such packets before reassembly.
 *
 * Timeouts are checked when fragments are pushed (or on
 * {@linkcode Reassembler.expire}); no timer runs. `push` copies what it
 * keeps, so the caller may reuse its buffer. The reassembler does not
 * send the ICMP "time exceeded" message RFC 792 and RFC 8200 mention.
 *
 * @example Reassemble fragments read from a TUN device
 * ```ts
 * import { buildIPv4, fragment, Reassembler } from "@tuntap/tuntap/packet";
 *
 * const original = buildIPv4({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.2",
 *   protocol: 17,
 *   payload: new Uint8Array(3000),
 *   dontFragment: false,
 *   identification: 42,
 * });
 * const reassembler = new Reassembler({ timeoutMs: 5000 });
 * let whole: Uint8Array | undefined;
 * for (const piece of fragment(original, 1280).reverse()) {
 *   whole = reassembler.push(piece) ?? whole;
 * }
 * // whole holds the same bytes as original; reassembler.stats.reassembled === 1
 * ```
 */
export class Reassembler {
  readonly #stats: ReassemblerStats = {
    reassembled: 0,
    timedOut: 0,
    overlapped: 0,
    invalid: 0,
    evicted: 0,
    duplicates: 0,
    malformed: 0,
  };
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  /** In arrival order of first fragments, which is deadline order too. */
  readonly #datagrams = new Map<string, Datagram>();
  #bytes = 0;
  #dropped = 0;

  /**
   * Makes an empty reassembler.
   *
   * @example Make a reassembler with IPv6's suggested timeout
   * ```ts
   * import { Reassembler } from "@tuntap/tuntap/packet";
   *
   * const reassembler = new Reassembler({ timeoutMs: 60_000, maxBytes: 1 << 20 });
   * ```
   *
   * @param options Timeout, memory bound and clock.
   * @throws {TypeError} If an option has the wrong type.
   * @throws {RangeError} If `timeoutMs` or `maxBytes` is not positive.
   */
  constructor(options: ReassemblerOptions = {}) {
    optionsObject(options, "Reassembler options");
    const { timeoutMs = DEFAULT_TIMEOUT_MS, maxBytes = DEFAULT_MAX_BYTES, now } = options;
    if (typeof timeoutMs !== "number" || typeof maxBytes !== "number") {
      throw new TypeError("timeoutMs and maxBytes must be numbers");
    }
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
      throw new RangeError(`timeoutMs must be a positive finite number, got ${timeoutMs}`);
    }
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
      throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
    }
    if (now !== undefined && typeof now !== "function") {
      throw new TypeError("now must be a function");
    }
    this.#timeoutMs = timeoutMs;
    this.#maxBytes = maxBytes;
    this.#now = now ?? (() => performance.now());
  }

  /**
   * Counters of what happened to datagrams and fragments, since the
   * reassembler was made. The object is live: it changes as packets arrive.
   *
   * @example Report drops
   * ```ts
   * import { Reassembler } from "@tuntap/tuntap/packet";
   *
   * const reassembler = new Reassembler();
   * const { timedOut, overlapped, evicted } = reassembler.stats;
   * console.log(`dropped: ${timedOut + overlapped + evicted}`);
   * ```
   */
  get stats(): Readonly<ReassemblerStats> {
    return this.#stats;
  }

  /**
   * How many datagrams are in progress: some of their fragments are held.
   *
   * @example Watch datagrams in progress
   * ```ts
   * import { Reassembler } from "@tuntap/tuntap/packet";
   *
   * const reassembler = new Reassembler();
   * reassembler.pending; // 0
   * ```
   */
  get pending(): number {
    return this.#datagrams.size - this.#dropped;
  }

  /**
   * The fragment bytes (headers and data) held now, at most `maxBytes`.
   *
   * @example Check the memory held
   * ```ts
   * import { Reassembler } from "@tuntap/tuntap/packet";
   *
   * const reassembler = new Reassembler({ maxBytes: 65536 });
   * reassembler.bufferedBytes; // 0
   * ```
   */
  get bufferedBytes(): number {
    return this.#bytes;
  }

  /**
   * Takes one packet. A fragment is held until its datagram is whole; a
   * packet that is not a fragment (or not IPv4 or IPv6, or too short to
   * tell) is returned as is, the same Uint8Array. An IPv6 "atomic fragment"
   * (offset 0, no more fragments) comes back at once with its Fragment
   * header removed, as RFC 6946 asks.
   *
   * @example Pass packets through, reassembling fragments
   * ```ts
   * import { buildUdp, Reassembler } from "@tuntap/tuntap/packet";
   *
   * const reassembler = new Reassembler();
   * const packet = buildUdp({
   *   source: "192.0.2.1",
   *   destination: "192.0.2.2",
   *   sourcePort: 1,
   *   destinationPort: 2,
   * });
   * reassembler.push(packet) === packet; // true: not a fragment
   * ```
   *
   * @param packet An IP packet, starting at its IP header.
   * @returns The packet itself, the reassembled datagram (a new array),
   *   or `undefined` while the datagram is incomplete or when the fragment
   *   was dropped.
   * @throws {TypeError} If `packet` is not a Uint8Array.
   */
  push(packet: Uint8Array): Uint8Array | undefined {
    bytesArgument(packet, "Packet");
    const now = this.#now();
    this.expire(now);
    const version = packet.length === 0 ? 0 : packet[0] >> 4;
    if (version === 4) return this.#pushIPv4(packet, now);
    if (version === 6) return this.#pushIPv6(packet, now);
    return packet;
  }

  /**
   * Drops the datagrams whose timeout has passed. {@linkcode push} does this
   * by itself; call it to free memory while no fragments arrive.
   *
   * @example Expire on a timer
   * ```ts
   * import { Reassembler } from "@tuntap/tuntap/packet";
   *
   * const reassembler = new Reassembler({ timeoutMs: 10_000 });
   * const timer = setInterval(() => reassembler.expire(), 1000);
   * clearInterval(timer);
   * ```
   *
   * @param now The time to compare deadlines with; defaults to the clock.
   * @returns How many incomplete datagrams were dropped.
   */
  expire(now: number = this.#now()): number {
    let count = 0;
    for (const [key, datagram] of this.#datagrams) {
      if (datagram.deadline > now) break;
      this.#datagrams.delete(key);
      if (datagram.dropped) {
        this.#dropped -= 1;
      } else {
        this.#bytes -= datagram.bytes;
        count += 1;
      }
    }
    this.#stats.timedOut += count;
    return count;
  }

  #pushIPv4(packet: Uint8Array, now: number): Uint8Array | undefined {
    if (packet.length < 20) return packet;
    const headerLength = (packet[0] & 0x0f) * 4;
    if (headerLength < 20 || headerLength > packet.length) return packet;
    const flags = read16(packet, 6);
    const start = (flags & 0x1fff) * 8;
    const more = (flags & 0x2000) !== 0;
    if (start === 0 && !more) return packet;
    const totalLength = read16(packet, 2);
    if (
      totalLength < headerLength || totalLength > packet.length ||
      finishChecksum(sumWords(packet, 0, headerLength, 0)) !== 0
    ) {
      this.#stats.malformed += 1;
      return undefined;
    }
    const key = `4 ${read32(packet, 12)} ${read32(packet, 16)} ${packet[9]} ${read16(packet, 4)}`;
    return this.#add(key, now, {
      version: 4,
      start,
      more,
      data: packet.subarray(headerLength, totalLength),
      header: packet.subarray(0, headerLength),
      nextAt: 0,
      nextHeader: 0,
      limit: 0xffff - headerLength,
    });
  }

  #pushIPv6(packet: Uint8Array, now: number): Uint8Array | undefined {
    if (packet.length < 40) return packet;
    const declaredEnd = 40 + read16(packet, 4);
    const stop = Math.min(declaredEnd, packet.length);
    let nextAt = 6;
    let cursor = 40;
    for (;;) {
      const nextHeader = packet[nextAt];
      if (nextHeader === IpProtocol.FRAGMENT) break;
      if (optionsHeaderName(nextHeader) === undefined) return packet;
      if (stop - cursor < 8) return packet;
      nextAt = cursor;
      cursor += (packet[cursor + 1] + 1) * 8;
    }
    if (declaredEnd > packet.length || declaredEnd - cursor < 8) {
      this.#stats.malformed += 1;
      return undefined;
    }
    const field = read16(packet, cursor + 2);
    const start = field & 0xfff8;
    const more = (field & 1) !== 0;
    const data = packet.subarray(cursor + 8, declaredEnd);
    if (start === 0 && !more) {
      this.#stats.reassembled += 1;
      return joinIPv6(packet.subarray(0, cursor), nextAt, packet[cursor], [
        { start: 0, end: data.length, data },
      ], data.length);
    }
    const key = `6 ${String.fromCharCode(...packet.subarray(8, 40))} ${read32(packet, cursor + 4)}`;
    return this.#add(key, now, {
      version: 6,
      start,
      more,
      data,
      header: packet.subarray(0, cursor),
      nextAt,
      nextHeader: packet[cursor],
      limit: 0xffff - (cursor - 40),
    });
  }

  #add(key: string, now: number, arrival: Arrival): Uint8Array | undefined {
    const stats = this.#stats;
    let datagram = this.#datagrams.get(key);
    if (datagram?.dropped) return undefined;
    if (datagram === undefined) {
      datagram = {
        deadline: now + this.#timeoutMs,
        version: arrival.version,
        pieces: [],
        received: 0,
        bytes: 0,
        total: -1,
        maxEnd: 0,
        nextAt: 0,
        nextHeader: 0,
        dropped: false,
      };
      this.#datagrams.set(key, datagram);
    }
    const { start, more, data } = arrival;
    const end = start + data.length;
    const inconsistent = data.length === 0 || end > arrival.limit ||
      (more && data.length % 8 !== 0) ||
      (more
        ? datagram.total >= 0 && end > datagram.total
        : (datagram.total >= 0 && datagram.total !== end) || datagram.maxEnd > end);
    if (inconsistent) {
      stats.invalid += 1;
      this.#drop(datagram);
      return undefined;
    }
    const { pieces } = datagram;
    // The first piece that ends after this one starts; ends are sorted too.
    let low = 0;
    let high = pieces.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (pieces[middle].end > start) high = middle;
      else low = middle + 1;
    }
    const next = pieces[low];
    if (next !== undefined && next.start < end) {
      if (next.start === start && next.end === end) {
        stats.duplicates += 1;
        return undefined;
      }
      stats.overlapped += 1;
      this.#drop(datagram);
      return undefined;
    }
    pieces.splice(low, 0, { start, end, data: data.slice() });
    datagram.received += data.length;
    let bytes = data.length;
    if (start === 0) {
      datagram.header = arrival.header.slice();
      datagram.nextAt = arrival.nextAt;
      datagram.nextHeader = arrival.nextHeader;
      bytes += datagram.header.length;
    }
    datagram.bytes += bytes;
    this.#bytes += bytes;
    if (!more) datagram.total = end;
    if (end > datagram.maxEnd) datagram.maxEnd = end;
    if (datagram.received === datagram.total && datagram.header !== undefined) {
      return this.#complete(key, datagram);
    }
    this.#evict();
    return undefined;
  }

  #complete(key: string, datagram: Datagram): Uint8Array | undefined {
    const stats = this.#stats;
    const header = datagram.header!;
    // The 65535 check on arrival used each fragment's own header length.
    const payloadLength = datagram.total + header.length - (datagram.version === 4 ? 0 : 40);
    if (payloadLength > 0xffff) {
      stats.invalid += 1;
      this.#drop(datagram);
      return undefined;
    }
    this.#datagrams.delete(key);
    this.#bytes -= datagram.bytes;
    stats.reassembled += 1;
    if (datagram.version === 6) {
      return joinIPv6(
        header,
        datagram.nextAt,
        datagram.nextHeader,
        datagram.pieces,
        datagram.total,
      );
    }
    const packet = new Uint8Array(header.length + datagram.total);
    packet.set(header);
    for (const piece of datagram.pieces) packet.set(piece.data, header.length + piece.start);
    write16(packet, 2, packet.length);
    // Keeps the reserved and "don't fragment" bits; clears MF and the offset.
    write16(packet, 6, read16(header, 6) & 0xc000);
    write16(packet, 10, ipv4HeaderChecksum(packet, 0, header.length));
    return packet;
  }

  /** Frees a datagram's fragments and remembers it until its deadline. */
  #drop(datagram: Datagram): void {
    this.#bytes -= datagram.bytes;
    datagram.bytes = 0;
    datagram.pieces = [];
    datagram.header = undefined;
    datagram.dropped = true;
    this.#dropped += 1;
    if (this.#dropped <= MAX_REMEMBERED) return;
    for (const [key, old] of this.#datagrams) {
      if (!old.dropped) continue;
      this.#datagrams.delete(key);
      this.#dropped -= 1;
      return;
    }
  }

  /** Drops the oldest incomplete datagrams until the bytes held fit. */
  #evict(): void {
    if (this.#bytes <= this.#maxBytes) return;
    for (const [key, datagram] of this.#datagrams) {
      if (datagram.dropped) continue;
      this.#datagrams.delete(key);
      this.#bytes -= datagram.bytes;
      this.#stats.evicted += 1;
      if (this.#bytes <= this.#maxBytes) return;
    }
  }
}

/**
 * The IPv6 datagram of `pieces` behind `header` (the headers before the
 * Fragment header), whose byte at `nextAt` gets the Fragment header's next
 * header.
 */
function joinIPv6(
  header: Uint8Array,
  nextAt: number,
  nextHeader: number,
  pieces: Piece[],
  total: number,
): Uint8Array {
  const packet = new Uint8Array(header.length + total);
  packet.set(header);
  packet[nextAt] = nextHeader;
  for (const piece of pieces) packet.set(piece.data, header.length + piece.start);
  write16(packet, 4, packet.length - 40);
  return packet;
}
