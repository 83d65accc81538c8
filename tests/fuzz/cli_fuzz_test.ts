/**
 * Fuzzes the CLI's argument parser, `parseCommandLine`, with command lines
 * made of the options a command knows, misspellings, values of every shape
 * (negative numbers, `=` forms, bundled short flags, `--`) and arbitrary
 * strings. It must parse them or throw a one-line `UsageError`.
 */
import fc from "fast-check";
import { type CommandOptions, parseCommandLine } from "../../cli/parse_args.ts";
import { UsageError } from "../../cli/usage_error.ts";
import { assert } from "../assert.ts";
import { fuzz, outcome } from "./fuzz.ts";

/** Option tables shaped like the commands' own: strings, booleans, repeatable, short names. */
const tables: CommandOptions[] = [
  {
    mode: { type: "string", default: "tun" },
    user: { type: "string" },
    pi: { type: "boolean", default: false },
    "vnet-hdr": { type: "boolean", default: false },
    address: { type: "string", multiple: true, default: [] },
    mtu: { type: "string" },
    up: { type: "boolean" },
  },
  {
    write: { type: "string", short: "w" },
    count: { type: "string", short: "c" },
    timeout: { type: "string" },
    force: { type: "boolean", short: "f" },
    json: { type: "boolean", default: false },
  },
  {},
];

const word = fc.oneof(
  fc.constantFrom(
    "--mode",
    "--moed",
    "--mode=tap",
    "--mode=",
    "--pi",
    "--pi=yes",
    "--no-pi",
    "--address",
    "--mtu",
    "--user",
    "--up",
    "-w",
    "-c",
    "-f",
    "-wc",
    "-fw",
    "-cw5",
    "-x",
    "--write=-",
    "--count",
    "--timeout",
    "--json",
    "--jsno",
    "--help",
    "-h",
    "--",
    "-",
    "---",
    "--=",
    "-1",
    "-0.5",
    "-.5",
    "-1e3",
    "1500",
    "tun0",
    "tap%d",
    "192.0.2.1/24",
    "",
    " ",
    "\u001b[31m",
    "tunà",
  ),
  fc.string({ maxLength: 12 }),
  fc.string({ maxLength: 8 }).map((text) => `--${text}`),
  fc.string({ maxLength: 4 }).map((text) => `-${text}`),
);

Deno.test("fuzz: parseCommandLine parses any command line or throws a one-line UsageError", async () => {
  await fuzz(
    "parseCommandLine",
    fc.tuple(
      fc.constantFrom("create", "capture", "list"),
      fc.nat(tables.length - 1),
      fc.array(word, { maxLength: 8 }),
    ),
    async ([command, table, args]) => {
      const { error } = await outcome(
        () => parseCommandLine(command, args, tables[table]),
        (error) => error instanceof UsageError,
      );
      if (error instanceof UsageError) {
        assert(
          !error.message.includes("\n"),
          `more than one line: ${JSON.stringify(error.message)}`,
        );
      }
    },
  );
});
