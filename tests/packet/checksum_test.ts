import fc from "fast-check";
import { assertStrictEquals, assertThrows } from "../assert.ts";
import { internetChecksum, pseudoHeaderSum, transportChecksum } from "../../packet/mod.ts";
import { ipv4Bytes, ipv6Bytes } from "./arbitraries.ts";
import { exampleIPv4Header } from "./samples.ts";

const NUM_RUNS = 300;

/** RFC 1071 computed the slow, obvious way, as an oracle. */
function referenceChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i] << 8) + (i + 1 < bytes.length ? bytes[i + 1] : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

/** The pseudo-header written out byte by byte, as RFC 768 and 8200 draw it. */
function pseudoHeaderBytes(
  source: Uint8Array,
  destination: Uint8Array,
  protocol: number,
  length: number,
): Uint8Array {
  if (source.length === 4) {
    return new Uint8Array([
      ...source,
      ...destination,
      0,
      protocol,
      length >> 8,
      length & 0xff,
    ]);
  }
  return new Uint8Array([
    ...source,
    ...destination,
    length >>> 24,
    (length >> 16) & 0xff,
    (length >> 8) & 0xff,
    length & 0xff,
    0,
    0,
    0,
    protocol,
  ]);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

Deno.test("internetChecksum matches the RFC 1071 section 3 worked example", () => {
  // The example sums to 0xddf2; the checksum is its complement.
  const bytes = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assertStrictEquals(internetChecksum(bytes), 0x220d);
});

Deno.test("internetChecksum reproduces the checksum of a real IPv4 header and sums a correct header to 0", () => {
  const header = exampleIPv4Header();
  assertStrictEquals(internetChecksum(header), 0);
  header[10] = header[11] = 0;
  assertStrictEquals(internetChecksum(header), 0xb861);
});

Deno.test("internetChecksum pads an odd trailing byte with zero", () => {
  assertStrictEquals(internetChecksum(new Uint8Array([0x01])), 0xfeff);
  assertStrictEquals(
    internetChecksum(new Uint8Array([0x12, 0x34, 0x56])),
    ~(0x1234 + 0x5600) & 0xffff,
  );
  assertStrictEquals(internetChecksum(new Uint8Array(0)), 0xffff);
});

Deno.test("internetChecksum agrees with a naive RFC 1071 implementation on random data", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
      assertStrictEquals(internetChecksum(bytes), referenceChecksum(bytes));
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("storing internetChecksum's result in a zeroed word makes the data sum to 0", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 2, maxLength: 200 }),
      fc.nat(),
      (data, pick) => {
        const bytes = new Uint8Array(data.length & ~1 || 2);
        bytes.set(data.subarray(0, bytes.length));
        const at = 2 * (pick % (bytes.length / 2));
        bytes[at] = bytes[at + 1] = 0;
        const checksum = internetChecksum(bytes);
        bytes[at] = checksum >> 8;
        bytes[at + 1] = checksum & 0xff;
        assertStrictEquals(internetChecksum(bytes), 0);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("internetChecksum's initial sum continues a checksum over an even-length prefix", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 100 }),
      fc.uint8Array({ maxLength: 100 }),
      (head, tail) => {
        const even = head.subarray(0, head.length & ~1);
        const partial = ~internetChecksum(even) & 0xffff;
        assertStrictEquals(internetChecksum(tail, partial), internetChecksum(concat(even, tail)));
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("transportChecksum equals the checksum over an explicitly written pseudo-header, for IPv4 and IPv6", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.tuple(ipv4Bytes, ipv4Bytes), fc.tuple(ipv6Bytes, ipv6Bytes)),
      fc.constantFrom(6, 17, 58),
      fc.uint8Array({ maxLength: 300 }),
      ([source, destination], protocol, segment) => {
        const expected = referenceChecksum(
          concat(pseudoHeaderBytes(source, destination, protocol, segment.length), segment),
        );
        assertStrictEquals(transportChecksum({ source, destination, protocol, segment }), expected);
        const initial = pseudoHeaderSum({ source, destination, protocol, length: segment.length });
        assertStrictEquals(internetChecksum(segment, initial), expected);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("pseudoHeaderSum counts a 32-bit IPv6 length in both halves", () => {
  const source = new Uint8Array(16);
  const destination = new Uint8Array(16);
  const length = 0x12345;
  const expected = referenceChecksum(pseudoHeaderBytes(source, destination, 17, length));
  assertStrictEquals(
    internetChecksum(
      new Uint8Array(0),
      pseudoHeaderSum({ source, destination, protocol: 17, length }),
    ),
    expected,
  );
});

Deno.test("checksum functions reject bad arguments with TypeError or RangeError", () => {
  assertThrows(() => internetChecksum([1, 2] as unknown as Uint8Array), TypeError);
  assertThrows(() => internetChecksum(new Uint8Array(2), -1), RangeError);
  assertThrows(() => internetChecksum(new Uint8Array(2), 1.5), RangeError);
  const v4 = new Uint8Array(4);
  const v6 = new Uint8Array(16);
  assertThrows(
    () => pseudoHeaderSum({ source: v4, destination: v6, protocol: 6, length: 0 }),
    RangeError,
  );
  assertThrows(
    () => pseudoHeaderSum({ source: v4, destination: v4, protocol: 256, length: 0 }),
    RangeError,
  );
  assertThrows(
    () => pseudoHeaderSum({ source: v4, destination: v4, protocol: 6, length: -1 }),
    RangeError,
  );
  assertThrows(
    () =>
      pseudoHeaderSum({
        source: "1.2.3.4" as unknown as Uint8Array,
        destination: v4,
        protocol: 6,
        length: 0,
      }),
    TypeError,
  );
  assertThrows(
    () =>
      transportChecksum({
        source: v4,
        destination: v4,
        protocol: 6,
        segment: null as unknown as Uint8Array,
      }),
    TypeError,
  );
});
