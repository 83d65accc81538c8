/**
 * The `struct virtio_net_hdr` (Linux `include/uapi/linux/virtio_net.h`)
 * that a TUN or TAP device opened with `vnetHeader: true` puts before every
 * packet it reads and expects before every packet written to it. It says
 * whether the packet still needs its transport checksum and whether it is a
 * segmentation offload (GSO) super-packet to be cut into smaller ones.
 *
 * The 16-bit fields are little-endian: Linux uses the virtio 1.0 byte order
 * on the little-endian machines this package runs on, unless a program
 * changes it with `TUNSETVNETBE`.
 *
 * @module
 */

/** Size in bytes of `struct virtio_net_hdr` as TUN and TAP devices use it. */
export const VIRTIO_NET_HDR_SIZE = 10;

/**
 * Bits of {@linkcode VirtioNetHeader.flags}.
 *
 * @example Ask the kernel to finish a TCP checksum
 * ```ts
 * import { buildVirtioNetHeader, VirtioNetHeaderFlag } from "@tuntap/tuntap/packet";
 *
 * const header = buildVirtioNetHeader({
 *   flags: VirtioNetHeaderFlag.NEEDS_CSUM,
 *   checksumStart: 20,
 *   checksumOffset: 16,
 * });
 * ```
 */
export const VirtioNetHeaderFlag = {
  /**
   * The transport checksum is incomplete: the checksum field, at
   * `checksumStart + checksumOffset`, holds only the pseudo-header sum, and
   * the one's-complement sum of everything from `checksumStart` on must be
   * folded into it.
   */
  NEEDS_CSUM: 1,
  /** The checksum was verified already (set by the kernel on reads). */
  DATA_VALID: 2,
} as const;

/**
 * Values of {@linkcode VirtioNetHeader.gsoType}: what kind of super-packet
 * the packet is, if any.
 *
 * @example Recognise a TCP super-packet
 * ```ts
 * import { parseVirtioNetHeader, VirtioNetGsoType } from "@tuntap/tuntap/packet";
 *
 * function isTso(bytes: Uint8Array): boolean {
 *   const type = parseVirtioNetHeader(bytes).gsoType & ~VirtioNetGsoType.ECN;
 *   return type === VirtioNetGsoType.TCPV4 || type === VirtioNetGsoType.TCPV6;
 * }
 * ```
 */
export const VirtioNetGsoType = {
  /** A plain packet, not to be segmented. */
  NONE: 0,
  /** TCP over IPv4 (TSO): cut into segments of `gsoSize` payload bytes. */
  TCPV4: 1,
  /** UDP over IPv4 cut into IP fragments (UFO, obsolete). */
  UDP: 3,
  /** TCP over IPv6 (TSO). */
  TCPV6: 4,
  /** UDP over IPv4 or IPv6 cut into datagrams of `gsoSize` bytes (USO). */
  UDP_L4: 5,
  /** Bit added to a TCP type: the super-packet has the CWR flag set. */
  ECN: 0x80,
} as const;

/** The fields of `struct virtio_net_hdr`, as plain numbers. */
export interface VirtioNetHeader {
  /** {@linkcode VirtioNetHeaderFlag} bits. */
  flags: number;
  /** A {@linkcode VirtioNetGsoType}, maybe with the `ECN` bit. */
  gsoType: number;
  /**
   * Length of the headers to repeat in every segment (IP and transport).
   * A hint only: on a forwarded packet Linux reports the length of the
   * packet's linear part instead.
   */
  headerLength: number;
  /** Payload bytes per segment of a super-packet. */
  gsoSize: number;
  /** Offset of the first byte the transport checksum covers. */
  checksumStart: number;
  /** Offset of the checksum field, counted from `checksumStart`. */
  checksumOffset: number;
}

function readLe16(bytes: Uint8Array, offset: number): number {
  return bytes[offset] | (bytes[offset + 1] << 8);
}

function writeLe16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value;
  bytes[offset + 1] = value >>> 8;
}

/**
 * Decodes the `struct virtio_net_hdr` at the start of `bytes`, as read from
 * a device opened with `vnetHeader: true`. The packet itself follows at
 * {@linkcode VIRTIO_NET_HDR_SIZE}.
 *
 * @example Read the header of a packet
 * ```ts
 * import {
 *   parseVirtioNetHeader,
 *   VIRTIO_NET_HDR_SIZE,
 *   VirtioNetGsoType,
 * } from "@tuntap/tuntap/packet";
 *
 * const read = new Uint8Array([1, 1, 52, 0, 0xa8, 0x05, 20, 0, 16, 0]);
 * const header = parseVirtioNetHeader(read);
 * // header.gsoType === VirtioNetGsoType.TCPV4, header.gsoSize === 1448
 * const packet = read.subarray(VIRTIO_NET_HDR_SIZE);
 * ```
 *
 * @param bytes At least 10 bytes; only the first 10 are read.
 * @returns The header's fields.
 * @throws {TypeError} If `bytes` is not a Uint8Array.
 * @throws {RangeError} If `bytes` is shorter than 10 bytes.
 */
export function parseVirtioNetHeader(bytes: Uint8Array): VirtioNetHeader {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError("virtio-net header must be a Uint8Array");
  }
  if (bytes.length < VIRTIO_NET_HDR_SIZE) {
    throw new RangeError(
      `Truncated virtio-net header: need ${VIRTIO_NET_HDR_SIZE} bytes, have ${bytes.length}`,
    );
  }
  return {
    flags: bytes[0],
    gsoType: bytes[1],
    headerLength: readLe16(bytes, 2),
    gsoSize: readLe16(bytes, 4),
    checksumStart: readLe16(bytes, 6),
    checksumOffset: readLe16(bytes, 8),
  };
}

function field(header: Partial<VirtioNetHeader>, name: keyof VirtioNetHeader, max: number) {
  const value = header[name] ?? 0;
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be a number, got ${typeof value}`);
  }
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer 0..${max}, got ${value}`);
  }
  return value;
}

/**
 * Checks every field of a header given by a caller, filling missing ones
 * with 0; shared with the GSO code so both refuse the same values.
 */
export function resolveVirtioNetHeader(header: Partial<VirtioNetHeader>): VirtioNetHeader {
  if (typeof header !== "object" || header === null) {
    throw new TypeError("virtio-net header fields must be an object");
  }
  return {
    flags: field(header, "flags", 0xff),
    gsoType: field(header, "gsoType", 0xff),
    headerLength: field(header, "headerLength", 0xffff),
    gsoSize: field(header, "gsoSize", 0xffff),
    checksumStart: field(header, "checksumStart", 0xffff),
    checksumOffset: field(header, "checksumOffset", 0xffff),
  };
}

/**
 * Encodes a `struct virtio_net_hdr`, for the front of a packet written to a
 * device opened with `vnetHeader: true`. Fields left out are 0, so `{}`
 * gives the header of a plain packet whose checksums are complete.
 *
 * @example Write a plain packet with its header in front
 * ```ts
 * import { buildUdp, buildVirtioNetHeader, VIRTIO_NET_HDR_SIZE } from "@tuntap/tuntap/packet";
 *
 * const packet = buildUdp({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.2",
 *   sourcePort: 1,
 *   destinationPort: 2,
 * });
 * const buffer = new Uint8Array(VIRTIO_NET_HDR_SIZE + packet.length);
 * buildVirtioNetHeader({}, buffer);
 * buffer.set(packet, VIRTIO_NET_HDR_SIZE);
 * ```
 *
 * @param header The fields to set; missing ones are 0.
 * @param into Where to write the 10 bytes, at its start; a new array when
 *   left out.
 * @returns `into`, or the new 10-byte array.
 * @throws {TypeError} If a field is not a number or `into` is not a
 *   Uint8Array.
 * @throws {RangeError} If a field is out of range or `into` is shorter
 *   than 10 bytes.
 */
export function buildVirtioNetHeader(
  header: Partial<VirtioNetHeader>,
  into?: Uint8Array,
): Uint8Array {
  const fields = resolveVirtioNetHeader(header);
  if (into !== undefined && !(into instanceof Uint8Array)) {
    throw new TypeError("virtio-net header target must be a Uint8Array");
  }
  const bytes = into ?? new Uint8Array(VIRTIO_NET_HDR_SIZE);
  if (bytes.length < VIRTIO_NET_HDR_SIZE) {
    throw new RangeError(
      `virtio-net header target must be at least ${VIRTIO_NET_HDR_SIZE} bytes, got ${bytes.length}`,
    );
  }
  bytes[0] = fields.flags;
  bytes[1] = fields.gsoType;
  writeLe16(bytes, 2, fields.headerLength);
  writeLe16(bytes, 4, fields.gsoSize);
  writeLe16(bytes, 6, fields.checksumStart);
  writeLe16(bytes, 8, fields.checksumOffset);
  return bytes;
}
