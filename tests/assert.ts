/**
 * The one place the tests take their assertions from. The design names
 * `@std/assert`, which lives on JSR and cannot be reached from this build
 * environment; swapping this line is all it takes to move to it.
 *
 * @module
 */
export {
  deepEqual as assertEquals,
  equal as assertStrictEquals,
  match as assertMatch,
  notEqual as assertNotEquals,
  ok as assert,
  rejects as assertRejects,
  throws as assertThrows,
} from "node:assert/strict";
