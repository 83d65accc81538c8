/**
 * `summarize` against the real `tcpdump -n -S -t`: packets are written to a
 * pcap file with PcapWriter and tcpdump's lines compared with ours.
 *
 * @module
 */

import fc from "fast-check";
import { assertEquals } from "../assert.ts";
import {
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  formatIp,
  type LinkType,
  PcapWriter,
  summarize,
} from "../../packet/mod.ts";
import { type AddressPair, addressPair, payload, tcpFlags, uint32 } from "./arbitraries.ts";
import { arpFrame, fragments, icmpError, neighborDiscovery } from "./summarize_arbitraries.ts";

const TCPDUMP_MISSING = await new Deno.Command("tcpdump", { args: ["--version"], stdout: "null" })
  .output().then(() => false, () => true);

/** tcpdump's lines for `packets`, written as one pcap file. */
async function tcpdump(packets: Uint8Array[], link: LinkType = "ip"): Promise<string[]> {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const writer = new PcapWriter(await Deno.open(path, { write: true }), { link });
    for (const packet of packets) await writer.write(packet, 0n);
    await writer.close();
    const { stdout, stderr, success } = await new Deno.Command("tcpdump", {
      args: ["-n", "-S", "-t", "-r", path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!success) throw new Error(`tcpdump failed: ${new TextDecoder().decode(stderr)}`);
    return new TextDecoder().decode(stdout).trimEnd().split("\n");
  } finally {
    await Deno.remove(path);
  }
}

function tcpdumpTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: TCPDUMP_MISSING,
    fn,
  });
  if (TCPDUMP_MISSING) console.warn(`skipped "${name}": tcpdump is not installed`);
}

const u32 = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const bytesOf = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => [...b]);
// The surplus of an overlong option, which tcpdump reads as more options:
// end-of-list and no-operation bytes keep them to kinds it prints plainly.
const surplus = (max: number) => fc.array(fc.constantFrom(0, 1), { maxLength: max });
// Kinds without an entry in tcpdump's option table, printed as unknown-N.
const TCPDUMP_KINDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 19, 20, 28, 29, 30, 34, 254];
const unknownKind = fc.integer({ min: 9, max: 253 }).filter((k) => !TCPDUMP_KINDS.includes(k));

/** One TCP option as raw bytes: well formed, or with a longer length than its kind needs. */
const tcpOption: fc.Arbitrary<number[]> = fc.oneof(
  fc.constantFrom<number[]>([1], [0]),
  fc.tuple(fc.integer({ min: 0, max: 0xffff }), surplus(2)).map(([mss, extra]) => [
    2,
    4 + extra.length,
    mss >> 8,
    mss & 0xff,
    ...extra,
  ]),
  fc.tuple(fc.integer({ min: 0, max: 255 }), surplus(1)).map((
    [shift, extra],
  ) => [3, 3 + extra.length, shift, ...extra]),
  surplus(1).map((extra) => [4, 2 + extra.length, ...extra]),
  fc.array(fc.tuple(uint32, uint32), { minLength: 1, maxLength: 3 }).map((blocks) => [
    5,
    2 + 8 * blocks.length,
    ...blocks.flatMap(([left, right]) => [...u32(left), ...u32(right)]),
  ]),
  bytesOf(1, 7).map((odd) => [5, 2 + odd.length, ...odd]),
  fc.tuple(uint32, uint32, surplus(2)).map(([value, echo, extra]) => [
    8,
    10 + extra.length,
    ...u32(value),
    ...u32(echo),
    ...extra,
  ]),
  fc.tuple(fc.constantFrom(6, 7, 11, 12, 13), uint32).map((
    [kind, value],
  ) => [kind, 6, ...u32(value)]),
  bytesOf(0, 17).map((cookie) => [34, 2 + cookie.length, ...cookie]),
  fc.tuple(fc.constantFrom(0xf989, 0x1234), bytesOf(0, 17)).map(([magic, data]) => [
    254,
    4 + data.length,
    magic >> 8,
    magic & 0xff,
    ...data,
  ]),
  fc.tuple(unknownKind, bytesOf(0, 6)).map(([kind, data]) => [kind, 2 + data.length, ...data]),
  // MD5 signature, SCPS capabilities, user timeout.
  fc.tuple(bytesOf(16, 16), surplus(1)).map(([digest, extra]) => [
    19,
    18 + extra.length,
    ...digest,
    ...extra,
  ]),
  fc.tuple(fc.constantFrom(20, 28), bytesOf(2, 2), surplus(1)).map(([kind, value, extra]) => [
    kind,
    4 + extra.length,
    ...value,
    ...extra,
  ]),
  // MPTCP: every subtype (8 and up unknown), at lengths valid for some of them.
  fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 2, max: 30 }), bytesOf(28, 28)).map(
    ([subtype, length, data]) => {
      const option = [30, length, ...data.slice(0, length - 2)];
      if (length > 2) option[2] = (subtype << 4) | (option[2] & 0x0f);
      return option;
    },
  ),
  // TCP-AO, with a MAC or too short for its key ids.
  bytesOf(0, 12).map((data) => [29, 2 + data.length, ...data]),
  // A fixed-size kind with a length too short for it.
  fc.tuple(fc.constantFrom(2, 3, 6, 8, 13, 19, 20, 28), fc.integer({ min: 2, max: 5 })).map((
    [kind, length],
  ) => [kind, length, ...new Array(length - 2).fill(0)]),
);

/** Options that fit in 40 bytes, maybe ending in one whose length cannot be followed. */
const tcpOptions: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.array(tcpOption, { maxLength: 6 }),
  fc.option(fc.tuple(unknownKind, fc.constantFrom(0, 1, 41)), { nil: undefined }),
).map(([options, bad]) => {
  const bytes = options.flat();
  if (bad) bytes.push(...bad);
  return Uint8Array.from(bytes.slice(0, 40));
});

/**
 * Addresses with IPv6 ones moved into 2001:db8::/32: tcpdump prints
 * IPv4-compatible addresses (::/96) the deprecated RFC 4291 way, which
 * RFC 5952 text (and so formatIp) does not, a difference of address.ts.
 */
const pair: fc.Arbitrary<AddressPair> = addressPair.map((pair) => {
  if (pair.family === 4) return pair;
  const [source, destination] = [pair.sourceBytes, pair.destinationBytes].map((bytes) => {
    const moved = bytes.slice();
    moved.set([0x20, 0x01, 0x0d, 0xb8]);
    return moved;
  });
  return {
    family: 6,
    sourceBytes: source,
    destinationBytes: destination,
    source: formatIp(source),
    destination: formatIp(destination),
  };
});

// Ports in a range tcpdump decodes no application protocol on.
const quietPort = fc.integer({ min: 50000, max: 50999 });

const packet: fc.Arbitrary<Uint8Array[]> = fc.oneof(
  fc.record({
    pair,
    sourcePort: quietPort,
    destinationPort: quietPort,
    sequence: uint32,
    acknowledgment: uint32,
    window: fc.integer({ min: 0, max: 0xffff }),
    flags: tcpFlags,
    options: fc.option(tcpOptions, { nil: undefined }),
    payload: fc.option(payload, { nil: undefined }),
  }).map(({ pair, ...fields }) => [
    buildTcp({ ...fields, source: pair.source, destination: pair.destination }),
  ]),
  fc.record({ pair, s: quietPort, d: quietPort, data: payload }).map((
    { pair, s, d, data },
  ) => [buildUdp({ ...pair, sourcePort: s, destinationPort: d, payload: data })]),
  fc.record({
    pair,
    id: fc.integer({ min: 0, max: 0xffff }),
    seq: fc.integer({ min: 0, max: 0xffff }),
    data: payload,
    reply: fc.boolean(),
  }).map(({ pair, id, seq, data, reply }) => [
    buildIcmpEcho({ ...pair, identifier: id, sequence: seq, payload: data, reply }),
  ]),
  fragments,
  icmpError.map((error) => [error]),
  neighborDiscovery.map((message) => [message]),
);

tcpdumpTest(
  "summarize agrees with tcpdump -n -S line for line on TCP, UDP, ICMP, fragments and neighbour discovery",
  async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(packet, { minLength: 1, maxLength: 30 }), async (groups) => {
        const packets = groups.flat();
        const lines = await tcpdump(packets);
        assertEquals(packets.map((p) => summarize(p, "ip")), lines);
      }),
      { numRuns: 15 },
    );
  },
);

tcpdumpTest("summarize agrees with tcpdump line for line on ARP messages", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(arpFrame, { minLength: 1, maxLength: 40 }), async (frames) => {
      const lines = await tcpdump(frames, "ethernet");
      assertEquals(frames.map((f) => summarize(f, "ethernet")), lines);
    }),
    { numRuns: 5 },
  );
});

tcpdumpTest("summarize matches tcpdump on Linux's SYN options and a zero-length ACK", async () => {
  const base = {
    source: "2001:db8::1",
    destination: "2001:db8::2",
    sourcePort: 50000,
    destinationPort: 50001,
  };
  const packets = [
    buildTcp({
      ...base,
      sequence: 1,
      flags: { syn: true },
      window: 64800,
      options: Uint8Array.of(2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7),
    }),
    buildTcp({ ...base, sequence: 2, acknowledgment: 9, flags: { ack: true } }),
  ];
  assertEquals(packets.map((p) => summarize(p, "ip")), await tcpdump(packets));
});
