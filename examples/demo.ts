// The demo behind `deno task demo`, which runs it in a private network namespace:
//   deno run --allow-ffi --allow-net --unstable-net examples/demo.ts
//
// A TUN device takes 192.0.2.1/24 and 2001:db8::1/64, so the kernel routes the rest of
// both prefixes into it. TypeScript answers there, echoing every UDP datagram. Kernel
// sockets then talk to addresses that exist only in this script, and every packet
// crossing the device is printed.
import { TunInterface } from "../mod.ts";
import { buildUdp, parsePacket, summarize } from "../packet/mod.ts";

const timeout = AbortSignal.timeout(20_000);
using tun = TunInterface.open({
  name: "demo0",
  addresses: ["192.0.2.1/24", "2001:db8::1/64"],
  up: true,
});
console.log(`TUN device ${tun.name} is up with ${tun.addresses().join(", ")}\n`);

let read = 0;
let written = 0;

async function respond(): Promise<void> {
  for await (const packet of tun.packets({ signal: timeout })) {
    read++;
    console.log(`kernel → TS   ${summarize(packet, "ip")}`);
    const reply = answer(packet);
    if (reply) {
      await tun.write(reply);
      written++;
      console.log(`TS → kernel   ${summarize(reply, "ip")}`);
    }
  }
}

function answer(packet: Uint8Array): Uint8Array | undefined {
  const layers = parsePacket(packet, "ip");
  const ip = layers.ipv4 ?? layers.ipv6;
  if (ip && layers.udp) {
    return buildUdp({
      source: ip.destination,
      destination: ip.source,
      sourcePort: layers.udp.destinationPort,
      destinationPort: layers.udp.sourcePort,
      payload: layers.payload,
    });
  }
  return undefined;
}

async function talk(local: string, remote: string): Promise<string> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 0 });
  try {
    const message = `hello from the kernel to ${remote}`;
    await socket.send(new TextEncoder().encode(message), {
      transport: "udp",
      hostname: remote,
      port: 7,
    });
    const [data, from] = await socket.receive();
    const peer = from as Deno.NetAddr;
    return `socket on ${local} got "${new TextDecoder().decode(data)}" back from ${peer.hostname}`;
  } finally {
    socket.close();
  }
}

const responder = respond();
const answers = [];
for (const [local, remote] of [["192.0.2.1", "192.0.2.7"], ["2001:db8::1", "2001:db8::7"]]) {
  answers.push(await talk(local, remote));
}
tun.close();
await responder;

console.log(`\n${answers.join("\n")}`);
console.log(`\n${read} packets read from the device, ${written} written back.`);
if (answers.length !== 2 || written < 2) Deno.exit(1);
