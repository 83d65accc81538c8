import fc from "fast-check";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../assert.ts";
import {
  buildNeighborAdvertisement,
  buildNeighborSolicitation,
  buildRouterAdvertisement,
  buildRouterSolicitation,
  formatIp,
  formatMac,
  ipv6MulticastMac,
  type ParsedPacket,
  parseIp,
  parsePacket,
  transportChecksum,
} from "../../packet/mod.ts";
import { ipv6Bytes, macBytes } from "./arbitraries.ts";

const NUM_RUNS = 200;

const unicast = ipv6Bytes.filter((bytes) => bytes[0] !== 0xff && bytes.some((byte) => byte));
const linkLocal = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((low) => {
  const bytes = new Uint8Array(16);
  bytes[0] = 0xfe;
  bytes[1] = 0x80;
  bytes.set(low, 8);
  return bytes;
});
const optionalMac = fc.option(macBytes, { nil: undefined });

/** One neighbour discovery option as found in a message. */
interface NdOption {
  type: number;
  body: Uint8Array;
}

/** Walks the options after the fixed part of a message (RFC 4861 §4.6). */
function ndOptions(bytes: Uint8Array): NdOption[] {
  const options: NdOption[] = [];
  for (let at = 0; at < bytes.length;) {
    const length = bytes[at + 1] * 8;
    assert(length > 0 && at + length <= bytes.length, `option at ${at} has a bad length`);
    options.push({ type: bytes[at], body: bytes.subarray(at + 2, at + length) });
    at += length;
  }
  return options;
}

/** Parses a discovery message and checks what every one of them must have. */
function parseNd(packet: Uint8Array, type: number): ParsedPacket {
  const parsed = parsePacket(packet, "ip");
  assertStrictEquals(parsed.ipv6?.hopLimit, 255);
  assertStrictEquals(parsed.ipv6?.nextHeader, 58);
  assertStrictEquals(parsed.icmp?.type, type);
  assertStrictEquals(parsed.icmp?.code, 0);
  assert(parsed.icmp?.checksumValid);
  const checksum = transportChecksum({
    source: packet.subarray(8, 24),
    destination: packet.subarray(24, 40),
    protocol: 58,
    segment: packet.subarray(40),
  });
  assertStrictEquals(checksum, 0);
  return parsed;
}

function linkLayerOption(type: number, mac: Uint8Array | undefined): NdOption[] {
  return mac === undefined ? [] : [{ type, body: mac }];
}

Deno.test("a neighbor solicitation parses to its target, options and solicited-node destination", () => {
  fc.assert(
    fc.property(unicast, unicast, optionalMac, (source, target, sourceMac) => {
      const packet = buildNeighborSolicitation({ source, target, sourceMac });
      const parsed = parseNd(packet, 135);
      const group = new Uint8Array(16);
      group.set([0xff, 2], 0);
      group.set([1, 0xff, ...target.subarray(13)], 11);
      assertStrictEquals(parsed.ipv6!.source, formatIp(source));
      assertStrictEquals(parsed.ipv6!.destination, formatIp(group));
      assertEquals(parsed.payload.subarray(0, 16), target);
      assertEquals(ndOptions(parsed.payload.subarray(16)), linkLayerOption(1, sourceMac));
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("a duplicate address detection probe comes from :: without a link-layer address", () => {
  const packet = buildNeighborSolicitation({ source: "::", target: "2001:db8::1" });
  const parsed = parseNd(packet, 135);
  assertStrictEquals(parsed.ipv6!.source, "::");
  assertStrictEquals(parsed.ipv6!.destination, "ff02::1:ff00:1");
  assertStrictEquals(parsed.payload.length, 16);
});

Deno.test("a neighbor solicitation from :: refuses a source MAC or another destination", () => {
  assertThrows(
    () =>
      buildNeighborSolicitation({
        source: "::",
        target: "2001:db8::1",
        sourceMac: "02:00:00:00:00:01",
      }),
    RangeError,
  );
  assertThrows(
    () =>
      buildNeighborSolicitation({ source: "::", target: "2001:db8::1", destination: "ff02::1" }),
    RangeError,
  );
});

Deno.test("a neighbor solicitation can probe a neighbour by unicast", () => {
  const packet = buildNeighborSolicitation({
    source: "2001:db8::2",
    target: "2001:db8::1",
    destination: "2001:db8::1",
  });
  assertStrictEquals(parseNd(packet, 135).ipv6!.destination, "2001:db8::1");
});

Deno.test("neighbour discovery builders refuse multicast targets and sources and IPv4 addresses", () => {
  assertThrows(
    () => buildNeighborSolicitation({ source: "2001:db8::2", target: "ff02::1" }),
    RangeError,
  );
  assertThrows(
    () => buildNeighborSolicitation({ source: "ff02::2", target: "2001:db8::1" }),
    RangeError,
  );
  assertThrows(
    () => buildNeighborSolicitation({ source: "192.0.2.1", target: "2001:db8::1" }),
    TypeError,
  );
  assertThrows(
    () =>
      buildNeighborAdvertisement({
        source: "::",
        destination: "ff02::1",
        target: "2001:db8::1",
        targetMac: "02:00:00:00:00:01",
      }),
    RangeError,
  );
  assertThrows(
    () =>
      // @ts-expect-error: targetMac is required
      buildNeighborAdvertisement({ source: "2001:db8::1", destination: "ff02::1", target: "::1" }),
    TypeError,
  );
  assertThrows(() => buildRouterSolicitation({ source: "ff02::1" }), RangeError);
});

Deno.test("a neighbor advertisement parses to its flags, target and target link-layer option", () => {
  fc.assert(
    fc.property(
      unicast,
      unicast,
      unicast,
      macBytes,
      fc.boolean(),
      fc.option(fc.boolean(), { nil: undefined }),
      fc.boolean(),
      (source, destination, target, targetMac, solicited, override, router) => {
        const packet = buildNeighborAdvertisement({
          source,
          destination,
          target,
          targetMac,
          solicited,
          override,
          router,
        });
        const parsed = parseNd(packet, 136);
        assertStrictEquals(parsed.ipv6!.destination, formatIp(destination));
        const flags = packet[40 + 4];
        assertEquals(
          { router: !!(flags & 0x80), solicited: !!(flags & 0x40), override: !!(flags & 0x20) },
          { router, solicited, override: override ?? true },
        );
        assertStrictEquals(flags & 0x1f, 0);
        assertEquals(parsed.payload.subarray(0, 16), target);
        assertEquals(ndOptions(parsed.payload.subarray(16)), [{ type: 2, body: targetMac }]);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("a multicast neighbor advertisement cannot be solicited", () => {
  const options = {
    source: "2001:db8::1",
    destination: "ff02::1",
    target: "2001:db8::1",
    targetMac: "02:00:00:00:00:01",
  };
  assertThrows(() => buildNeighborAdvertisement({ ...options, solicited: true }), RangeError);
  const packet = buildNeighborAdvertisement(options);
  assertStrictEquals(packet[44], 0x20);
});

Deno.test("a router solicitation goes to all routers with an optional link-layer option", () => {
  fc.assert(
    fc.property(fc.oneof(unicast, linkLocal), optionalMac, (source, sourceMac) => {
      const parsed = parseNd(buildRouterSolicitation({ source, sourceMac }), 133);
      assertStrictEquals(parsed.ipv6!.destination, "ff02::2");
      assertEquals(ndOptions(parsed.payload), linkLayerOption(1, sourceMac));
    }),
    { numRuns: NUM_RUNS },
  );
  const unspecified = parseNd(buildRouterSolicitation({ source: "::" }), 133);
  assertStrictEquals(unspecified.payload.length, 0);
  assertThrows(
    () => buildRouterSolicitation({ source: "::", sourceMac: "02:00:00:00:00:01" }),
    RangeError,
  );
});

const prefixArbitrary = fc.record({
  address: ipv6Bytes,
  length: fc.integer({ min: 0, max: 128 }),
  onLink: fc.option(fc.boolean(), { nil: undefined }),
  autonomous: fc.option(fc.boolean(), { nil: undefined }),
  lifetimes: fc.option(
    fc.tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff })).map(([a, b]) =>
      [Math.max(a, b), Math.min(a, b)] as const
    ),
    { nil: undefined },
  ),
});

Deno.test("a router advertisement parses to its fields, MTU and prefix options", () => {
  fc.assert(
    fc.property(
      linkLocal,
      optionalMac,
      fc.option(fc.integer({ min: 1280, max: 0xffffffff }), { nil: undefined }),
      fc.array(prefixArbitrary, { maxLength: 4 }),
      fc.record({
        routerLifetime: fc.option(fc.nat({ max: 0xffff }), { nil: undefined }),
        curHopLimit: fc.option(fc.nat({ max: 255 }), { nil: undefined }),
        managed: fc.option(fc.boolean(), { nil: undefined }),
        other: fc.option(fc.boolean(), { nil: undefined }),
        reachableTime: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }),
        retransTimer: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }),
      }),
      (source, sourceMac, mtu, prefixes, fields) => {
        const packet = buildRouterAdvertisement({
          source,
          sourceMac,
          mtu,
          prefixes: prefixes.map((p) => ({
            prefix: `${formatIp(p.address)}/${p.length}`,
            onLink: p.onLink,
            autonomous: p.autonomous,
            validLifetime: p.lifetimes?.[0],
            preferredLifetime: p.lifetimes?.[1],
          })),
          ...fields,
        });
        const parsed = parseNd(packet, 134);
        assertStrictEquals(parsed.ipv6!.destination, "ff02::1");
        const view = new DataView(packet.buffer, 40);
        assertEquals(
          {
            curHopLimit: view.getUint8(4),
            managed: !!(view.getUint8(5) & 0x80),
            other: !!(view.getUint8(5) & 0x40),
            routerLifetime: view.getUint16(6),
            reachableTime: view.getUint32(8),
            retransTimer: view.getUint32(12),
          },
          {
            curHopLimit: fields.curHopLimit ?? 64,
            managed: fields.managed ?? false,
            other: fields.other ?? false,
            routerLifetime: fields.routerLifetime ?? 1800,
            reachableTime: fields.reachableTime ?? 0,
            retransTimer: fields.retransTimer ?? 0,
          },
        );
        const expected: NdOption[] = [...linkLayerOption(1, sourceMac)];
        if (mtu !== undefined) {
          const body = new Uint8Array(6);
          new DataView(body.buffer).setUint32(2, mtu);
          expected.push({ type: 5, body });
        }
        for (const p of prefixes) {
          const body = new Uint8Array(30);
          const fill = new DataView(body.buffer);
          const valid = p.lifetimes?.[0] ?? 2592000;
          body[0] = p.length;
          body[1] = (p.onLink ?? true ? 0x80 : 0) | (p.autonomous ?? true ? 0x40 : 0);
          fill.setUint32(2, valid);
          fill.setUint32(6, p.lifetimes?.[1] ?? Math.min(604800, valid));
          for (let bit = 0; bit < p.length; bit++) {
            body[14 + (bit >> 3)] |= p.address[bit >> 3] & (0x80 >> (bit & 7));
          }
          expected.push({ type: 3, body });
        }
        assertEquals(ndOptions(parsed.payload.subarray(8)), expected);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("a router advertisement refuses a source that is not link-local", () => {
  assertThrows(() => buildRouterAdvertisement({ source: "2001:db8::1" }), RangeError);
  assertThrows(() => buildRouterAdvertisement({ source: "fec0::1" }), RangeError);
  parseNd(buildRouterAdvertisement({ source: "febf::1" }), 134);
});

Deno.test("a router advertisement refuses bad prefixes, lifetimes and MTUs", () => {
  const source = "fe80::1";
  assertThrows(() => buildRouterAdvertisement({ source, mtu: 1279 }), RangeError);
  assertThrows(
    () => buildRouterAdvertisement({ source, prefixes: [{ prefix: "192.0.2.0/24" }] }),
    TypeError,
  );
  assertThrows(
    () =>
      buildRouterAdvertisement({
        source,
        prefixes: [{ prefix: "2001:db8::/64", validLifetime: 10, preferredLifetime: 11 }],
      }),
    RangeError,
  );
  assertThrows(() => buildRouterAdvertisement({ source, routerLifetime: 65536 }), RangeError);
  // A short valid lifetime shortens the default preferred one with it.
  const packet = buildRouterAdvertisement({
    source,
    prefixes: [{ prefix: "2001:db8::/64", validLifetime: 60 }],
  });
  assertEquals([...packet.subarray(40 + 16 + 4, 40 + 16 + 12)], [0, 0, 0, 60, 0, 0, 0, 60]);
});

Deno.test("ipv6MulticastMac maps the last 4 bytes behind 33:33 and refuses unicast", () => {
  assertStrictEquals(formatMac(ipv6MulticastMac("ff02::1:ff12:3456")), "33:33:ff:12:34:56");
  assertStrictEquals(formatMac(ipv6MulticastMac(parseIp("ff02::2"))), "33:33:00:00:00:02");
  assertThrows(() => ipv6MulticastMac("2001:db8::1"), RangeError);
  assertThrows(() => ipv6MulticastMac("192.0.2.1"), TypeError);
});
