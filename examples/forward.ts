// Joins two TUN devices back to back: whatever the kernel routes into one comes out of
// the other, crossing TypeScript on the way, one summary line per packet:
//   sudo deno run --allow-ffi examples/forward.ts [A B] [--count N] [--timeout SECONDS]
// It prints "ready A B" (default fwd0 fwd1). One process cannot be in two network
// namespaces, so give each device its own (the fd keeps working when a device moves):
//   sudo ip netns add left && sudo ip netns add right
//   sudo ip link set fwd0 netns left && sudo ip link set fwd1 netns right
//   sudo ip -n left addr add 198.51.100.1/24 dev fwd0 && sudo ip -n left link set fwd0 up
//   sudo ip -n right addr add 198.51.100.2/24 dev fwd1 && sudo ip -n right link set fwd1 up
//   sudo ip netns exec left ping 198.51.100.2
// A packet for a device that is down (as a device is right after it moves) is dropped.
// Stops on Ctrl-C, SIGTERM, after N packets forwarded or after the timeout.
import { parseArgs } from "node:util";
import { TunError, TunInterface } from "../mod.ts";
import { summarize } from "../packet/mod.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    count: { type: "string", default: "0" },
    timeout: { type: "string", default: "0" },
  },
});
const [nameA = "fwd0", nameB = "fwd1"] = positionals;

using a = TunInterface.open({ name: nameA });
using b = TunInterface.open({ name: nameB });
let stopping = false;
// Closing the devices ends both pipes, wherever they are waiting.
const stop = () => {
  stopping = true;
  a.close();
  b.close();
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
const timer = Number(values.timeout) > 0 ? setTimeout(stop, Number(values.timeout) * 1000) : 0;

let forwarded = 0;
function relay(from: TunInterface, to: TunInterface): Promise<void> {
  // `to.writable`, except that a packet for a device whose link is down is dropped, as a
  // wire to a port that is off would drop it, rather than failing the pipe.
  const toLink = new WritableStream<Uint8Array>({
    async write(packet) {
      const route = `${from.name} > ${to.name}`;
      try {
        await to.write(packet);
      } catch (error) {
        if (!(error instanceof TunError && error.code === "EIO")) throw error;
        console.log(`${route}  dropped, link down: ${summarize(packet, "ip")}`);
        return;
      }
      console.log(`${route}  ${summarize(packet, "ip")}`);
      if (++forwarded === Number(values.count)) stop();
    },
  });
  return from.readable.pipeTo(toLink)
    // A packet caught between the two devices closing is lost, not an error.
    .catch((error) => {
      if (!stopping) throw error;
    })
    .finally(stop);
}

console.log(`ready ${a.name} ${b.name}`);
await Promise.all([relay(a, b), relay(b, a)]);
clearTimeout(timer);
console.log(`forwarded ${forwarded} packets`);
