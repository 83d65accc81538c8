/**
 * Fuzzes the packet toolkit's readers with arbitrary bytes: `parsePacket`
 * (valid packets, mangled ones, noise, non-packets) and `readPcap` (valid
 * files, mangled ones and noise, from streams chunked anyhow and from
 * files, whose fd must be closed however the reading ends).
 */
import fc from "fast-check";
import { parsePacket, PcapWriter, readPcap } from "../../packet/mod.ts";
import { ethernetFrame, ipPacket } from "../packet/arbitraries.ts";
import { fuzz, junk, outcome } from "./fuzz.ts";

/** `bytes` as they are (how 0), with `patch` written at `at` (1), or cut at `at` (2). */
function overwriteOrCut(bytes: Uint8Array, how: number, at: number, patch: Uint8Array) {
  const offset = at % (bytes.length + 1);
  if (how === 2) return bytes.subarray(0, offset);
  const copy = bytes.slice();
  if (how === 1) copy.set(patch.subarray(0, copy.length - offset), offset);
  return copy;
}

/** Some bytes, then maybe cut short or with a run of bytes overwritten. */
function mangle(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.integer({ min: 1, max: 2 }), fc.nat(), fc.uint8Array({ maxLength: 4 }))
    .map(([bytes, how, at, patch]) => overwriteOrCut(bytes, how, at, patch));
}

const packetBytes = fc.oneof(
  ipPacket,
  ethernetFrame,
  mangle(ipPacket),
  mangle(ethernetFrame),
  fc.uint8Array({ maxLength: 200 }),
);

Deno.test("fuzz: parsePacket only succeeds or throws TypeError or RangeError", async () => {
  await fuzz(
    "parsePacket",
    fc.tuple(
      fc.oneof({ arbitrary: packetBytes, weight: 8 }, junk),
      fc.oneof({ arbitrary: fc.constantFrom("ip", "ethernet"), weight: 8 }, junk),
    ),
    async ([bytes, link]) => {
      await outcome(
        () => parsePacket(bytes as Uint8Array, link as "ip"),
        (error) => error instanceof TypeError || error instanceof RangeError,
      );
    },
  );
});

/** A pcap file of the given records, as PcapWriter writes it. */
async function pcapFile(records: Uint8Array[], link: "ip" | "ethernet"): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const writer = new PcapWriter(new WritableStream({ write: (chunk) => void chunks.push(chunk) }), {
    link,
  });
  for (const [i, record] of records.entries()) await writer.write(record, BigInt(i) * 1000n);
  await writer.close();
  return new Uint8Array(chunks.flatMap((chunk) => [...chunk]));
}

/** What a file is made of: records for PcapWriter to write, or noise. */
const pcapContent = fc.oneof(
  fc.tuple(fc.constant("ip" as const), fc.array(ipPacket, { maxLength: 4 })),
  fc.tuple(fc.constant("ethernet" as const), fc.array(ethernetFrame, { maxLength: 4 })),
  fc.uint8Array({ maxLength: 100 }),
);

/**
 * The documented failure of a malformed file: a plain `Error` that says
 * what is wrong and where, or a TypeError for a source that is not readable.
 */
function pcapError(error: unknown): boolean {
  if (error instanceof TypeError) return true;
  return error instanceof Error && error.constructor === Error &&
    /byte offset|^Empty pcap file/.test(error.message);
}

/** Splits `bytes` at `cuts` into a stream's chunks. */
function streamOf(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks = [0, ...points].map((start, i) => bytes.slice(start, points[i] ?? bytes.length));
  return ReadableStream.from(chunks.filter((chunk) => chunk.length > 0));
}

Deno.test("fuzz: readPcap reads any bytes to records or the documented Error, and closes a file", async () => {
  const path = await Deno.makeTempFile({ prefix: "tuntap-fuzz-", suffix: ".pcap" });
  try {
    await fuzz(
      "readPcap",
      fc.tuple(
        pcapContent,
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 4 }),
        fc.oneof({ arbitrary: fc.constantFrom("stream", "file"), weight: 8 }, junk),
        fc.array(fc.nat(), { maxLength: 6 }),
      ),
      async ([content, at, patch, how, cuts]) => {
        const file = content instanceof Uint8Array
          ? content
          : await pcapFile(content[1], content[0]);
        // A third of the files keep their bytes, a third get a few overwritten, a third are cut.
        const bytes = overwriteOrCut(file, at % 3, at, patch);
        let source: unknown = how;
        if (how === "stream") source = streamOf(bytes, cuts);
        if (how === "file") {
          await Deno.writeFile(path, bytes);
          // However the reading ends, readPcap closes the file: the fd check after the run says so.
          source = await Deno.open(path);
        }
        await outcome(async () => {
          let count = 0;
          for await (const _ of readPcap(source as ReadableStream<Uint8Array>)) count++;
          return count;
        }, pcapError);
      },
    );
  } finally {
    await Deno.remove(path);
  }
});
