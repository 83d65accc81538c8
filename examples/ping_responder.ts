// Answers ICMP and ICMPv6 echo requests for every address routed into a TUN device:
//   sudo deno run --allow-ffi examples/ping_responder.ts [--name tun0]
//     [--address 192.0.2.1/24 --address 2001:db8::1/64] [--count N] [--timeout SECONDS]
// then `ping 192.0.2.7` or `ping -6 2001:db8::7` (any address of the prefixes but the
// device's own) gets its replies from TypeScript. Stops on Ctrl-C, SIGTERM, after N
// replies or after the timeout.
import { parseArgs } from "node:util";
import { TunInterface } from "../mod.ts";
import { icmpEchoReply, parsePacket } from "../packet/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    name: { type: "string", default: "tun0" },
    address: { type: "string", multiple: true, default: ["192.0.2.1/24", "2001:db8::1/64"] },
    count: { type: "string", default: "0" },
    timeout: { type: "string", default: "0" },
  },
});

using tun = TunInterface.open({ name: values.name, addresses: values.address, up: true });
// Closing the device ends the loop below, wherever it is waiting.
const stop = () => tun.close();
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
const timer = Number(values.timeout) > 0 ? setTimeout(stop, Number(values.timeout) * 1000) : 0;
console.log(`answering pings on ${tun.name} (${values.address.join(", ")})`);

let replies = 0;
for await (const packet of tun) {
  const { icmp } = parsePacket(packet, "ip");
  // The first fragment of a big request fails its checksum: it cannot be answered alone.
  if ((icmp?.type === 8 || icmp?.type === 128) && icmp.checksumValid) {
    await tun.write(icmpEchoReply(packet));
    if (++replies === Number(values.count)) stop();
  }
}
clearTimeout(timer);
console.log(`answered ${replies} pings`);
