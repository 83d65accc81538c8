import { EINVAL, errno } from "../ffi/errno.ts";
import { IFF_NO_PI, IFF_TUN, O_CLOEXEC, O_RDWR, TUNSETIFF } from "../ffi/constants.ts";
import { ifreq, set_ifr_flags } from "../ffi/ifreq.ts";
import { cstring, libc } from "../ffi/libc.ts";
import { TunInterface } from "../mod.ts";
import { validateInterfaceName } from "../src/validate.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "./assert.ts";
import { interfaceExists, kernelTest } from "./kernel.ts";

/** The RangeError validation throws for `name`, or undefined when it accepts it. */
function refusal(name: string): RangeError | undefined {
  try {
    validateInterfaceName(name, "Device name");
    return undefined;
  } catch (error) {
    if (error instanceof RangeError) return error;
    throw error;
  }
}

Deno.test("names holding the byte 0xA0 inside a UTF-8 character are refused, naming it", () => {
  // "à" is C3 A0 and "Ġ" is C4 A0: the kernel's Latin-1 isspace() counts 0xA0.
  for (
    const [name, within] of [
      ["tunà", '(in "à", U+00E0)'],
      ["Ġx", '(in "Ġ", U+0120)'],
      ["a\u00a0b", "U+00A0"],
    ]
  ) {
    const error = refusal(name);
    assert(error, `${name} is refused`);
    assertMatch(error.message, /contains the byte 0xA0/);
    assert(error.message.includes(within), error.message);
  }
});

Deno.test("names refused by dev_valid_name are RangeErrors, those it takes pass", () => {
  for (
    const name of ["", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\nb", "a\vb", "a\fb", "a\rb"]
  ) {
    assert(refusal(name), JSON.stringify(name));
  }
  assert(refusal("a".repeat(16)), "16 bytes");
  assert(refusal("é".repeat(8)), "8 two-byte characters are 16 bytes");
  for (
    // Whitespace to JavaScript, not to the kernel: U+2003 is E2 80 83, U+FEFF EF BB BF.
    const name of ["a".repeat(15), "é".repeat(7), "t\u2003x", "t\ufeffx", "t\u0085x", "...", "-"]
  ) {
    assertStrictEquals(refusal(name), undefined, JSON.stringify(name));
  }
});

kernelTest("TunInterface.open refuses a name with 0xA0 before any syscall", () => {
  assertThrows(() => TunInterface.open({ name: "tunà" }), /RangeError: .*0xA0/);
  assert(!interfaceExists("tunà"));
});

/** Whether the kernel's TUNSETIFF takes `name` (the device goes with the fd). */
function kernelTakes(name: string): boolean {
  const fd = libc().open(cstring("/dev/net/tun"), O_RDWR | O_CLOEXEC, 0);
  assert(fd >= 0, `open /dev/net/tun: errno ${errno()}`);
  try {
    const result = libc().ioctl(
      fd,
      BigInt(TUNSETIFF),
      set_ifr_flags(ifreq(name), IFF_TUN | IFF_NO_PI),
    );
    if (result === 0) return true;
    assertStrictEquals(errno(), EINVAL, `TUNSETIFF ${JSON.stringify(name)}`);
    return false;
  } finally {
    libc().close(fd);
  }
}

kernelTest("name validation agrees with the kernel on every byte a UTF-8 name can hold", () => {
  // Every byte value UTF-8 can hold: ASCII; U+0080–U+00FF, whose second byte
  // runs through all continuation bytes under two leads (C3 A0 is "à"); a
  // character for each other lead byte C4–F4; and what JavaScript calls
  // whitespace but the kernel does not (U+3000 is E3 80 80).
  const characters: string[] = [];
  for (let code = 1; code < 0x100; code++) characters.push(String.fromCodePoint(code));
  for (let lead = 0xc4; lead <= 0xf4; lead++) {
    // The smallest continuation byte each lead allows (E0 and F0 need more).
    const second = lead === 0xe0 ? 0xa1 : lead === 0xf0 ? 0x91 : 0x81;
    const bytes = [lead, second, 0x81, 0x81].slice(0, lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4);
    characters.push(new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes)));
  }
  characters.push("Ġ", "\u1680", "\u2003", "\u2028", "\u202f", "\u205f", "\u3000", "\ufeff");
  const disagreements: string[] = [];
  for (const character of characters) {
    if (character === "%") continue; // a template, which TUNSETIFF fills in
    const name = `nv${character}x`;
    const ours = refusal(name) === undefined;
    if (ours !== kernelTakes(name)) {
      disagreements.push(`${JSON.stringify(name)}: validation ${ours ? "takes" : "refuses"} it`);
    }
  }
  assertEquals(disagreements, []);
});
