import fc from "fast-check";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../assert.ts";
import { buildIPv4, buildIPv6, buildUdp, parsePacket } from "../../packet/mod.ts";
import { ipv4Bytes, ipv6Bytes, payload } from "./arbitraries.ts";
import { exampleIPv4Header } from "./samples.ts";
import { formatIp } from "../../packet/mod.ts";

const NUM_RUNS = 200;
// An experimental protocol number (RFC 3692): the parser leaves it as payload.
const EXPERIMENTAL = 253;
const byte = fc.integer({ min: 0, max: 255 });

Deno.test("buildIPv4 then parsePacket gives back every header field and the payload", () => {
  fc.assert(
    fc.property(
      fc.record({
        source: ipv4Bytes,
        destination: ipv4Bytes,
        ttl: byte,
        identification: fc.integer({ min: 0, max: 0xffff }),
        dontFragment: fc.boolean(),
        moreFragments: fc.boolean(),
        fragmentOffset: fc.integer({ min: 0, max: 0x1fff }).map((units) => units * 8),
        tos: byte,
        options: fc.integer({ min: 0, max: 10 }).chain((words) =>
          fc.uint8Array({ minLength: 4 * words, maxLength: 4 * words })
        ),
        payload,
      }),
      (options) => {
        const packet = buildIPv4({ ...options, protocol: EXPERIMENTAL });
        const parsed = parsePacket(packet, "ip");
        const headerLength = 20 + options.options.length;
        assertEquals(parsed.ipv4, {
          offset: 0,
          source: formatIp(options.source),
          destination: formatIp(options.destination),
          protocol: EXPERIMENTAL,
          ttl: options.ttl,
          identification: options.identification,
          dontFragment: options.dontFragment,
          moreFragments: options.moreFragments,
          fragmentOffset: options.fragmentOffset,
          headerLength,
          totalLength: headerLength + options.payload.length,
          checksumValid: true,
        });
        assertStrictEquals(packet[1], options.tos);
        assertEquals(packet.subarray(20, headerLength), options.options);
        assertEquals(parsed.payload, options.payload);
        assertStrictEquals(parsed.payloadOffset, headerLength);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("buildIPv6 then parsePacket gives back every header field and the payload", () => {
  fc.assert(
    fc.property(
      fc.record({
        source: ipv6Bytes,
        destination: ipv6Bytes,
        hopLimit: byte,
        trafficClass: byte,
        flowLabel: fc.integer({ min: 0, max: 0xfffff }),
        payload,
      }),
      (options) => {
        const packet = buildIPv6({ ...options, nextHeader: EXPERIMENTAL });
        const parsed = parsePacket(packet, "ip");
        assertEquals(parsed.ipv6, {
          offset: 0,
          source: formatIp(options.source),
          destination: formatIp(options.destination),
          nextHeader: EXPERIMENTAL,
          hopLimit: options.hopLimit,
          payloadLength: options.payload.length,
          headerLength: 40,
          flowLabel: options.flowLabel,
          trafficClass: options.trafficClass,
        });
        assertEquals(parsed.payload, options.payload);
        assertStrictEquals(parsed.payloadOffset, 40);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("buildIPv4 writes the RFC 1071 example header byte for byte", () => {
  const packet = buildIPv4({
    source: "192.168.0.1",
    destination: "192.168.0.199",
    protocol: 17,
    payload: new Uint8Array(0x73 - 20),
  });
  assertEquals(
    packet.subarray(0, 20),
    exampleIPv4Header(),
  );
});

Deno.test("buildIPv4 round-trips the fragment fields of a middle fragment", () => {
  const packet = buildIPv4({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    protocol: 17,
    identification: 0xbeef,
    dontFragment: false,
    moreFragments: true,
    fragmentOffset: 65528,
    payload: new Uint8Array([1, 2, 3]),
  });
  // Flags 001 and offset 8191 units share bytes 6-7.
  assertEquals([...packet.subarray(4, 8)], [0xbe, 0xef, 0x3f, 0xff]);
  const { ipv4, udp, payload } = parsePacket(packet, "ip");
  assertStrictEquals(ipv4?.identification, 0xbeef);
  assertStrictEquals(ipv4?.dontFragment, false);
  assertStrictEquals(ipv4?.moreFragments, true);
  assertStrictEquals(ipv4?.fragmentOffset, 65528);
  // A later fragment carries data, not a UDP header.
  assertStrictEquals(udp, undefined);
  assertEquals([...payload], [1, 2, 3]);
});

Deno.test("buildIPv4 and buildIPv6 carry a transport segment whose checksum stays valid", () => {
  const options = { sourcePort: 1, destinationPort: 2, payload: new Uint8Array([9, 8, 7]) };
  const v4 = buildUdp({ source: "192.0.2.1", destination: "192.0.2.2", ...options });
  // A router-alert option (RFC 2113) does not enter the pseudo-header.
  const withOptions = buildIPv4({
    source: "192.0.2.1",
    destination: "192.0.2.2",
    protocol: 17,
    options: Uint8Array.from([0x94, 0x04, 0, 0]),
    payload: v4.subarray(20),
  });
  const parsed4 = parsePacket(withOptions, "ip");
  assertStrictEquals(parsed4.udp?.checksumValid, true);
  assertStrictEquals(parsed4.udp?.offset, 24);
  const v6 = buildUdp({ source: "2001:db8::1", destination: "2001:db8::2", ...options });
  const rebuilt = buildIPv6({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    nextHeader: 17,
    payload: v6.subarray(40),
  });
  assertEquals(rebuilt, v6);
});

Deno.test("buildIPv4 and buildIPv6 copy the payload", () => {
  const data = new Uint8Array([1, 2, 3]);
  const packet = buildIPv6({
    source: "2001:db8::1",
    destination: "2001:db8::2",
    nextHeader: 59,
    payload: data,
  });
  data[0] = 99;
  assertEquals([...packet.subarray(40)], [1, 2, 3]);
});

Deno.test("buildIPv4 and buildIPv6 reject bad numbers and the wrong family with RangeError", () => {
  const v4 = { source: "192.0.2.1", destination: "192.0.2.2", protocol: 17 };
  const v6 = { source: "2001:db8::1", destination: "2001:db8::2", nextHeader: 17 };
  for (
    const bad of [
      { protocol: 256 },
      { protocol: -1 },
      { ttl: 256 },
      { ttl: 1.5 },
      { identification: 0x10000 },
      { fragmentOffset: 12 },
      { fragmentOffset: 65536 },
      { tos: 256 },
      { options: new Uint8Array(3) },
      { options: new Uint8Array(44) },
      { payload: new Uint8Array(0xffff - 19) },
      { source: "2001:db8::1" },
      { source: "2001:db8::1", destination: "2001:db8::2" },
    ]
  ) {
    assertThrows(() => buildIPv4({ ...v4, ...bad }), RangeError, JSON.stringify(bad));
  }
  for (
    const bad of [
      { nextHeader: 256 },
      { hopLimit: -1 },
      { trafficClass: 256 },
      { flowLabel: 0x100000 },
      { payload: new Uint8Array(0x10000) },
      { destination: "192.0.2.2" },
      { source: "192.0.2.1", destination: "192.0.2.2" },
    ]
  ) {
    assertThrows(() => buildIPv6({ ...v6, ...bad }), RangeError, JSON.stringify(bad));
  }
  assertThrows(() => buildIPv4({ ...v4, dontFragment: 1 as unknown as boolean }), TypeError);
  assertThrows(
    () => buildIPv4({ ...v4, options: [0, 0, 0, 0] as unknown as Uint8Array }),
    TypeError,
  );
  assertThrows(() => buildIPv6(null as unknown as typeof v6), TypeError);
  // The largest payloads that fit are accepted.
  assert(buildIPv4({ ...v4, protocol: 59, payload: new Uint8Array(0xffff - 20) }));
  assert(buildIPv6({ ...v6, nextHeader: 59, payload: new Uint8Array(0xffff) }));
});
