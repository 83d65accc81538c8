/**
 * The one place the CLI takes its argument parser from. The design names
 * `@std/cli`, which lives on JSR and cannot be reached from this build
 * environment; `node:util`'s `parseArgs` stands in until then.
 *
 * @module
 */
export { parseArgs } from "node:util";
