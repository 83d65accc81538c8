/**
 * `tuntap capture`: be the userspace end of a device and print (and
 * record) every packet the kernel sends into it.
 *
 * @module
 */
import { type TunDeviceInfo, tunDeviceInfo, TunError, TunInterface } from "../mod.ts";
import { PcapWriter, summarize } from "../packet/mod.ts";
import { parseCount } from "./create.ts";
import { parseArgs } from "./parse_args.ts";
import { CommandError, UsageError } from "./usage_error.ts";

/** Usage text of `tuntap capture`. */
export const captureUsage =
  `Usage: tuntap capture NAME [-w FILE.pcap] [-c COUNT] [--timeout SECONDS]
                       [--mode tun|tap]

Attaches device NAME and prints one line per packet the kernel sends into it,
as it arrives: a timestamp (HH:MM:SS.ffffff, local time) and a tcpdump-like
summary. A TUN device is the interface's userspace end, not a tap on it:
while capture holds it, packets routed into it come to capture and go no
further.

If NAME exists (e.g. made by \`tuntap create NAME --address … --up\`), it is
attached with its own settings (mode, packet info, vnet header, multi-queue)
and left as it was afterwards; those headers are stripped before printing
and recording. A single-queue device another program holds cannot be
attached (EBUSY); a multi-queue device gets one more queue, which sees only
the flows the kernel steers to it. If NAME does not exist, a device of
--mode (tun, the default) is created for the capture and goes away with it;
it has no address, so give it one with \`ip\` or use \`tuntap create\` first.

Options:
  -w, --write FILE     also write the packets to FILE, a pcap file (raw IP for
                       TUN, Ethernet for TAP) that tcpdump and Wireshark read;
                       needs --allow-write
  -c, --count COUNT    stop after COUNT packets
  --timeout SECONDS    stop after SECONDS (decimals allowed)
  --mode tun|tap       the kind of device to create when NAME does not exist

Ctrl-C (SIGINT) or SIGTERM stop it cleanly: the device is closed, the pcap
file is complete, and the exit status is 0. The count goes to stderr.`;

// struct tun_pi and struct virtio_net_hdr, which capture strips.
const PI_SIZE = 4;
const VNET_HDR_SIZE = 10;

/** Runs `tuntap capture`. */
export async function capture(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      write: { type: "string", short: "w" },
      count: { type: "string", short: "c" },
      timeout: { type: "string" },
      mode: { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("capture takes one NAME", "capture");
  const [name] = positionals;
  const count = values.count === undefined
    ? undefined
    : parseCount(values.count, "--count", "capture");
  if (count === 0) throw new UsageError("--count must be at least 1", "capture");
  const timeout = values.timeout === undefined ? undefined : parseSeconds(values.timeout);
  const mode = values.mode;
  if (mode !== undefined && mode !== "tun" && mode !== "tap") {
    throw new UsageError(`--mode must be tun or tap, not "${mode}"`, "capture");
  }

  const existing = findDevice(name);
  if (existing && mode !== undefined && existing.mode !== mode) {
    throw new UsageError(`${name} is a ${existing.mode} device, not ${mode}`, "capture");
  }
  // The file first: a path that cannot be written fails before any device is touched.
  const file = values.write === undefined ? undefined : await createFile(values.write);
  let tun: TunInterface;
  try {
    tun = TunInterface.open({
      name,
      mode: existing?.mode ?? mode,
      packetInfo: existing?.pi,
      vnetHeader: existing?.vnetHdr,
      multiQueue: existing?.multiQueue,
    });
  } catch (error) {
    file?.close();
    throw error;
  }
  const link = tun.mode === "tap" ? "ethernet" : "ip";
  const writer = file && new PcapWriter(file, { link });
  const skip = (tun.packetInfo ? PI_SIZE : 0) + (tun.vnetHeader ? VNET_HDR_SIZE : 0);

  // Closing the device ends the loop below at once, however it is stopped.
  const stop = () => tun.close();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  const timer = timeout === undefined ? undefined : setTimeout(stop, timeout * 1000);
  let captured = 0;
  try {
    console.error(
      `capturing on ${tun.name} (${tun.mode}${existing ? "" : ", created for this capture"})` +
        `${values.write === undefined ? "" : ` to ${values.write}`}; Ctrl-C stops`,
    );
    for await (const packet of tun) {
      await record(packet.subarray(skip));
      if (++captured === count) break;
    }
  } finally {
    tun.close();
    clearTimeout(timer);
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    await writer?.close();
  }
  console.error(`${captured} packet${captured === 1 ? "" : "s"} captured`);
  return 0;

  async function record(packet: Uint8Array): Promise<void> {
    const now = nowNs();
    console.log(`${clock(now)} ${summarize(packet, link)}`);
    await writer?.write(packet, now);
  }
}

function findDevice(name: string): TunDeviceInfo | undefined {
  try {
    return tunDeviceInfo(name);
  } catch (error) {
    if (error instanceof TunError && error.code === "ENODEV") return undefined;
    throw error;
  }
}

async function createFile(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { write: true, create: true, truncate: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new CommandError(`writing ${path} needs --allow-write (or --allow-write=${path})`);
    }
    throw new CommandError(`cannot write ${path}: ${(error as Error).message}`);
  }
}

function parseSeconds(text: string): number {
  const seconds = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(seconds > 0) || seconds > 2_147_483) {
    throw new UsageError(
      `--timeout takes seconds, more than 0 and at most 2147483, not "${text}"`,
      "capture",
    );
  }
  return seconds;
}

/** Now, in nanoseconds since the epoch, to the microsecond. */
function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/** `HH:MM:SS.ffffff` in local time, as tcpdump prints it. */
function clock(ns: bigint): string {
  const date = new Date(Number(ns / 1_000_000n));
  const two = (n: number) => String(n).padStart(2, "0");
  const micros = String((ns / 1000n) % 1_000_000n).padStart(6, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${micros}`;
}
