// Records whatever the kernel sends into a TUN (or TAP) device to a pcap file, printing a
// line per packet:
//   sudo deno run --allow-ffi --allow-write examples/capture.ts [FILE] [--name tun0] [--tap]
//     [--address 192.0.2.1/24 --address 2001:db8::1/64] [--count N] [--timeout SECONDS]
// then `ping 192.0.2.7` a few times and open the file (default capture.pcap) with
// `tcpdump -r capture.pcap` or Wireshark. Stops on Ctrl-C, SIGTERM, after N packets or
// after the timeout, always leaving a complete file.
import { parseArgs } from "node:util";
import { TunInterface } from "../mod.ts";
import { PcapWriter, summarize } from "../packet/mod.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    name: { type: "string", default: "tun0" },
    tap: { type: "boolean", default: false },
    address: { type: "string", multiple: true, default: ["192.0.2.1/24", "2001:db8::1/64"] },
    count: { type: "string", default: "0" },
    timeout: { type: "string", default: "0" },
  },
});
const path = positionals[0] ?? "capture.pcap";

using tun = TunInterface.open({
  name: values.name,
  mode: values.tap ? "tap" : "tun",
  addresses: values.address,
  up: true,
});
const link = values.tap ? "ethernet" : "ip";
// Disposed after the loop: closing the writer flushes and closes the file.
await using pcap = new PcapWriter(
  await Deno.open(path, { write: true, create: true, truncate: true }),
  { link },
);
// Closing the device ends the loop below, wherever it is waiting.
const stop = () => tun.close();
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
const timer = Number(values.timeout) > 0 ? setTimeout(stop, Number(values.timeout) * 1000) : 0;
console.log(`capturing ${tun.name} to ${path}`);

let captured = 0;
for await (const packet of tun) {
  await pcap.write(packet);
  console.log(summarize(packet, link));
  if (++captured === Number(values.count)) stop();
}
clearTimeout(timer);
console.log(`captured ${captured} packets`);
