import fc from "fast-check";
import { assertEquals, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  formatIp,
  formatMac,
  parseCidr,
  parseIp,
  parseIPv4,
  parseIPv6,
  parseMac,
} from "../../packet/mod.ts";
import { ipv4Bytes, ipv6Bytes, macBytes } from "./arbitraries.ts";

const NUM_RUNS = 500;

function isMapped(bytes: Uint8Array): boolean {
  return bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff && bytes[11] === 0xff;
}

/** Errors for malformed input are TypeError or RangeError, never others. */
function assertBadInput(fn: () => unknown): void {
  assertThrows(fn, (error: unknown) => {
    return error instanceof TypeError || error instanceof RangeError;
  });
}

Deno.test("formatIp then parseIp gives back the same bytes, for both families", () => {
  fc.assert(
    fc.property(fc.oneof(ipv4Bytes, ipv6Bytes), (bytes) => {
      const text = formatIp(bytes);
      assertEquals(parseIp(text), new Uint8Array(bytes));
      assertStrictEquals(formatIp(parseIp(text)), text);
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("formatIp of IPv6 matches the WHATWG URL serializer, which also follows RFC 5952 compression", () => {
  fc.assert(
    fc.property(ipv6Bytes.filter((b) => !isMapped(b)), (bytes) => {
      const text = formatIp(bytes);
      const url = new URL(`http://[${text}]/`);
      assertStrictEquals(`[${text}]`, url.hostname);
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("parseIPv6 reads uncompressed uppercase text with leading zeros the same as the canonical form", () => {
  fc.assert(
    fc.property(ipv6Bytes, (bytes) => {
      const words = [];
      for (let i = 0; i < 16; i += 2) {
        words.push(
          ((bytes[i] << 8) | bytes[i + 1]).toString(16).padStart(4, "0")
            .toUpperCase(),
        );
      }
      assertEquals(parseIPv6(words.join(":")), new Uint8Array(bytes));
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test('parseIPv6 accepts "::" in place of any run of zero groups, not only the longest', () => {
  fc.assert(
    fc.property(ipv6Bytes, fc.nat(), fc.nat(), (bytes, pick, length) => {
      const words: string[] = [];
      for (let i = 0; i < 16; i += 2) {
        words.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
      }
      const zeroStarts = words.flatMap((w, i) => w === "0" ? [i] : []);
      if (zeroStarts.length === 0) return;
      const start = zeroStarts[pick % zeroStarts.length];
      let end = start + 1;
      const limit = start + 1 + (length % 8);
      while (end < limit && words[end] === "0") end++;
      const text = `${words.slice(0, start).join(":")}::${words.slice(end).join(":")}`;
      assertEquals(parseIPv6(text), new Uint8Array(bytes), text);
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("formatIp follows RFC 5952 for the standard cases", () => {
  const cases: [string, string][] = [
    ["2001:db8::1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["2001:DB8::AbCd", "2001:db8::abcd"],
    ["2001:db8:0:0:1:0:0:0", "2001:db8:0:0:1::"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["::ffff:c000:0201", "::ffff:192.0.2.1"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    ["fe80::1:2:3:4", "fe80::1:2:3:4"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
  ];
  for (const [input, expected] of cases) {
    assertStrictEquals(formatIp(parseIPv6(input)), expected, input);
  }
});

Deno.test("parseIPv6 accepts embedded dotted IPv4 and places it in the last four bytes", () => {
  assertEquals(
    parseIPv6("::ffff:192.0.2.1"),
    new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 192, 0, 2, 1]),
  );
  assertEquals(
    parseIPv6("1:2:3:4:5:6:10.0.0.1"),
    new Uint8Array([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 10, 0, 0, 1]),
  );
});

Deno.test("parseIPv4 rejects an octet above 255 with a RangeError naming it", () => {
  assertThrows(() => parseIPv4("192.0.2.300"), {
    name: "RangeError",
    message: 'Invalid IPv4 address "192.0.2.300": "300" is greater than 255',
  });
});

Deno.test("parseIPv6 rejects zone ids, naming the zone", () => {
  assertThrows(() => parseIPv6("fe80::1%eth0"), {
    name: "TypeError",
    message: /zone ids \("%eth0"\)/,
  });
});

Deno.test("address parsers reject malformed text with a TypeError or RangeError", () => {
  const badIPv4 = [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.",
    "01.2.3.4",
    "1.2.3.-4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "0x1.2.3.4",
    "1.2.3.1234",
    "1..3.4",
  ];
  for (const text of badIPv4) assertBadInput(() => parseIPv4(text));
  const badIPv6 = [
    "",
    ":",
    ":::",
    "1::2::3",
    "12345::",
    "g::",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7::8",
    ":1::",
    "1::2:",
    "1.2.3.4::",
    "::1.2.3",
    "::1.2.3.256",
    "::ffff:1.2.3.4:5",
    "fe80::1%eth0",
    "[::1]",
  ];
  for (const text of badIPv6) assertBadInput(() => parseIPv6(text));
  for (const text of ["", "1.2.3", "::g", "localhost"]) {
    assertBadInput(() => parseIp(text));
  }
});

Deno.test("address parsers and formatters throw TypeError for arguments of the wrong type", () => {
  for (const fn of [parseIPv4, parseIPv6, parseIp, parseCidr, parseMac]) {
    assertThrows(() => fn(42 as unknown as string), TypeError);
    assertThrows(() => fn(undefined as unknown as string), TypeError);
  }
  assertThrows(() => formatIp([1, 2, 3, 4] as unknown as Uint8Array), TypeError);
  assertThrows(() => formatMac("aa" as unknown as Uint8Array), TypeError);
});

Deno.test("formatIp and formatMac reject byte arrays of the wrong length with a RangeError", () => {
  for (const length of [0, 3, 5, 6, 15, 17]) {
    assertThrows(() => formatIp(new Uint8Array(length)), RangeError);
  }
  for (const length of [0, 5, 7, 8]) {
    assertThrows(() => formatMac(new Uint8Array(length)), RangeError);
  }
});

Deno.test("parseCidr reads prefixes and treats a bare address as a host route", () => {
  assertEquals(parseCidr("192.0.2.1/24"), {
    address: new Uint8Array([192, 0, 2, 1]),
    prefixLength: 24,
    family: 4,
  });
  assertEquals(parseCidr("192.0.2.1"), {
    address: new Uint8Array([192, 0, 2, 1]),
    prefixLength: 32,
    family: 4,
  });
  assertEquals(parseCidr("::/0"), {
    address: new Uint8Array(16),
    prefixLength: 0,
    family: 6,
  });
  const host = parseCidr("2001:db8::1");
  assertStrictEquals(host.prefixLength, 128);
  assertStrictEquals(host.family, 6);
  assertStrictEquals(formatIp(host.address), "2001:db8::1");
});

Deno.test("parseCidr rejects a prefix wider than the address with a RangeError naming it", () => {
  assertThrows(() => parseCidr("2001:db8::1/129"), {
    name: "RangeError",
    message: 'Invalid prefix length in "2001:db8::1/129": 129 is greater than 128',
  });
  assertThrows(() => parseCidr("192.0.2.1/33"), RangeError);
  assertThrows(() => parseCidr("192.0.2.1/99999999999"), RangeError);
  for (
    const text of [
      "192.0.2.1/",
      "192.0.2.1/a",
      "192.0.2.1/024",
      "192.0.2.1/-1",
      "/24",
      "192.0.2.1/24/1",
    ]
  ) {
    assertBadInput(() => parseCidr(text));
  }
});

Deno.test("parseCidr round-trips every valid prefix length of both families", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.tuple(ipv4Bytes, fc.integer({ min: 0, max: 32 })),
        fc.tuple(ipv6Bytes, fc.integer({ min: 0, max: 128 })),
      ),
      ([bytes, prefixLength]) => {
        const parsed = parseCidr(`${formatIp(bytes)}/${prefixLength}`);
        assertEquals(parsed, {
          address: new Uint8Array(bytes),
          prefixLength,
          family: bytes.length === 4 ? 4 : 6,
        });
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("formatMac then parseMac gives back the same bytes, with colons or hyphens in any case", () => {
  fc.assert(
    fc.property(macBytes, (bytes) => {
      const text = formatMac(bytes);
      assertEquals(parseMac(text), new Uint8Array(bytes));
      assertEquals(parseMac(text.toUpperCase().replaceAll(":", "-")), new Uint8Array(bytes));
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("formatMac writes lowercase two-digit groups separated by colons", () => {
  assertStrictEquals(
    formatMac(new Uint8Array([0x02, 0x00, 0x5e, 0x10, 0xab, 0x0f])),
    "02:00:5e:10:ab:0f",
  );
  assertEquals(parseMac("AA-BB-CC-DD-EE-FF"), new Uint8Array([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]));
});

Deno.test("parseMac rejects malformed text, naming the bad group", () => {
  assertThrows(() => parseMac("aa:bb:cc:dd:ee:gg"), {
    name: "TypeError",
    message: /"gg"/,
  });
  for (
    const text of [
      "",
      "aa:bb:cc:dd:ee",
      "aa:bb:cc:dd:ee:ff:00",
      "aa:bb-cc:dd:ee:ff",
      "a:bb:cc:dd:ee:ff",
      "aaa:bb:cc:dd:ee:ff",
      "aabb.ccdd.eeff",
    ]
  ) {
    assertBadInput(() => parseMac(text));
  }
});
