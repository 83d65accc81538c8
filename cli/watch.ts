/**
 * `tuntap watch`: a live view of the TUN/TAP devices' state and traffic.
 *
 * Which devices exist comes from link events ({@linkcode watchLinks}), so a
 * device shows up or goes away the moment the kernel says so; only the
 * counters are read on each refresh, one `RTM_GETLINK` per device.
 *
 * @module
 */
import {
  listTunDevices,
  tunDeviceDetails,
  tunDeviceStats,
  TunError,
  type TunLinkEvent,
  type TunOperState,
  watchLinks,
} from "../mod.ts";
import { type Cell, dim, stateCell, table, useColour } from "./output.ts";
import { escapeControl, validateInterfaceName } from "../src/validate.ts";
import { parseCommandLine } from "./parse_args.ts";
import { UsageError } from "./usage_error.ts";

/** Usage text of `tuntap watch`. */
export const watchUsage = `Usage: tuntap watch [NAME…] [--json] [--interval SECONDS] [--count N]
                   [--netns NS]

A live view of every TUN/TAP device of this network namespace (or of the
NAMEs), refreshed every second: its state, what it carries in packets and
bits per second each way, its drops, and a sparkline of the last minute's
traffic. Devices appear and disappear as they are created and deleted.
A NAME that is not there shows as absent until a TUN/TAP device of that
name appears. Ctrl-C quits. Needs --allow-ffi only, and no privilege.

Columns: NAME, STATE (down, up, or "up, no carrier": nothing is attached),
RX PKT/S and RX BIT/S (written by the program into the kernel), TX PKT/S
and TX BIT/S (sent by the kernel to the program), DROPS (rx + tx dropped
since the device was made, highlighted while it grows), LAST MINUTE (rx + tx
bits per second, one block per refresh, scaled to the highest shown).

Without a terminal, or with --json, it prints one JSON object per device
per refresh, one a line:
  { "time": string, "name": string, "index": number, "up": boolean,
    "carrier": boolean, "operState": string, "mtu": number,
    "rxPackets": number, "txPackets": number, "rxBytes": number,
    "txBytes": number, "rxDropped": number, "txDropped": number,
    "rxPacketsPerSecond": number, "txPacketsPerSecond": number,
    "rxBitsPerSecond": number, "txBitsPerSecond": number }
The counters are the kernel's totals; the rates are over the last interval.

Options:
  --interval SECONDS  time between refreshes (default 1; 0.1 to 3600)
  --count N           stop after N refreshes
  --json              JSON lines even on a terminal
  --netns NS          watch the network namespace NS (under /run/netns, as
                      ip netns add makes) instead of the program's own`;

/** The namespace watched: `netns` undefined for the program's own. */
interface Where {
  netns?: string;
}

/** One device being watched: what the events said and the counters' last sample. */
interface Watched {
  index: number;
  name: string;
  up: boolean;
  carrier: boolean;
  operState: TunOperState;
  mtu: number;
  sample?: Sample;
  rates?: Rates;
  // rx + tx bits per second, oldest first, one per refresh over the last minute.
  history: number[];
  dropsGrew: boolean;
}

interface Sample {
  time: number;
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
  rxDropped: number;
  txDropped: number;
}

interface Rates {
  rxPackets: number;
  txPackets: number;
  rxBits: number;
  txBits: number;
}

/** Runs `tuntap watch` until Ctrl-C (or `--count` refreshes). */
export async function watch(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine("watch", args, {
    json: { type: "boolean", default: false },
    interval: { type: "string" },
    count: { type: "string" },
    netns: { type: "string" },
  });
  const where: Where = { netns: values.netns };
  const interval = parseNumber(values.interval ?? "1", "--interval", 0.1, 3600, false);
  const count = values.count === undefined
    ? Infinity
    : parseNumber(values.count, "--count", 1, 2 ** 31, true);
  const names = positionals.map((name) => validateInterfaceName(name, "Device name"));
  const screen = !values.json && Deno.stdout.isTerminal();

  const controller = new AbortController();
  const { signal } = controller;
  const stop = () => controller.abort();
  const redraw = () => screen && draw(view, names, interval);
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  if (screen) Deno.addSignalListener("SIGWINCH", redraw);

  const view = new Map<number, Watched>();
  let failure: unknown;
  try {
    // Subscribed before the list is read, so a device made in between is in
    // one or the other (or both: it is keyed by index).
    const events = watchLinks({ signal, netns: where.netns });
    for (const { name } of listTunDevices(where)) {
      if (names.length > 0 && !names.includes(name)) continue;
      try {
        follow(view, tunDeviceDetails(name, where), where);
      } catch (error) {
        // Deleted since the list was read: its event is on its way.
        if (!(error instanceof TunError)) throw error;
      }
    }
    const following = (async () => {
      for await (const event of events) {
        apply(view, names, event, where);
        redraw();
      }
    })().catch((error) => {
      if (signal.aborted) return;
      failure = error;
      controller.abort();
    });
    if (screen) enterScreen();
    redraw();
    const start = performance.now();
    for (let refresh = 1; refresh <= count && !signal.aborted; refresh++) {
      await sleep(start + refresh * interval * 1000 - performance.now(), signal);
      if (signal.aborted) break;
      const time = new Date();
      for (const device of view.values()) measure(device, interval, where);
      if (screen) draw(view, names, interval);
      else for (const device of view.values()) printLine(device, time);
    }
    controller.abort();
    await following;
  } finally {
    controller.abort();
    if (screen) leaveScreen();
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    if (screen) Deno.removeSignalListener("SIGWINCH", redraw);
  }
  if (failure !== undefined) throw failure;
  return 0;
}

function parseNumber(
  text: string,
  option: string,
  min: number,
  max: number,
  integer: boolean,
): number {
  const value = Number(text);
  if (
    text.trim() === "" || !Number.isFinite(value) || value < min || value > max ||
    (integer && !Number.isInteger(value))
  ) {
    throw new UsageError(
      `${option} must be ${integer ? "a whole number" : "a number"} from ${min} to ${max}, ` +
        `got ${JSON.stringify(text)}`,
      "watch",
    );
  }
  return value;
}

/** Starts following a device, reading its first sample so the next refresh has rates. */
function follow(
  view: Map<number, Watched>,
  device: { index: number; name: string; up: boolean; carrier: boolean; mtu: number },
  where: Where,
): void {
  const watched: Watched = {
    index: device.index,
    name: device.name,
    up: device.up,
    carrier: device.carrier,
    operState: device.carrier && device.up ? "UNKNOWN" : "DOWN",
    mtu: device.mtu,
    history: [],
    dropsGrew: false,
  };
  view.set(device.index, watched);
  measure(watched, 0, where);
}

function apply(
  view: Map<number, Watched>,
  names: string[],
  event: TunLinkEvent,
  where: Where,
): void {
  const wanted = names.length === 0 || names.includes(event.name);
  const known = view.get(event.index);
  if (event.kind === "removed" || !wanted) {
    view.delete(event.index);
  } else if (known === undefined) {
    follow(view, event, where);
  } else {
    Object.assign(known, {
      name: event.name,
      up: event.up,
      carrier: event.carrier,
      mtu: event.mtu,
    });
  }
}

/** Reads the device's state and counters; with a previous sample, its rates. */
function measure(device: Watched, interval: number, where: Where): void {
  let sample: Sample;
  try {
    const info = tunDeviceDetails(device.name, where);
    const stats = tunDeviceStats(device.name, where);
    Object.assign(device, { up: info.up, carrier: info.carrier, operState: info.operState });
    sample = { time: performance.now(), ...stats };
  } catch (error) {
    // Deleted or renamed since the last event: the event that says so is on its way.
    if (error instanceof TunError) return;
    throw error;
  }
  const last = device.sample;
  device.sample = sample;
  if (last === undefined) return;
  const seconds = Math.max((sample.time - last.time) / 1000, 0.001);
  // A counter that went backwards belongs to a new device of the same name.
  const rate = (now: number, before: number) => Math.max(0, now - before) / seconds;
  device.rates = {
    rxPackets: rate(sample.rxPackets, last.rxPackets),
    txPackets: rate(sample.txPackets, last.txPackets),
    rxBits: rate(sample.rxBytes, last.rxBytes) * 8,
    txBits: rate(sample.txBytes, last.txBytes) * 8,
  };
  device.dropsGrew = sample.rxDropped + sample.txDropped > last.rxDropped + last.txDropped;
  device.history.push(device.rates.rxBits + device.rates.txBits);
  const keep = Math.max(1, Math.ceil(60 / Math.max(interval, 0.1)));
  device.history.splice(0, Math.max(0, device.history.length - keep));
}

const encoder = new TextEncoder();

function printLine(device: Watched, time: Date): void {
  const { sample, rates } = device;
  if (sample === undefined || rates === undefined) return;
  const round = (value: number) => Math.round(value * 100) / 100;
  const line = JSON.stringify({
    time: time.toISOString(),
    name: device.name,
    index: device.index,
    up: device.up,
    carrier: device.carrier,
    operState: device.operState,
    mtu: device.mtu,
    rxPackets: sample.rxPackets,
    txPackets: sample.txPackets,
    rxBytes: sample.rxBytes,
    txBytes: sample.txBytes,
    rxDropped: sample.rxDropped,
    txDropped: sample.txDropped,
    rxPacketsPerSecond: round(rates.rxPackets),
    txPacketsPerSecond: round(rates.txPackets),
    rxBitsPerSecond: round(rates.rxBits),
    txBitsPerSecond: round(rates.txBits),
  });
  // As printJson does: no DEL, C1 control or format character of a name
  // reaches a terminal raw.
  console.log(line.replace(
    /[\x7f-\x9f\p{Cf}\p{Zl}\p{Zp}]/gu,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`,
  ));
}

// The alternate screen keeps the user's scrollback as it was; no wrapping,
// so a narrow terminal cuts lines instead of scrambling the layout.
function enterScreen(): void {
  write("\x1b[?1049h\x1b[?25l\x1b[?7l");
}

function leaveScreen(): void {
  write("\x1b[?7h\x1b[?25h\x1b[?1049l");
}

function write(text: string): void {
  const bytes = encoder.encode(text);
  for (let done = 0; done < bytes.length;) done += Deno.stdout.writeSync(bytes.subarray(done));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener("abort", done);
  });
}

const HEADER = ["NAME", "STATE", "RX PKT/S", "RX BIT/S", "TX PKT/S", "TX BIT/S", "DROPS"];

function draw(view: Map<number, Watched>, names: string[], interval: number): void {
  const size = Deno.consoleSize();
  // The last column is left alone: with wrapping off, the cursor stays on it
  // and the erase that ends each line would wipe what was written there.
  const columns = size.columns - 1;
  const height = size.rows;
  const devices = [...view.values()].sort((a, b) => a.name.localeCompare(b.name));
  const absent = names.filter((name) => !devices.some((device) => device.name === name));
  const rows: Cell[][] = [
    ...devices.map(deviceCells),
    ...absent.map((name): Cell[] => [
      escapeControl(name),
      { text: "absent", paint: dim },
      ...HEADER.slice(2).map((): Cell => ({ text: "", paint: dim })),
    ]),
  ];
  const width = tableWidth([HEADER, ...rows]);
  const keep = Math.ceil(60 / interval);
  const sparkWidth = Math.max(0, Math.min(keep, columns - width - 2));
  const sparks = [
    ...devices.map((device) => sparkline(device.history, sparkWidth)),
    ...absent.map(() => " ".repeat(sparkWidth)),
  ];
  const body = table([
    sparkWidth > 0 ? [...HEADER, "LAST MINUTE".slice(0, sparkWidth)] : HEADER,
    ...rows.map((row, i) => sparkWidth > 0 ? [...row, sparks[i]] : row),
  ]);
  const count = devices.length === 1 ? "1 device" : `${devices.length} devices`;
  const title = `tuntap watch · ${count} · every ${interval} s · Ctrl-C to quit`;
  const clock = new Date().toLocaleTimeString("en-GB", { hour12: false });
  const lines = [
    title.length + 2 + clock.length > columns
      ? title
      : title + " ".repeat(columns - title.length - clock.length) + clock,
    "",
    ...(rows.length === 0
      ? ["no TUN/TAP devices; they appear here as they are created"]
      : body.split("\n")),
  ].slice(0, Math.max(1, height - 1));
  write(`\x1b[H${lines.map((line) => `${line}\x1b[K`).join("\n")}\x1b[J`);
}

function deviceCells(device: Watched): Cell[] {
  const { rates, sample } = device;
  const number = (value: number | undefined, column: number): Cell => {
    const text = (value === undefined ? "-" : si(value)).padStart(HEADER[column].length);
    return value ? text : { text, paint: dim };
  };
  const drops = sample === undefined ? undefined : sample.rxDropped + sample.txDropped;
  const dropsText = (drops === undefined ? "-" : si(drops)).padStart(HEADER[6].length);
  return [
    escapeControl(device.name),
    stateCell(device),
    number(rates?.rxPackets, 2),
    number(rates?.rxBits, 3),
    number(rates?.txPackets, 4),
    number(rates?.txBits, 5),
    device.dropsGrew ? { text: dropsText, paint: red } : drops ? dropsText : {
      text: dropsText,
      paint: dim,
    },
  ];
}

function red(text: string): string {
  return useColour() ? `\x1b[31m${text}\x1b[39m` : text;
}

/** 0, 950, 12.3k, 1.50M: three significant digits at most, SI prefixes. */
function si(value: number): string {
  if (value < 0.5) return "0";
  const prefixes = ["", "k", "M", "G", "T"];
  let scaled = value;
  let prefix = 0;
  while (scaled >= 999.5 && prefix < prefixes.length - 1) {
    scaled /= 1000;
    prefix++;
  }
  const text = prefix === 0 ? String(Math.round(scaled)) : scaled.toPrecision(3);
  return text + prefixes[prefix];
}

const BLOCKS = "▂▃▄▅▆▇█";

/**
 * The last `width` values as blocks, scaled to the highest of them: nothing
 * is "▁", any traffic at least "▂"; refreshes before the device was seen are
 * blank.
 */
function sparkline(values: readonly number[], width: number): string {
  const shown = values.slice(-width);
  const highest = Math.max(0, ...shown);
  const blocks = shown.map((value) =>
    value <= 0 || highest === 0
      ? "▁"
      : BLOCKS[Math.min(BLOCKS.length - 1, Math.ceil((value / highest) * BLOCKS.length) - 1)]
  ).join("");
  return " ".repeat(width - shown.length) + blocks;
}

/** How wide {@linkcode table} lays `rows` out: the widest cells, two spaces apart. */
function tableWidth(rows: readonly (readonly Cell[])[]): number {
  const widths = rows[0].map((_, i) =>
    Math.max(...rows.map((row) => {
      const cell = row[i];
      return (typeof cell === "string" ? cell : cell.text).length;
    }))
  );
  return widths.reduce((sum, width) => sum + width, 0) + 2 * (widths.length - 1);
}
