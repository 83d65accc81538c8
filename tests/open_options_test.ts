import { TunInterface } from "../mod.ts";
import { assert, assertMatch, assertStrictEquals, assertThrows } from "./assert.ts";
import { interfaceExists, ipJson, kernelTest, runScript, uniqueName } from "./kernel.ts";

kernelTest("an unknown open() option is a TypeError naming it and the closest valid one", () => {
  const name = uniqueName("typo");
  assertThrows(
    () => TunInterface.open({ nmae: name } as never),
    (error: Error) =>
      error instanceof TypeError &&
      error.message === `TunInterface.open() has no option "nmae": did you mean "name"?`,
  );
  assertThrows(
    () => TunInterface.open({ name, vnetHeadr: true } as never),
    (error: Error) =>
      error instanceof TypeError && /"vnetHeadr": did you mean "vnetHeader"/
        .test(error.message),
  );
  assertThrows(
    () => TunInterface.open({ name, colour: "blue" } as never),
    (error: Error) =>
      error instanceof TypeError && /no option "colour": use name, mode, packetInfo/
        .test(error.message),
  );
  assert(!interfaceExists(name), "nothing was created");
});

kernelTest("Deno.inspect of a handle shows its name, mode, index, flags and closed", () => {
  const tun = TunInterface.open({
    name: uniqueName("insp"),
    mode: "tap",
    vnetHeader: true,
    offload: { checksum: true, tso4: true, tso6: false },
  });
  const shown = Deno.inspect(tun);
  assertStrictEquals(
    shown,
    `TunInterface {\n  name: "${tun.name}",\n  mode: "tap",\n  index: ${tun.index},\n` +
      `  packetInfo: false,\n  vnetHeader: true,\n  multiQueue: false,\n` +
      `  offload: { checksum: true, tso4: true },\n  closed: false\n}`,
  );
  tun.close();
  assertMatch(Deno.inspect(tun), /closed: true/);
  using plain = TunInterface.open();
  assertMatch(
    Deno.inspect(plain),
    /^TunInterface \{\s+name: "tun\d+",\s+mode: "tun",\s+index: \d+,/,
  );
  assertMatch(Deno.inspect(plain), /offload: \{\},\s+closed: false\s+\}$/);
});

kernelTest(
  "setTxQueueLength beyond what the kernel can allocate is a RangeError, not a root hint",
  () => {
    using tun = TunInterface.open({ name: uniqueName("txq") });
    const before = tun.txQueueLength;
    for (const length of [2 ** 24, 2 ** 32 - 1]) {
      assertThrows(
        () => tun.setTxQueueLength(length),
        (error: Error) =>
          error instanceof RangeError &&
          error.message.startsWith(`Transmit queue length ${length} is more than TUN device`) &&
          /KMALLOC_MAX_SIZE/.test(error.message),
      );
    }
    assertStrictEquals(ipJson(`link show ${tun.name}`)[0].txqlen, before);
  },
);

kernelTest("setTxQueueLength without privileges is still EPERM with the root hint", () => {
  const name = uniqueName("txqu");
  TunInterface.open({ name, persist: true, owner: 4242 }).close();
  try {
    const result = runScript(
      `import { TunInterface, TunError } from "tuntap";
       using tun = TunInterface.open({ name: ${JSON.stringify(name)} });
       try { tun.setTxQueueLength(2 ** 24); } catch (error) {
         console.log(error instanceof TunError ? error.code : (error as Error).name);
       }`,
      { uid: 4242 },
    );
    assertStrictEquals(result.stdout.trim(), "EPERM", result.stderr);
  } finally {
    TunInterface.destroy(name);
  }
});

kernelTest("setTxQueueLength within the limit still works", () => {
  using tun = TunInterface.open({ name: uniqueName("txqok") });
  tun.setTxQueueLength(5000);
  assertStrictEquals(tun.txQueueLength, 5000);
});
