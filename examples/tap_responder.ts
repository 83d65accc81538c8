// Pretends to be a host on the link of a TAP device, answering ARP, IPv6 neighbour
// solicitations and pings for one IPv4 and one IPv6 address:
//   sudo deno run --allow-ffi examples/tap_responder.ts [--name tap0]
//     [--address 198.51.100.1/24 --address 2001:db8:1::1/64]    (the kernel's side)
//     [--ipv4 198.51.100.2 --ipv6 2001:db8:1::2 --mac 02:00:5e:10:00:02]    (the host's)
//     [--count N] [--timeout SECONDS]
// then `ping 198.51.100.2` and `ping -6 2001:db8:1::2` get replies, and `ip neigh` shows
// the host's MAC for both. Stops on Ctrl-C, SIGTERM, after N pings or after the timeout.
import { parseArgs } from "node:util";
import { TunInterface } from "../mod.ts";
import {
  buildArp,
  buildEthernet,
  buildNeighborAdvertisement,
  EtherType,
  formatIp,
  icmpEchoReply,
  parseIp,
  parseMac,
  parsePacket,
} from "../packet/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    name: { type: "string", default: "tap0" },
    address: { type: "string", multiple: true, default: ["198.51.100.1/24", "2001:db8:1::1/64"] },
    ipv4: { type: "string", default: "198.51.100.2" },
    ipv6: { type: "string", default: "2001:db8:1::2" },
    mac: { type: "string", default: "02:00:5e:10:00:02" },
    count: { type: "string", default: "0" },
    timeout: { type: "string", default: "0" },
  },
});
// Canonical text, to compare with what parsePacket reports.
const ipv4 = formatIp(parseIp(values.ipv4));
const ipv6 = formatIp(parseIp(values.ipv6));
const mac = parseMac(values.mac);

/** The answer to a frame, or undefined; `ping` tells the count to go up. */
function answer(frame: Uint8Array): { reply: Uint8Array; ping: boolean } | undefined {
  const { ethernet, arp, ipv4: ip4, ipv6: ip6, icmp, payload } = parsePacket(frame, "ethernet");
  if (!ethernet || ethernet.vlan !== undefined) return undefined;
  const toSender = (etherType: number, packet: Uint8Array) =>
    buildEthernet({ destination: ethernet.source, source: mac, etherType, payload: packet });
  if (arp?.operation === 1 && arp.targetIp === ipv4) {
    const body = buildArp({
      operation: 2,
      senderMac: mac,
      senderIp: ipv4,
      targetMac: arp.senderMac,
      targetIp: arp.senderIp,
    });
    return { reply: toSender(EtherType.ARP, body), ping: false };
  }
  if (!icmp?.checksumValid) return undefined;
  // A solicitation from :: is duplicate address detection, not a question for us.
  if (
    ip6 && icmp.type === 135 && formatIp(payload.subarray(0, 16)) === ipv6 &&
    ip6.source !== "::"
  ) {
    const advertisement = buildNeighborAdvertisement({
      source: ipv6,
      destination: ip6.source,
      target: ipv6,
      targetMac: mac,
      solicited: true,
    });
    return { reply: toSender(EtherType.IPV6, advertisement), ping: false };
  }
  const ip = ip4 ?? ip6;
  if (
    ip && ((ip4?.destination === ipv4 && icmp.type === 8) ||
      (ip6?.destination === ipv6 && icmp.type === 128))
  ) {
    const reply = icmpEchoReply(frame.subarray(ip.offset));
    return { reply: toSender(ethernet.etherType, reply), ping: true };
  }
  return undefined;
}

using tap = TunInterface.open({
  name: values.name,
  mode: "tap",
  addresses: values.address,
  up: true,
});
// Closing the device ends the loop below, wherever it is waiting.
const stop = () => tap.close();
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
const timer = Number(values.timeout) > 0 ? setTimeout(stop, Number(values.timeout) * 1000) : 0;
console.log(`${ipv4} and ${ipv6} are at ${values.mac} on ${tap.name}`);

let pings = 0;
for await (const frame of tap) {
  const answered = answer(frame);
  if (!answered) continue;
  await tap.write(answered.reply);
  if (answered.ping && ++pings === Number(values.count)) stop();
}
clearTimeout(timer);
console.log(`answered ${pings} pings`);
