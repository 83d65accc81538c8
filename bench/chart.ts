/**
 * Draws the benchmark's results as an SVG bar chart: one bar per case, the
 * library's median as a ratio of C's, a line at 1.0 where C is, cases
 * grouped by scenario. Plain SVG text, no library, so `main.ts` can write
 * it anywhere and a README can show it.
 *
 * @module
 */

import { type BenchCase, type BenchReport, isTimeUnit } from "./bench_case.ts";

const WIDTH = 860;
const LABEL_WIDTH = 200;
const PLOT_LEFT = LABEL_WIDTH + 16;
const PLOT_RIGHT = WIDTH - 56;
const TOP = 78;
const GROUP_HEADER = 30;
const ROW = 22;
const BAR = 14;
const BOTTOM = 56;
const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";
const RATE_COLOUR = "#3d6fb6";
const TIME_COLOUR = "#d9822b";
// The axis ends here at most; longer bars are cut.
const AXIS_LIMIT = 2;

/** A scenario and the cases that belong to it, in the order they came. */
interface Group {
  scenario: string;
  unit: string;
  cases: { label: string; ratio: number }[];
}

/**
 * Splits a case name into its scenario and its variant: the first word,
 * and the packet size after it when there is one (`read 64B` + `readBatch`,
 * `forward` + `MTU 1500 offload`, `latency` + `ping-pong read()`).
 *
 * @example Names
 * ```ts
 * import { scenarioOf } from "./chart.ts";
 *
 * console.log(scenarioOf("read 64B readBatch")); // { scenario: "read 64B", variant: "readBatch" }
 * console.log(scenarioOf("forward 2 queues")); // { scenario: "forward", variant: "2 queues" }
 * ```
 */
export function scenarioOf(name: string): { scenario: string; variant: string } {
  const words = name.split(" ");
  const length = words.length > 2 && /^\d+B$/.test(words[1]) ? 2 : 1;
  return {
    scenario: words.slice(0, length).join(" "),
    variant: words.slice(length).join(" ") || name,
  };
}

function groups(cases: readonly BenchCase[]): Group[] {
  const found: Group[] = [];
  for (const c of cases) {
    const { scenario, variant } = scenarioOf(c.name);
    let group = found.find((g) => g.scenario === scenario && g.unit === c.unit);
    if (group === undefined) {
      group = { scenario, unit: c.unit, cases: [] };
      found.push(group);
    }
    group.cases.push({ label: variant, ratio: c.ratio });
  }
  return found;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function text(x: number, y: number, content: string, attributes = ""): string {
  return `<text x="${x}" y="${y}" ${attributes}>${escape(content)}</text>`;
}

/**
 * Renders a report as a standalone SVG document.
 *
 * @example Writing the chart
 * ```ts
 * import { renderChart } from "./chart.ts";
 *
 * const svg = renderChart({
 *   machine: { cpu: "Example CPU", cores: 2, kernel: "6.18.0", deno: "2.9.6" },
 *   date: "2026-11-27T12:00:00.000Z",
 *   cases: [{
 *     name: "read 64B readBatch",
 *     unit: "pkt/s",
 *     library: { min: 850_000, median: 900_000, max: 910_000 },
 *     c: { min: 940_000, median: 960_000, max: 1_000_000 },
 *     ratio: 0.94,
 *   }],
 * });
 * console.log(svg.startsWith("<svg"));
 * ```
 */
export function renderChart(report: BenchReport): string {
  const grouped = groups(report.cases);
  const rows = grouped.reduce((sum, g) => sum + g.cases.length, 0);
  const plotBottom = TOP + grouped.length * GROUP_HEADER + rows * ROW + 8;
  const height = plotBottom + BOTTOM;
  const largest = Math.max(1, ...report.cases.map((c) => c.ratio));
  // Quarter steps up to a little past the longest bar, so its label fits,
  // but no further than AXIS_LIMIT: one p99 at 30× C would squash every
  // other bar into a sliver. Longer bars are cut and marked.
  const step = 0.25;
  const scaleMax = Math.min(AXIS_LIMIT, Math.ceil((largest * 1.08) / step) * step);
  const x = (ratio: number) => PLOT_LEFT + (ratio / scaleMax) * (PLOT_RIGHT - PLOT_LEFT);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
      `viewBox="0 0 ${WIDTH} ${height}" font-family="${FONT}" font-size="13">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    text(
      16,
      28,
      "tuntap: the library's median as a ratio of C's, same run",
      'font-size="17" font-weight="bold" fill="#222"',
    ),
    text(
      16,
      48,
      `${report.machine.cpu}, ${report.machine.cores} cores · Linux ${report.machine.kernel} · ` +
        `Deno ${report.machine.deno} · ${report.date.slice(0, 10)}`,
      'fill="#666" font-size="12"',
    ),
  );

  // Grid: a line and a label every step, top and bottom.
  for (let tick = 0; tick <= scaleMax + 1e-9; tick += step) {
    const tx = x(tick).toFixed(1);
    parts.push(
      `<line x1="${tx}" y1="${TOP - 6}" x2="${tx}" y2="${plotBottom}" stroke="#e4e4e4"/>`,
      text(Number(tx), plotBottom + 16, tick.toFixed(2), 'text-anchor="middle" fill="#666"'),
    );
  }

  // Value labels go on last, over C's line, with a white halo to stay legible.
  const values: string[] = [];
  let y = TOP;
  grouped.forEach((group, index) => {
    const time = isTimeUnit(group.unit);
    const groupHeight = GROUP_HEADER + group.cases.length * ROW;
    if (index % 2 === 1) {
      parts.push(
        `<rect x="8" y="${y}" width="${WIDTH - 16}" height="${groupHeight}" fill="#f6f7f9"/>`,
      );
    }
    const direction = time ? "time, lower is better" : `${group.unit}, higher is better`;
    parts.push(
      text(16, y + 20, group.scenario, 'font-weight="bold" fill="#222"'),
      text(
        16 + group.scenario.length * 8.2 + 10,
        y + 20,
        `(${direction})`,
        'fill="#777" font-size="12"',
      ),
    );
    y += GROUP_HEADER;
    for (const c of group.cases) {
      const barY = y + (ROW - BAR) / 2;
      const cut = c.ratio > scaleMax;
      const end = x(Math.min(scaleMax, Math.max(0, c.ratio)));
      parts.push(
        text(LABEL_WIDTH, y + 15, c.label, 'text-anchor="end" fill="#333"'),
        `<rect x="${PLOT_LEFT}" y="${barY}" width="${(end - PLOT_LEFT).toFixed(1)}" ` +
          `height="${BAR}" rx="2" fill="${time ? TIME_COLOUR : RATE_COLOUR}"/>`,
      );
      if (cut) {
        // Two white slashes across the bar's end: it goes on past the axis.
        for (const offset of [18, 12]) {
          const bx = end - offset;
          parts.push(
            `<line x1="${bx - 3}" y1="${barY + BAR + 2}" x2="${bx + 3}" y2="${barY - 2}" ` +
              `stroke="#fff" stroke-width="2.5"/>`,
          );
        }
      }
      values.push(text(
        end + 5,
        y + 15,
        c.ratio.toFixed(2),
        'fill="#222" font-size="12" stroke="#fff" stroke-width="3" paint-order="stroke"',
      ));
      y += ROW;
    }
  });

  // C's line after the bars, so it lies over those it crosses.
  const one = x(1).toFixed(1);
  parts.push(
    `<line x1="${one}" y1="${TOP - 12}" x2="${one}" y2="${plotBottom}" stroke="#c0392b" ` +
      `stroke-width="2" stroke-dasharray="6 4"/>`,
    text(Number(one), TOP - 16, "C = 1.0", 'text-anchor="middle" fill="#c0392b" font-size="12"'),
    text(
      (PLOT_LEFT + PLOT_RIGHT) / 2,
      plotBottom + 38,
      "library ÷ C, ratio of the medians of interleaved rounds",
      'text-anchor="middle" fill="#555" font-size="12"',
    ),
    ...values,
    "</svg>",
  );
  return parts.join("\n") + "\n";
}
