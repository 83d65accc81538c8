// Echoes every UDP datagram routed into a TUN device back to its sender:
//   sudo deno run --allow-ffi examples/udp_echo.ts [--name tun0]
//     [--address 192.0.2.1/24 --address 2001:db8::1/64] [--count N] [--timeout SECONDS]
// then `echo hi | nc -u 192.0.2.7 7` (any address of the prefixes but the device's own,
// any port) prints "hi". Stops on Ctrl-C, SIGTERM, after N datagrams or after the timeout.
import { parseArgs } from "node:util";
import { TunInterface } from "../mod.ts";
import { buildUdp, parsePacket, summarize } from "../packet/mod.ts";

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
console.log(`echoing UDP on ${tun.name} (${values.address.join(", ")})`);

let echoed = 0;
for await (const packet of tun) {
  const { ipv4, ipv6, udp, payload } = parsePacket(packet, "ip");
  const ip = ipv4 ?? ipv6;
  // Skips the first fragment of a big datagram too: its checksum covers data not here.
  if (!ip || !udp?.checksumValid) continue;
  const reply = buildUdp({
    source: ip.destination,
    destination: ip.source,
    sourcePort: udp.destinationPort,
    destinationPort: udp.sourcePort,
    payload,
  });
  await tun.write(reply);
  console.log(summarize(reply, "ip"));
  if (++echoed === Number(values.count)) stop();
}
clearTimeout(timer);
console.log(`echoed ${echoed} datagrams`);
