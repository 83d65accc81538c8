/**
 * `tuntap create`: a persistent device.
 *
 * @module
 */
import { TunInterface } from "../mod.ts";
import { parseArgs } from "./parse_args.ts";
import { UsageError } from "./usage_error.ts";

/** Usage text of `tuntap create`. */
export const createUsage = `Usage: tuntap create NAME [--mode tun|tap] [--user UID] [--group GID]

Creates a persistent TUN (default) or TAP device named NAME. With --user or
--group, that uid or the members of that gid may attach it without root.`;

/** Runs `tuntap create`. */
export function create(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      mode: { type: "string", default: "tun" },
      user: { type: "string" },
      group: { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("create takes one NAME", "create");
  const mode = values.mode;
  if (mode !== "tun" && mode !== "tap") {
    throw new UsageError(`--mode must be tun or tap, not "${mode}"`, "create");
  }
  const tun = TunInterface.open({
    name: positionals[0],
    mode,
    persist: true,
    exclusive: true,
    owner: values.user === undefined ? undefined : parseId(values.user, "--user"),
    group: values.group === undefined ? undefined : parseId(values.group, "--group"),
  });
  console.log(`created ${mode} device ${tun.name}`);
  tun.close();
  return 0;
}

/** A uid or gid given as digits. */
export function parseId(text: string, option: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${option} takes a number, not "${text}"`);
  return Number(text);
}
