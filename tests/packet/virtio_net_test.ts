import fc from "fast-check";
import { assertEquals, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  buildVirtioNetHeader,
  parseVirtioNetHeader,
  VIRTIO_NET_HDR_SIZE,
  VirtioNetGsoType,
  type VirtioNetHeader,
  VirtioNetHeaderFlag,
} from "../../packet/mod.ts";

const u16 = fc.integer({ min: 0, max: 0xffff });
const header: fc.Arbitrary<VirtioNetHeader> = fc.record({
  flags: fc.integer({ min: 0, max: 0xff }),
  gsoType: fc.integer({ min: 0, max: 0xff }),
  headerLength: u16,
  gsoSize: u16,
  checksumStart: u16,
  checksumOffset: u16,
});

Deno.test("buildVirtioNetHeader then parseVirtioNetHeader gives back every field", () => {
  fc.assert(
    fc.property(header, (fields) => {
      const bytes = buildVirtioNetHeader(fields);
      assertStrictEquals(bytes.length, VIRTIO_NET_HDR_SIZE);
      assertEquals(parseVirtioNetHeader(bytes), fields);
    }),
    { numRuns: 500 },
  );
});

Deno.test("parseVirtioNetHeader then buildVirtioNetHeader gives back the same 10 bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 10, maxLength: 40 }), (bytes) => {
      const rebuilt = buildVirtioNetHeader(parseVirtioNetHeader(bytes));
      assertEquals(rebuilt, bytes.slice(0, 10));
    }),
    { numRuns: 500 },
  );
});

Deno.test("virtio-net header fields are little-endian 16-bit words after two bytes", () => {
  const bytes = buildVirtioNetHeader({
    flags: VirtioNetHeaderFlag.NEEDS_CSUM,
    gsoType: VirtioNetGsoType.TCPV6 | VirtioNetGsoType.ECN,
    headerLength: 0x0102,
    gsoSize: 1440,
    checksumStart: 40,
    checksumOffset: 16,
  });
  assertEquals([...bytes], [1, 0x84, 0x02, 0x01, 0xa0, 0x05, 40, 0, 16, 0]);
});

Deno.test("virtio-net constants have the kernel's values", () => {
  assertStrictEquals(VIRTIO_NET_HDR_SIZE, 10);
  assertEquals(VirtioNetHeaderFlag, { NEEDS_CSUM: 1, DATA_VALID: 2 });
  assertEquals(VirtioNetGsoType, { NONE: 0, TCPV4: 1, UDP: 3, TCPV6: 4, UDP_L4: 5, ECN: 0x80 });
});

Deno.test("buildVirtioNetHeader fills missing fields with 0", () => {
  assertEquals([...buildVirtioNetHeader({})], new Array(10).fill(0));
  assertEquals(parseVirtioNetHeader(buildVirtioNetHeader({ gsoSize: 7 })), {
    flags: 0,
    gsoType: 0,
    headerLength: 0,
    gsoSize: 7,
    checksumStart: 0,
    checksumOffset: 0,
  });
});

Deno.test("buildVirtioNetHeader writes into the start of a given buffer and returns it", () => {
  const buffer = new Uint8Array(14).fill(0xee);
  const result = buildVirtioNetHeader({ flags: 2 }, buffer);
  assertStrictEquals(result, buffer);
  assertEquals([...buffer], [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee]);
});

Deno.test("parseVirtioNetHeader reads only the first 10 bytes of a longer buffer", () => {
  const bytes = new Uint8Array(100).fill(0xff);
  bytes.set([0, 1, 52, 0, 0xa8, 0x05, 20, 0, 16, 0]);
  assertEquals(parseVirtioNetHeader(bytes), {
    flags: 0,
    gsoType: VirtioNetGsoType.TCPV4,
    headerLength: 52,
    gsoSize: 1448,
    checksumStart: 20,
    checksumOffset: 16,
  });
});

Deno.test("parseVirtioNetHeader refuses fewer than 10 bytes and non-Uint8Arrays", () => {
  assertThrows(() => parseVirtioNetHeader(new Uint8Array(9)), {
    name: "RangeError",
    message: "Truncated virtio-net header: need 10 bytes, have 9",
  });
  assertThrows(() => parseVirtioNetHeader([0, 0, 0, 0, 0, 0, 0, 0, 0, 0] as never), TypeError);
});

Deno.test("buildVirtioNetHeader refuses out-of-range fields and short buffers", () => {
  assertThrows(() => buildVirtioNetHeader({ flags: 256 }), {
    name: "RangeError",
    message: "flags must be an integer 0..255, got 256",
  });
  assertThrows(() => buildVirtioNetHeader({ gsoSize: 65536 }), RangeError);
  assertThrows(() => buildVirtioNetHeader({ checksumStart: -1 }), RangeError);
  assertThrows(() => buildVirtioNetHeader({ headerLength: 1.5 }), RangeError);
  assertThrows(() => buildVirtioNetHeader({ gsoType: "1" as never }), TypeError);
  assertThrows(() => buildVirtioNetHeader(null as never), TypeError);
  assertThrows(() => buildVirtioNetHeader({}, new Uint8Array(9)), {
    name: "RangeError",
    message: "virtio-net header target must be at least 10 bytes, got 9",
  });
  assertThrows(() => buildVirtioNetHeader({}, new ArrayBuffer(10) as never), TypeError);
});
