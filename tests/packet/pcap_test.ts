import fc from "fast-check";
import { assertEquals, assertRejects, assertStrictEquals, assertThrows } from "../assert.ts";
import { buildUdp, type PcapRecord, PcapWriter, readPcap } from "../../packet/mod.ts";

/** A WritableStream that keeps every chunk it is given. */
function collector(): {
  stream: WritableStream<Uint8Array>;
  bytes(): Uint8Array;
  closed(): boolean;
} {
  const chunks: Uint8Array[] = [];
  let closed = false;
  return {
    stream: new WritableStream({
      write(chunk) {
        chunks.push(chunk);
      },
      close() {
        closed = true;
      },
    }),
    bytes: () => concat(...chunks),
    closed: () => closed,
  };
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

/** A ReadableStream delivering `bytes` cut at the given offsets. */
function streamOf(bytes: Uint8Array, cuts: number[] = []): ReadableStream<Uint8Array> {
  const points = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])]
    .sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  for (let i = 1; i < points.length; i++) {
    chunks.push(bytes.slice(points[i - 1], points[i]));
  }
  return ReadableStream.from(chunks);
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<PcapRecord[]> {
  const records: PcapRecord[] = [];
  for await (const record of readPcap(stream)) records.push(record);
  return records;
}

/** A classic pcap file written by hand, in any of the four variants. */
function handmadeFile(
  options: { littleEndian: boolean; nanosecond: boolean; linkType: number },
  records: { seconds: number; fraction: number; bytes: number[] }[],
): Uint8Array {
  const { littleEndian: le, nanosecond, linkType } = options;
  const header = new DataView(new ArrayBuffer(24));
  header.setUint32(0, nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, le);
  header.setUint16(4, 2, le);
  header.setUint16(6, 4, le);
  header.setUint32(16, 65535, le);
  header.setUint32(20, linkType, le);
  const parts = [new Uint8Array(header.buffer)];
  for (const { seconds, fraction, bytes } of records) {
    const record = new DataView(new ArrayBuffer(16));
    record.setUint32(0, seconds, le);
    record.setUint32(4, fraction, le);
    record.setUint32(8, bytes.length, le);
    record.setUint32(12, bytes.length, le);
    parts.push(new Uint8Array(record.buffer), new Uint8Array(bytes));
  }
  return concat(...parts);
}

const packet = buildUdp({
  source: "192.0.2.1",
  destination: "192.0.2.2",
  sourcePort: 1,
  destinationPort: 2,
  payload: new Uint8Array([1, 2, 3]),
});

Deno.test("PcapWriter writes the documented file header: nanosecond magic, LE, 2.4, snaplen 262144, RAW", async () => {
  const sink = collector();
  await new PcapWriter(sink.stream, { link: "ip" }).close();
  assertEquals([...sink.bytes()], [
    0x4d,
    0x3c,
    0xb2,
    0xa1, // magic 0xa1b23c4d, little-endian
    2,
    0,
    4,
    0, // version 2.4
    0,
    0,
    0,
    0, // time zone
    0,
    0,
    0,
    0, // timestamp accuracy
    0x00,
    0x00,
    0x04,
    0x00, // snapshot length 262144
    101,
    0,
    0,
    0, // LINKTYPE_RAW
  ]);
  assertStrictEquals(sink.closed(), true);
});

Deno.test("PcapWriter records Ethernet links as link type 1 and lays out records as seconds, nanoseconds, lengths, data", async () => {
  const sink = collector();
  const writer = new PcapWriter(sink.stream, { link: "ethernet" });
  await writer.write(new Uint8Array([0xaa, 0xbb]), 1_700_000_000_123_456_789n);
  await writer.close();
  const bytes = sink.bytes();
  assertEquals([...bytes.subarray(20, 24)], [1, 0, 0, 0]);
  const record = new DataView(bytes.buffer, 24);
  assertStrictEquals(record.getUint32(0, true), 1_700_000_000);
  assertStrictEquals(record.getUint32(4, true), 123_456_789);
  assertStrictEquals(record.getUint32(8, true), 2);
  assertStrictEquals(record.getUint32(12, true), 2);
  assertEquals([...bytes.subarray(40)], [0xaa, 0xbb]);
  assertStrictEquals(bytes.length, 42);
});

Deno.test("pcap written to a file reads back with exact nanosecond timestamps, for both link types", async () => {
  for (const link of ["ip", "ethernet"] as const) {
    const path = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      const file = await Deno.open(path, { write: true, truncate: true });
      const writer = new PcapWriter(file, { link });
      const times = [0n, 1n, 999_999_999n, 1_700_000_000_000_000_001n, 4_294_967_295_999_999_999n];
      for (const [i, time] of times.entries()) {
        await writer.write(packet.subarray(0, 20 + i), time);
      }
      await writer.close(); // closes the file too, or the test leaks it
      const reader = readPcap(await Deno.open(path));
      const header = await reader.header();
      assertEquals(header, {
        linkType: link === "ip" ? 101 : 1,
        link,
        snapLength: 262144,
        nanosecond: true,
        littleEndian: true,
        versionMajor: 2,
        versionMinor: 4,
      });
      const records: PcapRecord[] = [];
      for await (const record of reader) records.push(record);
      assertEquals(
        records,
        times.map((timestampNs, i) => ({
          timestampNs,
          bytes: packet.slice(0, 20 + i),
          originalLength: 20 + i,
        })),
      );
    } finally {
      await Deno.remove(path);
    }
  }
});

Deno.test("PcapWriter defaults the timestamp to the current time", async () => {
  const sink = collector();
  const writer = new PcapWriter(sink.stream, { link: "ip" });
  const before = BigInt(Date.now() - 1) * 1_000_000n;
  await writer.write(packet);
  const after = BigInt(Date.now() + 1) * 1_000_000n;
  await writer.close();
  const [record] = await readAll(streamOf(sink.bytes()));
  if (record.timestampNs < before || record.timestampNs > after) {
    throw new Error(`timestamp ${record.timestampNs} not within [${before}, ${after}]`);
  }
});

Deno.test("overlapping PcapWriter.write calls keep their call order and never interleave", async () => {
  const chunks: Uint8Array[] = [];
  const slow = new WritableStream<Uint8Array>({
    async write(chunk) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      chunks.push(chunk);
    },
  });
  const writer = new PcapWriter(slow, { link: "ip" });
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => writer.write(new Uint8Array(i + 1).fill(i), BigInt(i))),
  );
  await writer.close();
  const records = await readAll(streamOf(concat(...chunks)));
  assertEquals(
    records,
    Array.from(
      { length: 20 },
      (_, i) => ({
        timestampNs: BigInt(i),
        bytes: new Uint8Array(i + 1).fill(i),
        originalLength: i + 1,
      }),
    ),
  );
});

Deno.test("PcapWriter.close is idempotent and later writes reject", async () => {
  const sink = collector();
  const writer = new PcapWriter(sink.stream, { link: "ip" });
  await writer.write(packet, 5n);
  const first = writer.close();
  assertStrictEquals(writer.close(), first);
  await first;
  await assertRejects(() => writer.write(packet), { message: /closed/ });
  assertStrictEquals(sink.bytes().length, 24 + 16 + packet.length);
});

Deno.test("PcapWriter cuts packets longer than the snapshot length and keeps the original length", async () => {
  const sink = collector();
  const writer = new PcapWriter(sink.stream, { link: "ethernet" });
  const big = new Uint8Array(300_000).map((_, i) => i);
  await writer.write(big, 1n);
  await writer.close();
  const bytes = sink.bytes();
  const view = new DataView(bytes.buffer, 24);
  assertStrictEquals(view.getUint32(8, true), 262144);
  assertStrictEquals(view.getUint32(12, true), 300_000);
  const [record] = await readAll(streamOf(bytes));
  assertEquals(record.bytes, big.slice(0, 262144));
  assertStrictEquals(record.originalLength, 300_000);
});

Deno.test("PcapWriter records the originalLength of a packet already cut, so copied records keep it", async () => {
  for (const linuxSll2 of [false, true]) {
    for (const link of ["ip", "ethernet"] as const) {
      const sink = collector();
      const writer = new PcapWriter(sink.stream, { link, linuxSll2 });
      const frame = link === "ip" ? packet : new Uint8Array(14 + packet.length);
      await writer.write(frame.subarray(0, 24), 1n, { originalLength: frame.length + 100 });
      await writer.write(frame, 2n);
      await writer.close();
      const records = await readAll(streamOf(sink.bytes()));
      // In a LINUX_SLL2 file an Ethernet header is replaced by the SLL2 one.
      const skip = linuxSll2 && link === "ethernet" ? 14 : 0;
      assertEquals(
        records.map((record) => [record.bytes.length, record.originalLength]),
        [[24 - skip, frame.length + 100 - skip], [frame.length - skip, frame.length - skip]],
      );
      await assertRejects(
        () => new PcapWriter(collector().stream, { link }).write(frame, 1n, { originalLength: 3 }),
        RangeError,
      );
    }
  }
});

Deno.test("PcapWriter validates its arguments", async () => {
  assertThrows(() => new PcapWriter(collector().stream, { link: "tun" as "ip" }), TypeError);
  assertThrows(() => new PcapWriter({} as WritableStream<Uint8Array>, { link: "ip" }), TypeError);
  const writer = new PcapWriter(collector().stream, { link: "ip" });
  await assertRejects(() => writer.write([1] as unknown as Uint8Array), TypeError);
  await assertRejects(() => writer.write(packet, 5 as unknown as bigint), TypeError);
  await assertRejects(() => writer.write(packet, -1n), RangeError);
  await assertRejects(() => writer.write(packet, 2n ** 32n * 1_000_000_000n), RangeError);
  await writer.close();
});

Deno.test("readPcap reads the same records however the stream is chunked", async () => {
  const sink = collector();
  const writer = new PcapWriter(sink.stream, { link: "ip" });
  for (let i = 0; i < 5; i++) {
    await writer.write(packet.subarray(0, 10 * i), BigInt(i) * 1_000_000_007n);
  }
  await writer.close();
  const file = sink.bytes();
  const expected = await readAll(streamOf(file));
  assertStrictEquals(expected.length, 5);
  await fc.assert(
    fc.asyncProperty(fc.array(fc.nat(), { maxLength: 30 }), async (cuts) => {
      assertEquals(await readAll(streamOf(file, cuts)), expected);
    }),
    { numRuns: 200 },
  );
});

Deno.test("readPcap reads microsecond and nanosecond files in both byte orders", async () => {
  const records = [
    { seconds: 1_600_000_000, fraction: 999_999, bytes: [0x45, 1, 2] },
    { seconds: 7, fraction: 1, bytes: [] },
  ];
  for (const littleEndian of [true, false]) {
    for (const nanosecond of [true, false]) {
      const file = handmadeFile({ littleEndian, nanosecond, linkType: 1 }, records);
      const reader = readPcap(streamOf(file, [3, 25, 41]));
      const header = await reader.header();
      assertStrictEquals(header.littleEndian, littleEndian);
      assertStrictEquals(header.nanosecond, nanosecond);
      assertStrictEquals(header.link, "ethernet");
      assertStrictEquals(header.snapLength, 65535);
      const read: PcapRecord[] = [];
      for await (const record of reader) read.push(record);
      const scale = nanosecond ? 1n : 1000n;
      assertEquals(
        read,
        records.map(({ seconds, fraction, bytes }) => ({
          timestampNs: BigInt(seconds) * 1_000_000_000n + BigInt(fraction) * scale,
          bytes: new Uint8Array(bytes),
          originalLength: bytes.length,
        })),
      );
    }
  }
});

Deno.test("readPcap maps raw IPv4 and IPv6 link types to the ip link and leaves others undefined", async () => {
  for (
    const [linkType, link] of [[101, "ip"], [228, "ip"], [229, "ip"], [1, "ethernet"], [
      113,
      undefined,
    ]] as const
  ) {
    const reader = readPcap(
      streamOf(handmadeFile({ littleEndian: true, nanosecond: false, linkType }, [])),
    );
    const header = await reader.header();
    assertStrictEquals(header.linkType, linkType);
    assertStrictEquals(header.link, link);
    assertEquals(await Array.fromAsync(reader), []);
  }
});

Deno.test("readPcap rejects a file cut inside its header or a record, naming the byte offset", async () => {
  const file = handmadeFile({ littleEndian: true, nanosecond: true, linkType: 101 }, [
    { seconds: 1, fraction: 2, bytes: [1, 2, 3, 4] },
    { seconds: 3, fraction: 4, bytes: [5, 6] },
  ]);
  const boundaries = new Map([[24, 0], [44, 1], [file.length, 2]]);
  for (let length = 0; length <= file.length; length++) {
    const stream = streamOf(file.subarray(0, length), [length >> 1]);
    if (boundaries.has(length)) {
      assertStrictEquals((await readAll(stream)).length, boundaries.get(length));
    } else {
      await assertRejects(() => readAll(stream), (error: unknown) => {
        return error instanceof Error && /Truncated|Empty/.test(error.message) &&
          (length === 0 || /byte offset \d+/.test(error.message));
      }, `length ${length}`);
    }
  }
  await assertRejects(() => readAll(streamOf(file.subarray(0, 61))), {
    message: "Truncated pcap record at byte offset 44: need 2 bytes of packet data, have 1",
  });
  await assertRejects(() => readAll(streamOf(file.subarray(0, 30))), {
    message: "Truncated pcap record header at byte offset 24: need 16 bytes, have 6",
  });
});

Deno.test("readPcap rejects corrupt headers: bad magic, pcapng, wrong version, absurd captured length", async () => {
  const good = handmadeFile({ littleEndian: true, nanosecond: false, linkType: 1 }, [
    { seconds: 1, fraction: 0, bytes: [1, 2, 3] },
  ]);
  const badMagic = good.slice();
  badMagic[0] = 0;
  await assertRejects(() => readAll(streamOf(badMagic)), {
    message: /bad magic number 0x00c3b2a1 at byte offset 0/,
  });
  const pcapng = good.slice();
  pcapng.set([0x0a, 0x0d, 0x0d, 0x0a]);
  await assertRejects(() => readAll(streamOf(pcapng)), { message: /pcapng/ });
  const version = good.slice();
  version[4] = 3;
  await assertRejects(() => readAll(streamOf(version)), {
    message: /version 3\.4 at byte offset 4/,
  });
  const huge = good.slice();
  new DataView(huge.buffer).setUint32(16, 0xffffffff, true);
  new DataView(huge.buffer).setUint32(24 + 8, 300_000, true);
  await assertRejects(() => readAll(streamOf(huge)), { message: /exceeds the 256 KiB limit/ });
});

Deno.test("readPcap closes a file it stops reading early, and rejects a second iteration", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const writer = new PcapWriter(await Deno.open(path, { write: true }), { link: "ip" });
    await writer.write(packet, 1n);
    await writer.write(packet, 2n);
    await writer.close();
    const reader = readPcap(await Deno.open(path));
    for await (const record of reader) {
      assertStrictEquals(record.timestampNs, 1n);
      break; // must cancel the file's stream, or the test leaks the file
    }
    await assertRejects(async () => {
      for await (const _ of reader) { /* nothing */ }
    }, { message: /once/ });
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("readPcap rejects sources that are not readable", () => {
  assertThrows(() => readPcap({} as ReadableStream<Uint8Array>), TypeError);
});

Deno.test("PcapReader.cancel releases a file that was never iterated, and await using closes a writer", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    {
      await using writer = new PcapWriter(
        await Deno.open(path, { write: true }),
        { link: "ethernet" },
      );
      await writer.write(new Uint8Array(14), 3n);
    }
    const reader = readPcap(await Deno.open(path));
    assertStrictEquals((await reader.header()).link, "ethernet");
    await reader.cancel(); // the resource sanitizer fails the test otherwise
  } finally {
    await Deno.remove(path);
  }
});
