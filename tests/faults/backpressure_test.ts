import { TunInterface } from "../../mod.ts";
import { assert } from "../assert.ts";
import { kernelTest, uniqueName, within } from "../kernel.ts";
import { throttle } from "./backpressure.ts";

kernelTest("a throttled bridge port makes TAP writes wait until its qdisc goes", async () => {
  using tap = TunInterface.open({ name: uniqueName("bptap"), mode: "tap" });
  using pressure = throttle(tap);
  const filled = pressure.fill();
  let settled = false;
  const pending = tap.write(pressure.frame(99_999)).finally(() => settled = true);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert(!settled, "the write did not wait");
  const start = performance.now();
  pressure.release();
  await within(pending, 1000, "the write after release");
  console.log(
    `back-pressure after ${filled} frames; room ${
      (performance.now() - start).toFixed(1)
    } ms after release`,
  );
});
