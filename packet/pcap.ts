/**
 * Classic pcap files (the format of `tcpdump -w`), written with nanosecond
 * timestamps and read in any of the four classic variants: microsecond or
 * nanosecond, little- or big-endian. pcapng is not supported.
 *
 * Both ends work on Web streams. A `Deno.FsFile` (or anything else with a
 * `writable` or `readable` stream property, such as a `Deno.Conn`) is used
 * through that stream, which is why closing the writer, or reading to the
 * end, closes the file.
 *
 * @module
 */

import { ETH_P_802_2, ETH_P_802_3, type LinkType } from "./parse.ts";

/**
 * Where a {@linkcode PcapWriter} writes: a `WritableStream`, or an object
 * such as `Deno.FsFile` whose `writable` property is one.
 */
export type PcapSink =
  | WritableStream<Uint8Array>
  | { readonly writable: WritableStream<Uint8Array> };

/**
 * What {@linkcode readPcap} reads: a `ReadableStream`, or an object such as
 * `Deno.FsFile` whose `readable` property is one.
 */
export type PcapSource =
  | ReadableStream<Uint8Array>
  | { readonly readable: ReadableStream<Uint8Array> };

/** Options of {@linkcode PcapWriter}. */
export interface PcapWriterOptions {
  /**
   * What the packets start with: `"ip"` (TUN) is recorded as
   * LINKTYPE_RAW (101), `"ethernet"` (TAP) as LINKTYPE_ETHERNET (1).
   */
  link: LinkType;
  /**
   * Record LINKTYPE_LINUX_SLL2 (276) instead, as `tcpdump -i any` does: each
   * record starts with a 20-byte header that gives the packet's direction
   * (see {@linkcode PcapPacketInfo}), interface index and protocol, so
   * tcpdump and Wireshark show In/Out. An Ethernet frame's header becomes
   * that header (its source address kept, its destination dropped). Default
   * `false`.
   */
  linuxSll2?: boolean;
}

/**
 * What a record says besides the packet; see {@linkcode PcapWriter.write}.
 * All but `originalLength` are recorded in LINUX_SLL2 files only.
 */
export interface PcapPacketInfo {
  /**
   * The packet's length on the wire, when the bytes written were already
   * cut short of it (as when copying a {@linkcode PcapRecord}); at least
   * the length of the bytes. Default: the length of the bytes.
   */
  originalLength?: number;
  /**
   * `"out"`: the host sent the packet out of the interface; `"in"`: it came
   * in. Default `"in"`.
   */
  direction?: "in" | "out";
  /**
   * The kernel's packet type (`sll_pkttype`: 0 host, 1 broadcast, 2
   * multicast, 3 other host, 4 outgoing); wins over `direction`.
   */
  packetType?: number;
  /** The interface index; default 0. */
  interfaceIndex?: number;
}

/** One packet read from a pcap file. */
export interface PcapRecord {
  /** Capture time in nanoseconds since the Unix epoch. */
  timestampNs: bigint;
  /**
   * The captured bytes (a copy, owned by the caller); in a LINUX_SLL2 file,
   * what follows the 20-byte header.
   */
  bytes: Uint8Array;
  /**
   * The packet's length on the wire (the record's `orig_len`; in a
   * LINUX_SLL2 file, less the 20-byte header, to compare with `bytes`).
   * Larger than `bytes.length` when the capture cut the packet short.
   */
  originalLength: number;
  /** LINUX_SLL2 files only: `"out"` for packet type 4 (outgoing), else `"in"`. */
  direction?: "in" | "out";
  /** LINUX_SLL2 files only: the packet type (`sll_pkttype`), 0 to 4. */
  packetType?: number;
  /** LINUX_SLL2 files only: the interface index. */
  interfaceIndex?: number;
  /**
   * LINUX_SLL2 files only: the protocol of `bytes`, an EtherType such as
   * 0x0800 (IPv4), 0x86dd (IPv6) or 0x0806 (ARP).
   */
  protocol?: number;
}

/** The file header of a pcap file, from {@linkcode PcapReader.header}. */
export interface PcapHeader {
  /** The LINKTYPE_ value, such as 1 (Ethernet) or 101 (raw IP). */
  linkType: number;
  /**
   * The {@linkcode LinkType} to parse the records with, when the file's
   * link type is one this package parses: Ethernet, or raw IP (101, 228,
   * 229). Undefined otherwise, LINUX_SLL2 (276) included: its records say
   * their own `protocol`.
   */
  link?: LinkType;
  /**
   * The largest number of bytes captured per packet, as the file says.
   * Records longer than this are read anyway (up to 256 KiB), as libpcap,
   * tshark and scapy do: some writers store a smaller value than they use.
   */
  snapLength: number;
  /** Whether timestamps have nanosecond (rather than microsecond) fractions. */
  nanosecond: boolean;
  /** Whether the file's numbers are little-endian. */
  littleEndian: boolean;
  /** Format major version, always 2. */
  versionMajor: number;
  /** Format minor version, normally 4. */
  versionMinor: number;
}

const MAGIC_MICROSECOND = 0xa1b2c3d4;
const MAGIC_NANOSECOND = 0xa1b23c4d;
const MAGIC_PCAPNG = 0x0a0d0d0a;
const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
const LINKTYPE_IPV4 = 228;
const LINKTYPE_IPV6 = 229;
const LINKTYPE_LINUX_SLL2 = 276;
const SLL2_HEADER_LENGTH = 20;
const ARPHRD_ETHER = 1;
const ARPHRD_NONE = 0xfffe;
const PACKET_OUTGOING = 4;
const ETHERNET_HEADER_LENGTH = 14;
const SNAP_LENGTH = 262144;
const FILE_HEADER_LENGTH = 24;
const RECORD_HEADER_LENGTH = 16;
const NS_PER_SECOND = 1_000_000_000n;

function nowNs(): bigint {
  // timeOrigin + now() has sub-millisecond precision, unlike Date.now().
  const microseconds = Math.round(
    (performance.timeOrigin + performance.now()) * 1000,
  );
  return BigInt(microseconds) * 1000n;
}

/**
 * Writes packets to a classic pcap file: magic 0xa1b23c4d (nanosecond
 * timestamps), little-endian, version 2.4, snapshot length 262144.
 * Packets longer than that are cut to it, keeping their original length.
 * With `linuxSll2: true`, the link type is LINUX_SLL2 and each record
 * carries the packet's direction.
 *
 * Writes are serialized: each record goes to the sink as one chunk, in the
 * order of the `write` calls, even when calls overlap.
 *
 * @example Record packets into a file for tcpdump or Wireshark
 * ```ts ignore
 * import { buildUdp, PcapWriter } from "@tuntap/tuntap/packet";
 *
 * const file = await Deno.open("capture.pcap", { write: true, create: true, truncate: true });
 * const writer = new PcapWriter(file, { link: "ip" });
 * await writer.write(buildUdp({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.2",
 *   sourcePort: 1,
 *   destinationPort: 2,
 * }));
 * await writer.close(); // also closes the file
 * ```
 */
export class PcapWriter {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #linkType: number;
  #link: LinkType;
  #headerWritten = false;
  #closing: Promise<void> | undefined;

  /**
   * Takes hold of the sink; nothing is written until the first record (or
   * `close`, which writes the header of an empty capture).
   *
   * @param sink A `WritableStream` or a `Deno.FsFile`. The writer locks it
   *   and closes it on {@linkcode PcapWriter.close}.
   * @param options The link type of the packets.
   * @throws {TypeError} If the sink is not writable or the link unknown.
   */
  constructor(sink: PcapSink, options: PcapWriterOptions) {
    const link = options?.link;
    if (link !== "ip" && link !== "ethernet") {
      throw new TypeError(
        `PcapWriter link must be "ip" or "ethernet", got ${String(link)}`,
      );
    }
    this.#link = link;
    this.#linkType = options.linuxSll2
      ? LINKTYPE_LINUX_SLL2
      : link === "ip"
      ? LINKTYPE_RAW
      : LINKTYPE_ETHERNET;
    const stream = sink instanceof WritableStream
      ? sink
      : (sink as { writable?: unknown } | null)?.writable;
    if (!(stream instanceof WritableStream)) {
      throw new TypeError(
        "PcapWriter sink must be a WritableStream or have a writable stream",
      );
    }
    this.#writer = stream.getWriter();
  }

  /**
   * Appends one packet.
   *
   * @param bytes The packet, starting with the link header.
   * @param timestampNs Capture time in nanoseconds since the Unix epoch;
   *   defaults to now.
   * @param info The original length of a packet already cut, and the
   *   direction and interface, recorded in a LINUX_SLL2 file (ignored
   *   otherwise).
   * @returns A promise settled when the sink has taken the record.
   * @throws {TypeError} If `bytes` is not a Uint8Array or the timestamp not
   *   a bigint.
   * @throws {RangeError} If the timestamp is negative or beyond 2106.
   * @throws {Error} If the writer is closed, or the sink fails.
   */
  write(bytes: Uint8Array, timestampNs?: bigint, info?: PcapPacketInfo): Promise<void> {
    // Not an async function body throughout: the record must be queued on
    // the stream synchronously, so that overlapping calls keep their order.
    try {
      if (this.#closing) throw new Error("PcapWriter is closed");
      if (!(bytes instanceof Uint8Array)) {
        throw new TypeError("Packet must be a Uint8Array");
      }
      const time = timestampNs ?? nowNs();
      if (typeof time !== "bigint") {
        throw new TypeError("timestampNs must be a bigint");
      }
      const seconds = time / NS_PER_SECOND;
      if (time < 0n || seconds > 0xffffffffn) {
        throw new RangeError(
          `timestampNs ${time} does not fit a pcap timestamp (0 to 2^32 seconds)`,
        );
      }
      const original = info?.originalLength ?? bytes.length;
      if (
        !Number.isSafeInteger(original) || original < bytes.length || original > 0xffffffff
      ) {
        throw new RangeError(
          `originalLength must be an integer from the packet's ${bytes.length} bytes to 2^32-1, got ${original}`,
        );
      }
      const sll2 = this.#linkType === LINKTYPE_LINUX_SLL2
        ? sll2Header(bytes, this.#link, info)
        : undefined;
      const payload = sll2 ? bytes.subarray(sll2.skip) : bytes;
      const prefix = sll2 ? SLL2_HEADER_LENGTH : 0;
      const captured = Math.min(prefix + payload.length, SNAP_LENGTH);
      const header = this.#headerWritten ? 0 : FILE_HEADER_LENGTH;
      const chunk = new Uint8Array(header + RECORD_HEADER_LENGTH + captured);
      if (header) this.#writeFileHeader(chunk);
      const view = new DataView(chunk.buffer, header, RECORD_HEADER_LENGTH);
      view.setUint32(0, Number(seconds), true);
      view.setUint32(4, Number(time % NS_PER_SECOND), true);
      view.setUint32(8, captured, true);
      view.setUint32(12, Math.min(prefix + original - (sll2?.skip ?? 0), 0xffffffff), true);
      const start = header + RECORD_HEADER_LENGTH;
      if (sll2) chunk.set(sll2.header, start);
      chunk.set(payload.subarray(0, captured - prefix), start + prefix);
      this.#headerWritten = true;
      return this.#writer.write(chunk);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Writes the file header if no record did, then closes the sink (and so
   * the file, for a `Deno.FsFile`). Calling it again returns the same
   * promise.
   *
   * @returns A promise settled when the sink is closed.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.#headerWritten) {
        const chunk = new Uint8Array(FILE_HEADER_LENGTH);
        this.#writeFileHeader(chunk);
        this.#headerWritten = true;
        await this.#writer.write(chunk);
      }
      await this.#writer.close();
    })();
    return this.#closing;
  }

  /**
   * Closes the writer, for `await using`.
   *
   * @returns A promise settled when the sink is closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #writeFileHeader(chunk: Uint8Array): void {
    const view = new DataView(chunk.buffer, 0, FILE_HEADER_LENGTH);
    view.setUint32(0, MAGIC_NANOSECOND, true);
    view.setUint16(4, 2, true);
    view.setUint16(6, 4, true);
    // Bytes 8..15 (time zone offset, timestamp accuracy) stay zero.
    view.setUint32(16, SNAP_LENGTH, true);
    view.setUint32(20, this.#linkType, true);
  }
}

/**
 * The LINUX_SLL2 header of a packet (all big-endian): protocol, reserved,
 * interface index, ARPHRD type, packet type, address length, address[8];
 * and how many bytes of the packet it replaces (an Ethernet header).
 */
function sll2Header(
  bytes: Uint8Array,
  link: LinkType,
  info: PcapPacketInfo | undefined,
): { header: Uint8Array; skip: number } {
  const header = new Uint8Array(SLL2_HEADER_LENGTH);
  const view = new DataView(header.buffer);
  let protocol = 0;
  let skip = 0;
  if (link === "ip") {
    const version = bytes.length > 0 ? bytes[0] >> 4 : 0;
    protocol = version === 4 ? 0x0800 : version === 6 ? 0x86dd : 0;
    view.setUint16(8, ARPHRD_NONE);
  } else {
    view.setUint16(8, ARPHRD_ETHER);
    if (bytes.length >= ETHERNET_HEADER_LENGTH) {
      const type = (bytes[12] << 8) | bytes[13];
      skip = ETHERNET_HEADER_LENGTH;
      protocol = type >= 0x600
        ? type
        : bytes[14] === 0xff && bytes[15] === 0xff
        ? ETH_P_802_3
        : ETH_P_802_2;
      view.setUint8(11, 6);
      header.set(bytes.subarray(6, 12), 12);
    }
  }
  view.setUint16(0, protocol);
  view.setInt32(4, info?.interfaceIndex ?? 0);
  view.setUint8(10, info?.packetType ?? (info?.direction === "out" ? PACKET_OUTGOING : 0));
  return { header, skip };
}

/**
 * Pulls exact byte counts out of a stream of arbitrarily sized chunks,
 * keeping count of the file offset for error messages.
 */
class ByteQueue {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #buffered = 0;
  #done = false;
  offset = 0;

  constructor(reader: ReadableStreamDefaultReader<Uint8Array>) {
    this.#reader = reader;
  }

  /** Buffers until `count` bytes are available or the stream ends. */
  async fill(count: number): Promise<number> {
    while (this.#buffered < count && !this.#done) {
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#done = true;
      } else if (!(value instanceof Uint8Array)) {
        throw new TypeError("pcap source must yield Uint8Array chunks");
      } else if (value.length > 0) {
        this.#chunks.push(value);
        this.#buffered += value.length;
      }
    }
    return this.#buffered;
  }

  /** Copies out `count` buffered bytes; the caller has `fill`ed enough. */
  take(count: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(count);
    let written = 0;
    while (written < count) {
      const chunk = this.#chunks[0];
      const piece = Math.min(chunk.length - this.#head, count - written);
      out.set(chunk.subarray(this.#head, this.#head + piece), written);
      written += piece;
      this.#head += piece;
      if (this.#head === chunk.length) {
        this.#chunks.shift();
        this.#head = 0;
      }
    }
    this.#buffered -= count;
    this.offset += count;
    return out;
  }

  get done(): boolean {
    return this.#done;
  }

  cancel(reason?: unknown): Promise<void> {
    return this.#reader.cancel(reason);
  }

  release(): void {
    this.#reader.releaseLock();
  }
}

/**
 * Reads a classic pcap file record by record; see {@linkcode readPcap}.
 * The source is read once: iterate the reader a single time.
 */
export class PcapReader implements AsyncIterable<PcapRecord> {
  #input: ByteQueue;
  #header: Promise<PcapHeader> | undefined;
  #iterated = false;

  /**
   * Takes hold of the source; nothing is read until {@linkcode header} or
   * the iteration asks.
   *
   * @param source A `ReadableStream` or a `Deno.FsFile`.
   * @throws {TypeError} If the source is not readable.
   */
  constructor(source: PcapSource) {
    const stream = source instanceof ReadableStream
      ? source
      : (source as { readable?: unknown } | null)?.readable;
    if (!(stream instanceof ReadableStream)) {
      throw new TypeError(
        "pcap source must be a ReadableStream or have a readable stream",
      );
    }
    this.#input = new ByteQueue(stream.getReader());
  }

  /**
   * Reads (once) and returns the file header, which tells among other
   * things the link type to parse the records with.
   *
   * @returns The file header.
   * @throws {Error} If the file is empty, truncated, not a pcap file, or of
   *   an unsupported version.
   */
  header(): Promise<PcapHeader> {
    this.#header ??= this.#readHeader();
    return this.#header;
  }

  /**
   * Stops reading and cancels the source (closing a `Deno.FsFile`), for a
   * reader that is dropped before the end of the file.
   *
   * @returns A promise settled once the source is cancelled.
   */
  cancel(): Promise<void> {
    return this.#input.cancel();
  }

  /**
   * Yields the records in file order.
   *
   * @returns An iterator over the records.
   * @throws {Error} If the file header or a record is corrupt or truncated;
   *   the message gives the byte offset.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<PcapRecord, void, undefined> {
    if (this.#iterated) throw new Error("A PcapReader can be iterated once");
    this.#iterated = true;
    const input = this.#input;
    try {
      const header = await this.header();
      const little = header.littleEndian;
      const fractionNs = header.nanosecond ? 1n : 1000n;
      for (;;) {
        const start = input.offset;
        const available = await input.fill(RECORD_HEADER_LENGTH);
        if (available === 0) return;
        if (available < RECORD_HEADER_LENGTH) {
          throw new Error(
            `Truncated pcap record header at byte offset ${start}: need 16 bytes, have ${available}`,
          );
        }
        const view = new DataView(input.take(RECORD_HEADER_LENGTH).buffer);
        const seconds = view.getUint32(0, little);
        const fraction = view.getUint32(4, little);
        const captured = view.getUint32(8, little);
        // The file's snapshot length is no bound: libpcap, tshark and scapy
        // read longer records too, and scapy writes 65535 whatever it holds.
        if (captured > SNAP_LENGTH) {
          throw new Error(
            `Corrupt pcap record at byte offset ${start}: captured length ${captured} exceeds the 256 KiB limit (${SNAP_LENGTH})`,
          );
        }
        const originalLength = view.getUint32(12, little);
        const have = await input.fill(captured);
        if (have < captured) {
          throw new Error(
            `Truncated pcap record at byte offset ${start}: need ${captured} bytes of packet data, have ${have}`,
          );
        }
        const timestampNs = BigInt(seconds) * NS_PER_SECOND + BigInt(fraction) * fractionNs;
        const bytes = input.take(captured);
        if (header.linkType !== LINKTYPE_LINUX_SLL2) {
          yield { timestampNs, bytes, originalLength };
          continue;
        }
        if (captured < SLL2_HEADER_LENGTH) {
          throw new Error(
            `Corrupt pcap record at byte offset ${start}: ${captured} bytes cannot hold the 20-byte LINUX_SLL2 header`,
          );
        }
        const sll2 = new DataView(bytes.buffer, 0, SLL2_HEADER_LENGTH);
        const packetType = sll2.getUint8(10);
        yield {
          timestampNs,
          bytes: bytes.slice(SLL2_HEADER_LENGTH),
          originalLength: Math.max(originalLength - SLL2_HEADER_LENGTH, 0),
          direction: packetType === PACKET_OUTGOING ? "out" : "in",
          packetType,
          interfaceIndex: sll2.getInt32(4),
          protocol: sll2.getUint16(0),
        };
      }
    } finally {
      // Cancelling an unfinished source closes a Deno.FsFile behind it.
      if (input.done) input.release();
      else await input.cancel();
    }
  }

  async #readHeader(): Promise<PcapHeader> {
    const input = this.#input;
    const available = await input.fill(FILE_HEADER_LENGTH);
    if (available === 0) {
      throw new Error("Empty pcap file: no 24-byte file header");
    }
    const head = input.take(Math.min(available, FILE_HEADER_LENGTH));
    if (available >= 4) {
      const magic = ((head[0] << 24) | (head[1] << 16) | (head[2] << 8) |
        head[3]) >>> 0;
      if (magic === MAGIC_PCAPNG) {
        throw new Error(
          "Unsupported file at byte offset 0: this is pcapng, only classic pcap is read",
        );
      }
      const known = [MAGIC_MICROSECOND, MAGIC_NANOSECOND];
      if (!known.includes(magic) && !known.includes(swap32(magic))) {
        throw new Error(
          `Not a pcap file: bad magic number 0x${
            magic.toString(16).padStart(8, "0")
          } at byte offset 0`,
        );
      }
    }
    if (available < FILE_HEADER_LENGTH) {
      throw new Error(
        `Truncated pcap file header at byte offset 0: need 24 bytes, have ${available}`,
      );
    }
    const bigEndianMagic = new DataView(head.buffer).getUint32(0, false);
    const littleEndian = !(bigEndianMagic === MAGIC_MICROSECOND ||
      bigEndianMagic === MAGIC_NANOSECOND);
    const view = new DataView(head.buffer);
    const magic = view.getUint32(0, littleEndian);
    const versionMajor = view.getUint16(4, littleEndian);
    const versionMinor = view.getUint16(6, littleEndian);
    if (versionMajor !== 2) {
      throw new Error(
        `Unsupported pcap version ${versionMajor}.${versionMinor} at byte offset 4: only 2.x is read`,
      );
    }
    // The upper bits of the link type field carry FCS information.
    const linkType = view.getUint32(20, littleEndian) & 0xffff;
    const header: PcapHeader = {
      linkType,
      snapLength: view.getUint32(16, littleEndian),
      nanosecond: magic === MAGIC_NANOSECOND,
      littleEndian,
      versionMajor,
      versionMinor,
    };
    if (linkType === LINKTYPE_ETHERNET) header.link = "ethernet";
    else if (
      linkType === LINKTYPE_RAW || linkType === LINKTYPE_IPV4 ||
      linkType === LINKTYPE_IPV6
    ) header.link = "ip";
    return header;
  }
}

function swap32(value: number): number {
  return (((value & 0xff) << 24) | ((value & 0xff00) << 8) |
    ((value >>> 8) & 0xff00) | (value >>> 24)) >>> 0;
}

/**
 * Reads a classic pcap file: microsecond or nanosecond timestamps, either
 * byte order, from a stream chunked in any way. Timestamps come out in
 * nanoseconds either way. A corrupt or truncated file makes the iteration
 * reject with an `Error` that says what is wrong and at which byte offset.
 * Reading to the end (or stopping early, or failing) closes the source.
 *
 * @example Summarize a capture
 * ```ts ignore
 * import { readPcap, summarize } from "@tuntap/tuntap/packet";
 *
 * const reader = readPcap(await Deno.open("capture.pcap"));
 * const { link = "ip" } = await reader.header();
 * for await (const { timestampNs, bytes } of reader) {
 *   console.log(timestampNs, summarize(bytes, link));
 * }
 * ```
 *
 * @param source A `Deno.FsFile` or a `ReadableStream` of the file's bytes.
 * @returns A reader to iterate once; it also offers the file header.
 * @throws {TypeError} If the source is not readable.
 */
export function readPcap(source: PcapSource): PcapReader {
  return new PcapReader(source);
}
