/**
 * `tuntap capture`: print (and record) every packet that crosses a device,
 * observing it beside the program that owns it, or as its userspace end.
 *
 * @module
 */
import {
  tunDeviceDetails,
  type TunDeviceInfo,
  tunDeviceInfo,
  TunError,
  TunInterface,
} from "../mod.ts";
import { PcapWriter, summarize } from "../packet/mod.ts";
import { captureDevice } from "../src/capture_device.ts";
import { escapeControl } from "../src/validate.ts";
import { parseCount } from "./create.ts";
import { parseCommandLine } from "./parse_args.ts";
import { CommandError, UsageError } from "./usage_error.ts";

/** Usage text of `tuntap capture`. */
export const captureUsage =
  `Usage: tuntap capture NAME [-w FILE.pcap [--force]] [-c COUNT] [--timeout SECONDS]
                      [--netns NS]
       tuntap capture NAME --attach [--force] [--mode tun|tap] [-w FILE.pcap] [...]

Prints one line per packet that crosses device NAME, as it arrives: a
timestamp (HH:MM:SS.ffffff, local time), the direction as tcpdump -i any
prints it (Out: the kernel sent it into the device, to the program that owns
it; In: that program wrote it, or B, M for a broadcast or multicast frame it
wrote) and a tcpdump-like summary.

By default capture observes, as tcpdump does, through a packet socket bound
to the device: the program that owns it keeps every packet. This needs
CAP_NET_RAW (or root), and NAME must exist.

With --netns NS, NAME is a device of the network namespace NS (under
/run/netns, as ip netns add makes): the capture's socket (or, with --attach,
the device) is opened there, and the program stays in its own.

With --attach, capture instead becomes the device's userspace end: packets
routed into it come to capture and go no further, and are all Out. NAME is
attached with its own settings (mode, packet info, vnet header, multi-queue;
those headers are stripped before printing and recording) and left as it was
afterwards. A device another program holds is refused: attaching a
multi-queue device would add a queue and take the flows the kernel steers to
it from that program; --force attaches anyway (a single-queue device still
refuses with EBUSY). If NAME does not exist, a device of --mode (tun, the
default) is created for the capture and goes away with it; it has no
address, so give it one with \`ip\` or use \`tuntap create\` first.

Options:
  -w, --write FILE     also write the packets to FILE, a pcap file that
                       tcpdump and Wireshark read: LINUX_SLL2 (with the
                       direction) when observing, raw IP (TUN) or Ethernet
                       (TAP) with --attach; needs --allow-write. FILE is made
                       new, readable by its owner only (0600), once capture
                       has started, and holds a valid (empty) capture from
                       then on; an existing FILE, a symlink included, is
                       refused
  --force              replace an existing FILE (a symlink is replaced, its
                       target left alone); with --attach, also attach a
                       device another program holds
  -c, --count COUNT    stop after COUNT packets
  --timeout SECONDS    stop after SECONDS (decimals allowed)
  --attach             be the device's userspace end instead of observing
  --mode tun|tap       with --attach, the kind of device to create when NAME
                       does not exist

Ctrl-C (SIGINT), SIGTERM or SIGHUP stop it cleanly: the device is left (or
closed), the pcap file is complete, and the exit status is 0. The count goes
to stderr; a second signal while it stops ends it at once, count printed.`;

// struct tun_pi and struct virtio_net_hdr, which an attached capture strips.
const PI_SIZE = 4;
const VNET_HDR_SIZE = 10;

// What tcpdump prints for a LINUX_SLL2 packet type (sll_pkttype) other
// than outgoing: to this host, broadcast, multicast, to another host.
const PACKET_TYPES = ["In", "B", "M", "P"];

/** A packet to print and record, from either kind of capture. */
interface Seen {
  bytes: Uint8Array;
  timestampNs: bigint;
  direction: "in" | "out";
  packetType?: number;
}

/** Where packets come from: an observing socket or an attached device. */
interface Source {
  packets: AsyncIterable<Seen>;
  /** Ends the iteration at once. */
  close(): void;
  link: "ip" | "ethernet";
  description: string;
  interfaceIndex?: number;
}

/** Runs `tuntap capture`. */
export async function capture(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine("capture", args, {
    write: { type: "string", short: "w" },
    count: { type: "string", short: "c" },
    timeout: { type: "string" },
    mode: { type: "string" },
    attach: { type: "boolean", default: false },
    force: { type: "boolean", default: false },
    netns: { type: "string" },
  });
  if (positionals.length !== 1) throw new UsageError("capture takes one NAME", "capture");
  const netns = values.netns;
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

  const path = values.write;
  if (path === undefined && values.force && !values.attach) {
    throw new UsageError("--force applies to -w FILE and --attach only", "capture");
  }
  if (path !== undefined) requireWrite(path);

  const existing = findDevice(name, netns);
  if (existing && mode !== undefined && existing.mode !== mode) {
    throw new UsageError(`${name} is a ${existing.mode} device, not ${mode}`, "capture");
  }
  const source = values.attach
    ? attach(name, existing, mode, values.force, netns)
    : observe(name, existing, netns);
  // The file only once the capture has started: a failure before leaves none.
  let writer: PcapWriter | undefined;
  try {
    writer = path === undefined
      ? undefined
      : await createPcap(path, source.link, values.force, !values.attach);
  } catch (error) {
    source.close();
    throw error;
  }

  let captured = 0;
  let reported = false;
  const report = () => {
    if (reported) return;
    reported = true;
    console.error(`${captured} packet${captured === 1 ? "" : "s"} captured`);
  };
  // The first signal ends the capture, which ends the loop below at once.
  // The handlers stay until the count is printed, so a second Ctrl-C cannot
  // kill the process silently; it ends a slow stop with the count printed.
  let stopping = false;
  const stop = () => {
    if (stopping) {
      report();
      Deno.exit(0);
    }
    stopping = true;
    source.close();
  };
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  const timer = timeout === undefined ? undefined : setTimeout(stop, timeout * 1000);
  try {
    console.error(
      `capturing on ${escapeControl(name)} (${source.description})` +
        `${path === undefined ? "" : ` to ${escapeControl(path)}`}; Ctrl-C stops`,
    );
    for await (const packet of source.packets) {
      await record(packet);
      if (++captured === count) break;
    }
  } finally {
    stopping = true;
    source.close();
    clearTimeout(timer);
    await writer?.close();
    report();
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
  }
  return 0;

  async function record({ bytes, timestampNs, direction, packetType }: Seen): Promise<void> {
    const where = direction === "out" ? "Out" : PACKET_TYPES[packetType ?? 0] ?? "In";
    console.log(`${clock(timestampNs)} ${where.padEnd(3)} ${summarize(bytes, source.link)}`);
    await writer?.write(bytes, timestampNs, {
      direction,
      packetType,
      interfaceIndex: source.interfaceIndex,
    });
  }
}

/** Observes an existing device through a packet socket; needs CAP_NET_RAW. */
function observe(
  name: string,
  existing: TunDeviceInfo | undefined,
  netns: string | undefined,
): Source {
  if (!existing) {
    throw new CommandError(
      `there is no TUN/TAP device ${name} to observe; --attach creates one for the capture`,
    );
  }
  const { index } = tunDeviceDetails(name, { netns });
  const packets = captureDevice(name, { netns });
  return {
    packets,
    close: () => void packets.return?.(),
    link: existing.mode === "tap" ? "ethernet" : "ip",
    description: `${existing.mode}, observing`,
    interfaceIndex: index,
  };
}

/** Becomes the device's userspace end, as capture did before it could observe. */
function attach(
  name: string,
  existing: TunDeviceInfo | undefined,
  mode: "tun" | "tap" | undefined,
  force: boolean,
  netns: string | undefined,
): Source {
  if (existing && existing.queues > 0 && !force) {
    const what = existing.multiQueue
      ? "attaching would add a queue and take the flows the kernel steers to it"
      : "it cannot be attached while held (EBUSY)";
    throw new CommandError(
      `${name} is held by another program: ${what}; capture without --attach observes ` +
        `it and takes nothing${existing.multiQueue ? ", or add --force" : ""}`,
    );
  }
  const tun = TunInterface.open({
    name,
    netns,
    mode: existing?.mode ?? mode,
    packetInfo: existing?.pi,
    vnetHeader: existing?.vnetHdr,
    multiQueue: existing?.multiQueue,
  });
  const skip = (tun.packetInfo ? PI_SIZE : 0) + (tun.vnetHeader ? VNET_HDR_SIZE : 0);
  async function* packets(): AsyncGenerator<Seen> {
    for await (const packet of tun) {
      yield { bytes: packet.subarray(skip), timestampNs: nowNs(), direction: "out" };
    }
  }
  return {
    packets: packets(),
    close: () => tun.close(),
    link: tun.mode === "tap" ? "ethernet" : "ip",
    description: `${tun.mode}, attached${existing ? "" : ", created for this capture"}`,
  };
}

function findDevice(name: string, netns: string | undefined): TunDeviceInfo | undefined {
  try {
    return netns === undefined ? tunDeviceInfo(name) : tunDeviceDetails(name, { netns });
  } catch (error) {
    if (error instanceof TunError && error.code === "ENODEV") return undefined;
    throw error;
  }
}

/**
 * Refuses a FILE this process may not write before any device is touched
 * (`requestSync` prompts on a terminal unless --no-prompt was given).
 */
function requireWrite(path: string): void {
  if (Deno.permissions.requestSync({ name: "write", path }).state !== "granted") {
    throw new CommandError(`writing ${path} needs --allow-write (or --allow-write=${path})`);
  }
}

/**
 * Makes FILE new (O_CREAT|O_EXCL, 0600 before the umask) and writes the pcap
 * header at once, so that from here on it is a valid capture, empty until
 * the first packet. O_EXCL refuses any existing path, a symlink (dangling or
 * not) included, so no link is ever followed; `--force` unlinks what is
 * there first (the link itself, never its target). Messages quote `path`
 * raw: the CLI escapes every error line it prints.
 */
async function createPcap(
  path: string,
  link: "ip" | "ethernet",
  force: boolean,
  linuxSll2: boolean,
): Promise<PcapWriter> {
  let file: Deno.FsFile;
  try {
    if (force) await removeIfPresent(path);
    file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new CommandError(`${path} exists: add --force to replace it`);
    }
    throw new CommandError(`cannot write ${path}: ${(error as Error).message}`);
  }
  // Straight to the file, not through file.writable, which keeps small
  // writes in memory until its buffer fills or it closes (seen with Deno
  // 2.9: 20 KB of records, 0 bytes on disk): a kill would lose them all.
  let closed = false;
  const close = () => {
    if (!closed) file.close();
    closed = true;
  };
  const writeAll = async (bytes: Uint8Array) => {
    for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
  };
  const header = await pcapHeader(link, linuxSll2);
  try {
    await writeAll(header);
  } catch (error) {
    close();
    // Not even a valid empty capture: leave nothing behind.
    await Deno.remove(path).catch(() => {});
    throw new CommandError(`cannot write ${path}: ${(error as Error).message}`);
  }
  // PcapWriter writes the header itself with the first record (or on close):
  // drop that copy, since it is already in the file.
  let written = header.length;
  return new PcapWriter(
    new WritableStream<Uint8Array>({
      write(chunk) {
        const rest = chunk.subarray(written);
        written = 0;
        return writeAll(rest);
      },
      close,
      abort: close,
    }),
    { link, linuxSll2 },
  );
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** The file header {@linkcode PcapWriter} writes for `link`, taken from an empty capture. */
async function pcapHeader(link: "ip" | "ethernet", linuxSll2: boolean): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({ write: (chunk) => void chunks.push(chunk) });
  await new PcapWriter(sink, { link, linuxSll2 }).close();
  return new Uint8Array(chunks.flatMap((chunk) => [...chunk]));
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
