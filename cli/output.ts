/**
 * How the CLI prints for a person: aligned tables, `on`/`off`, and colour
 * only where it helps and is wanted.
 *
 * Colour needs stdout to be a terminal and `NO_COLOR` to be unset. Deno
 * reads `NO_COLOR` at startup and exposes it as `Deno.noColor`, which needs
 * no `--allow-env`, so the CLI keeps to `--allow-ffi` and still honours it.
 *
 * @module
 */

/** Whether to colour stdout: a terminal, and `NO_COLOR` not set. */
export function useColour(): boolean {
  return !Deno.noColor && Deno.stdout.isTerminal();
}

/** Green text (a device that is up), when colour is on. */
export function green(text: string): string {
  return useColour() ? `\x1b[32m${text}\x1b[39m` : text;
}

/** Yellow text (a device that is up but cannot pass packets), when colour is on. */
export function yellow(text: string): string {
  return useColour() ? `\x1b[33m${text}\x1b[39m` : text;
}

/** Dim text (what is off or unset), when colour is on. */
export function dim(text: string): string {
  return useColour() ? `\x1b[2m${text}\x1b[22m` : text;
}

/** `on` or `off`, as `ip -d link show` says it. */
export function onOff(value: boolean): string {
  return value ? "on" : "off";
}

/** A cell: its text, and how to paint it once padded. */
export type Cell = string | { text: string; paint: (text: string) => string };

/**
 * A device's state as `list` and `show` print it: `down`, `up`, or `up, no
 * carrier` for one that is up with nothing attached (what `ip` marks
 * `NO-CARRIER`). Like `ip`, it speaks of the carrier only when the device
 * is up.
 */
export function stateCell(device: { up: boolean; carrier: boolean }): Cell {
  if (!device.up) return { text: "down", paint: dim };
  if (!device.carrier) return { text: "up, no carrier", paint: yellow };
  return { text: "up", paint: green };
}

/**
 * Lines of columns padded to their widest cell, two spaces apart. Padding
 * is computed on the plain text, so colour codes do not skew it.
 */
export function table(rows: readonly (readonly Cell[])[]): string {
  const plain = (cell: Cell) => typeof cell === "string" ? cell : cell.text;
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, plain(cell).length));
  }
  return rows.map((row) =>
    row.map((cell, i) => {
      const text = plain(cell);
      const painted = typeof cell === "string" ? text : cell.paint(text);
      return i === row.length - 1 ? painted : painted + " ".repeat(widths[i] - text.length);
    }).join("  ")
  ).join("\n");
}

/**
 * Prints a value as JSON, two-space indented, keys in the order the value has
 * them. JSON.stringify escapes only C0 controls; DEL, C1 controls (0x9B is a
 * terminal's CSI) and format characters are escaped too, so that a device
 * name cannot drive a terminal through `--json` either; the JSON is the same.
 */
export function printJson(value: unknown): void {
  console.log(
    // The only raw C0 characters left are the newlines of the indentation.
    JSON.stringify(value, null, 2).replace(
      /[\x7f-\x9f\p{Cf}\p{Zl}\p{Zp}]/gu,
      (character) =>
        character.split("").map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`)
          .join(""),
    ),
  );
}
