/**
 * Fuzzes `write` and `writeBatch` of a quiet TUN and TAP device (and a
 * closed handle) with valid packets, mangled packets, odd sizes, other
 * views and non-packets. Valid packets carry documentation addresses only;
 * what the kernel accepts stays in the test's namespace.
 */
import fc from "fast-check";
import { buildEthernet, buildIcmpEcho, buildUdp, EtherType } from "../../mod.ts";
import { assert, assertStrictEquals } from "../assert.ts";
import { kernelTest, quietDevice } from "../kernel.ts";
import { fuzz, junk, outcome } from "./fuzz.ts";

const host = fc.integer({ min: 1, max: 254 });
const payload = fc.uint8Array({ maxLength: 64 });

/** A valid IPv4 or IPv6 packet from 198.51.100.0/24 (or 2001:db8:1::/64) to 192.0.2.0/24. */
const ipPacket = fc.oneof(
  fc.record({ from: host, to: host, port: fc.nat(0xffff), data: payload }).map((p) =>
    buildUdp({
      source: `198.51.100.${p.from}`,
      destination: `192.0.2.${p.to}`,
      sourcePort: p.port,
      destinationPort: 9,
      payload: p.data,
    })
  ),
  fc.record({ from: host, to: host, data: payload }).map((p) =>
    buildIcmpEcho({
      source: `2001:db8:1::${p.from.toString(16)}`,
      destination: `2001:db8::${p.to.toString(16)}`,
      identifier: p.from,
      sequence: p.to,
      payload: p.data,
    })
  ),
);

/** A valid packet, then maybe cut short, lengthened or with a byte changed. */
const mangled = fc.tuple(ipPacket, fc.nat(), fc.nat(255), fc.constantFrom("cut", "grow", "flip"))
  .map(([packet, at, value, how]) => {
    if (how === "cut") return packet.subarray(0, at % (packet.length + 1));
    if (how === "grow") return Uint8Array.from([...packet, ...new Uint8Array(at % 100)]);
    const copy = packet.slice();
    copy[at % copy.length] = value;
    return copy;
  });

/** Sizes around the limits: empty, tiny, the largest IP packet and past it. */
const oddSize = fc.constantFrom(0, 1, 19, 20, 39, 40, 65535, 65536, 65549, 70000, 200_000)
  .map((size) => {
    const bytes = new Uint8Array(size);
    if (size > 0) bytes[0] = 0x45;
    return bytes;
  });

/** The same bytes in other clothes: a view at an offset, other typed arrays, a buffer. */
const otherView = fc.tuple(ipPacket, fc.nat(7)).chain(([packet, offset]) =>
  fc.constantFrom(
    (() => {
      const buffer = new Uint8Array(packet.length + offset);
      buffer.set(packet, offset);
      return buffer.subarray(offset);
    })(),
    new Uint16Array(packet.buffer, 0, packet.length >> 1),
    new DataView(packet.buffer),
    packet.buffer,
    [...packet],
    new Uint8Array(new SharedArrayBuffer(packet.length)),
  )
);

const packetFor = (frame: boolean) => {
  const valid = frame
    ? fc.tuple(ipPacket, fc.constantFrom("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:09")).map((
      [packet, destination],
    ) =>
      buildEthernet({
        destination,
        source: "02:00:00:00:00:01",
        etherType: packet[0] >> 4 === 4 ? EtherType.IPV4 : EtherType.IPV6,
        payload: packet,
      })
    )
    : ipPacket;
  return fc.oneof(
    { arbitrary: valid, weight: 4 },
    { arbitrary: mangled, weight: 2 },
    { arbitrary: fc.uint8Array({ maxLength: 1600 }), weight: 2 },
    oddSize,
    otherView,
    junk,
  );
};

type Target = "tun" | "tap" | "closed";
const target = fc.constantFrom<Target>("tun", "tun", "tap", "tap", "closed");

kernelTest(
  "fuzz: write and writeBatch only succeed or throw TypeError, RangeError or TunError",
  async () => {
    const handles = {
      tun: quietDevice("fzw"),
      tap: quietDevice("fzwt", { mode: "tap" }),
      closed: quietDevice("fzwc"),
    };
    handles.closed.close();
    try {
      const input = (many: boolean) =>
        target.chain((which) => {
          const packet = packetFor(which === "tap");
          const batch = fc.oneof(
            { arbitrary: fc.array(packet, { maxLength: 8 }), weight: 6 },
            fc.array(packetFor(which === "tap"), { maxLength: 3 }).map((packets) => [
              ...packets,
              ...new Array(2),
            ]),
            junk,
          );
          return fc.tuple(fc.constant(which), many ? batch : packet);
        });

      await fuzz("write", input(false), async ([which, packet]) => {
        const { value, error } = await outcome(() => handles[which].write(packet as Uint8Array));
        if (which === "closed") assert(error !== undefined, "write succeeded on a closed handle");
        if (error === undefined) {
          assertStrictEquals(value, (packet as Uint8Array).length, "bytes written");
        }
      });
      await fuzz("writeBatch", input(true), async ([which, packets]) => {
        const { value, error } = await outcome(() =>
          handles[which].writeBatch(packets as Uint8Array[])
        );
        if (which === "closed") {
          assert(error !== undefined, "writeBatch succeeded on a closed handle");
        }
        if (error === undefined) {
          assertStrictEquals(value, (packets as Uint8Array[]).length, "packets written");
        }
      });
    } finally {
      handles.tun.close();
      handles.tap.close();
    }
  },
);
