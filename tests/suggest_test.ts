import { closestName } from "../src/suggest.ts";
import { assertStrictEquals } from "./assert.ts";

const options = ["name", "mode", "mtu", "multiQueue", "persist"];

Deno.test("closestName finds a name one or two edits away", () => {
  assertStrictEquals(closestName("nmae", options), "name");
  assertStrictEquals(closestName("moed", options), "mode");
  assertStrictEquals(closestName("persits", options), "persist");
  assertStrictEquals(closestName("multiqueue", options), "multiQueue");
});

Deno.test("closestName returns undefined beyond two edits", () => {
  assertStrictEquals(closestName("colour", options), undefined);
  assertStrictEquals(closestName("", options), undefined);
  assertStrictEquals(closestName("x", []), undefined);
});

Deno.test("closestName prefers an exact match, then the nearest, then the first listed", () => {
  assertStrictEquals(closestName("mtu", options), "mtu");
  assertStrictEquals(closestName("mod", ["mtu", "mode"]), "mode");
  assertStrictEquals(closestName("ab", ["xb", "ay"]), "xb");
});
