import fc from "fast-check";
import { formatIp } from "../packet/mod.ts";
import {
  formatAddress,
  parseHost,
  SockaddrDecoder,
  type UdpAddress,
  writeSockaddr,
} from "../udp/socket_address.ts";
import { assertEquals, assertStrictEquals, assertThrows } from "./assert.ts";
import { ipv4Bytes, ipv6Bytes } from "./packet/arbitraries.ts";

const port = fc.integer({ min: 0, max: 65535 });

Deno.test("a sockaddr written for either socket family decodes to the address given", () => {
  const decoder = new SockaddrDecoder();
  const slots = new Uint8Array(28 * 3 + 5);
  fc.assert(
    fc.property(
      fc.oneof(ipv4Bytes, ipv6Bytes),
      port,
      fc.constantFrom<4 | 6>(4, 6),
      fc.integer({ min: 0, max: 2 }),
      (bytes, port, socketFamily, slot) => {
        const hostname = formatIp(bytes);
        const host = parseHost(hostname, "Hostname");
        if (host.family === 6 && socketFamily === 4) return;
        // Odd offsets: slots need no alignment.
        const offset = 5 + slot * 28;
        writeSockaddr(slots, offset, socketFamily, host, port);
        const into: UdpAddress = { hostname: "", port: -1 };
        const decoded = decoder.decode(slots, offset, into);
        assertStrictEquals(decoded, into);
        // An IPv4-mapped IPv6 address comes back as the IPv4 address it maps.
        const expected = host.family === 6 && /^::ffff:\d+\.\d+\.\d+\.\d+$/.test(hostname)
          ? hostname.slice(7)
          : hostname;
        assertEquals(decoded, { hostname: expected, port });
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("an IPv4 address on an IPv6 socket is written IPv4-mapped", () => {
  const slot = new Uint8Array(28);
  writeSockaddr(slot, 0, 6, parseHost("192.0.2.7", "Hostname"), 4789);
  assertEquals(
    [...slot.subarray(0, 24)],
    [10, 0, 0x12, 0xb5, 0, 0, 0, 0, ...Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 7],
  );
});

Deno.test("the decoder keeps the text of the last address and notices a change", () => {
  const decoder = new SockaddrDecoder();
  const slot = new Uint8Array(28);
  writeSockaddr(slot, 0, 4, parseHost("192.0.2.1", "Hostname"), 1);
  const first = decoder.decode(slot, 0).hostname;
  writeSockaddr(slot, 0, 4, parseHost("192.0.2.2", "Hostname"), 1);
  assertStrictEquals(decoder.decode(slot, 0).hostname, "192.0.2.2");
  writeSockaddr(slot, 0, 6, parseHost("2001:db8::1", "Hostname"), 1);
  assertStrictEquals(decoder.decode(slot, 0).hostname, "2001:db8::1");
  assertStrictEquals(first, "192.0.2.1");
});

Deno.test("hostnames are IP literals: names and zone ids are refused", () => {
  assertThrows(() => parseHost("example.com", "Hostname"), TypeError);
  assertThrows(() => parseHost("fe80::1%eth0", "Hostname"), TypeError);
  assertThrows(() => parseHost(7, "Hostname"), TypeError);
  assertThrows(() => parseHost("1.2.3.999", "Hostname"), RangeError);
  assertStrictEquals(formatAddress({ hostname: "2001:db8::1", port: 53 }), "[2001:db8::1]:53");
  assertStrictEquals(formatAddress({ hostname: "192.0.2.1", port: 53 }), "192.0.2.1:53");
});
