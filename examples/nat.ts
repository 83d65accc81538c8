// A userspace NAT router between two TUN devices: hosts behind the inside device reach the
// outside one from a single public address, as behind a home router or Linux's MASQUERADE.
//   sudo deno run --allow-ffi examples/nat.ts [options]
//     --inside NAME           the inside device (default nat-in)
//     --outside NAME          the outside device (default nat-out)
//     --inside-netns NS       put the inside device in this network namespace, the clients'
//     --outside-netns NS      and the outside one in this one (say, the server's)
//     --inside-host CIDR      an address for the inside namespace's end of the device, with a
//                             default route through it (repeat for IPv6), e.g. 192.0.2.2/24
//     --outside-host CIDR     an address for the outside end, e.g. 203.0.113.1/24: the public
//                             address must be on its network
//     --public ADDR           the NAT's public address, one per family (default 203.0.113.2;
//                             add e.g. 2001:db8:2::2 for NAT66)
//     --router ADDR           the NAT's inside address, one per family (default 192.0.2.1):
//                             source of its time-exceeded and too-big errors; answers ping
//     --inside-mtu N, --outside-mtu N   the devices' MTUs (default: the kernel's 1500)
//     --no-offload            open the devices without checksum and TCP segmentation
//                             offload (on by default: TCP then crosses as 64 KiB super-packets)
//     --verbose               a line per connection created and expired
//     --json                  those lines and the connection table as JSON, one object a line
//     --timeout SECONDS       stop after that long
// It prints "ready INSIDE OUTSIDE" once both devices are up. SIGUSR1 prints the connection
// table; Ctrl-C or SIGTERM prints it too, with counters, and exits 0. For example:
//   sudo ip netns add client && sudo ip netns add server
//   sudo deno run --allow-ffi examples/nat.ts --inside-netns client --inside-host 192.0.2.2/24 \
//     --outside-netns server --outside-host 203.0.113.1/24 --verbose &
//   sudo ip netns exec server iperf3 -s -B 203.0.113.1 &
//   sudo ip netns exec client iperf3 -c 203.0.113.1 -t 5   # the server sees 203.0.113.2
//
// The translation is examples/nat/masquerade.ts (connection table and timeouts in
// examples/nat/connection_table.ts): TCP, UDP and ICMP echo, with Linux conntrack's timeouts.
// The devices are read in batches into buffers allocated once; each packet is translated in
// place and the batch written on with one writeBatch(), both directions at once. With offload
// (the default), the devices hand over TCP as super-packets of up to 64 KiB behind a virtio-net
// header, their checksums left to the device: each is translated in place as one packet and
// written on with its header as it was, so the kernel segments it only where it must.
import { parseArgs } from "node:util";
import { TunError, TunInterface } from "../mod.ts";
import { VIRTIO_NET_HDR_SIZE } from "../packet/mod.ts";
import { Masquerade, type NatConnection, type NatEvent } from "./nat/masquerade.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    inside: { type: "string", default: "nat-in" },
    outside: { type: "string", default: "nat-out" },
    "inside-netns": { type: "string" },
    "outside-netns": { type: "string" },
    "inside-host": { type: "string", multiple: true, default: [] },
    "outside-host": { type: "string", multiple: true, default: [] },
    public: { type: "string", multiple: true, default: ["203.0.113.2"] },
    router: { type: "string", multiple: true, default: ["192.0.2.1"] },
    "inside-mtu": { type: "string" },
    "outside-mtu": { type: "string" },
    verbose: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    timeout: { type: "string", default: "0" },
    offload: { type: "boolean", default: true },
  },
  allowNegative: true,
});
const BATCH = 64;
// Room for the largest IP packet (and a virtio-net header): an MTU raised later must not cut
// packets.
const BUFFER_SIZE = 65535 + VIRTIO_NET_HDR_SIZE;
const OFFLOAD = { checksum: true, tso4: true, tso6: true };

/** Opens a device in its namespace with its hosts' addresses, up. */
function openDevice(
  name: string,
  netns: string | undefined,
  hosts: string[],
  mtu: string | undefined,
  defaultRoute: boolean,
): TunInterface {
  const routes = defaultRoute
    ? [...new Set(hosts.map((cidr) => cidr.includes(":") ? "::/0" : "0.0.0.0/0"))]
      .map((destination) => ({ destination }))
    : [];
  return TunInterface.open({
    name,
    netns,
    addresses: hosts,
    routes,
    mtu: mtu === undefined ? undefined : Number(mtu),
    up: true,
    ...(values.offload ? { vnetHeader: true, offload: OFFLOAD } : {}),
  });
}

function endpoint({ address, port }: { address: string; port: number }): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** One line of a connection, as conntrack -L would say it. */
function describe(c: NatConnection): string {
  return `${c.protocol} ${c.state} ${endpoint(c.inside)} > ${endpoint(c.remote)} as ` +
    `${endpoint(c.outside)}, ${c.packets.outbound} out ${c.packets.inbound} in, ` +
    `expires in ${c.expiresIn} s`;
}

function report(event: NatEvent): void {
  console.log(
    values.json
      ? JSON.stringify({ event: event.kind, ...event.connection })
      : `${event.kind} ${describe(event.connection)}`,
  );
}

function printTable(nat: Masquerade): void {
  const connections = nat.connections();
  if (values.json) {
    console.log(JSON.stringify({ connections }));
    return;
  }
  console.log(`connections ${connections.length}`);
  for (const connection of connections) console.log(`  ${describe(connection)}`);
}

/** Writes every packet; one refused because its link is down is dropped, as a wire would. */
async function writeAll(device: TunInterface, packets: Uint8Array[]): Promise<void> {
  for (let start = 0; start < packets.length;) {
    const batch = start === 0 ? packets : packets.slice(start);
    try {
      await device.writeBatch(batch);
      return;
    } catch (error) {
      if (!(error instanceof TunError && error.code === "EIO")) throw error;
      start += (error.written ?? 0) + 1;
    }
  }
}

const inside = openDevice(
  values.inside,
  values["inside-netns"],
  values["inside-host"],
  values["inside-mtu"],
  true,
);
let outside: TunInterface;
try {
  outside = openDevice(
    values.outside,
    values["outside-netns"],
    values["outside-host"],
    values["outside-mtu"],
    false,
  );
} catch (error) {
  inside.close();
  throw error;
}
const nat = new Masquerade({
  publicAddresses: values.public,
  routerAddresses: values.router,
  insideMtu: inside.mtu,
  outsideMtu: outside.mtu,
  onEvent: values.verbose ? report : undefined,
  vnetHeader: values.offload,
});

let stopping = false;
function stop(): void {
  stopping = true;
  inside.close();
  outside.close();
}

/** Moves packets from one device to the other through the NAT until either closes. */
async function relay(from: TunInterface, to: TunInterface, outbound: boolean): Promise<void> {
  const size = Math.max(BUFFER_SIZE, from.readBufferSize);
  const buffers = Array.from({ length: BATCH }, () => new Uint8Array(size));
  const sizes = new Uint32Array(BATCH);
  const forward: Uint8Array[] = [];
  const reply: Uint8Array[] = [];
  let count: number | null;
  while ((count = await from.readBatch(buffers, sizes)) !== null) {
    forward.length = 0;
    reply.length = 0;
    for (let i = 0; i < count; i++) {
      const packet = buffers[i].subarray(0, sizes[i]);
      if (outbound) nat.outbound(packet, forward, reply);
      else nat.inbound(packet, forward, reply);
    }
    if (forward.length > 0) await writeAll(to, forward);
    if (reply.length > 0) await writeAll(from, reply);
  }
}

const guard = (direction: Promise<void>) =>
  direction
    // A packet caught between the two devices closing is lost, not an error.
    .catch((error) => {
      if (!stopping) throw error;
    })
    .finally(stop);
const done = Promise.all([
  guard(relay(inside, outside, true)),
  guard(relay(outside, inside, false)),
]);

// Expired flows go once a second; the MTUs are read again then, in case they changed.
const ticker = setInterval(() => {
  nat.expire();
  if (stopping) return;
  try {
    nat.insideMtu = inside.mtu;
    nat.outsideMtu = outside.mtu;
  } catch {
    // A device deleted under us: the relays end on their own.
  }
}, 1000);
const showTable = () => printTable(nat);
Deno.addSignalListener("SIGUSR1", showTable);
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
const seconds = Number(values.timeout);
const timer = seconds > 0 ? setTimeout(stop, seconds * 1000) : 0;
console.log(`ready ${inside.name} ${outside.name}`);
try {
  await done;
} finally {
  clearInterval(ticker);
  clearTimeout(timer);
  Deno.removeSignalListener("SIGUSR1", showTable);
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
}
printTable(nat);
const { outbound, inbound, answered, dropped } = nat.stats;
console.log(
  values.json
    ? JSON.stringify({ stats: nat.stats })
    : `translated ${outbound} out, ${inbound} in; answered ${answered}; dropped ${
      Object.entries(dropped).map(([why, n]) => `${why} ${n}`).join(", ")
    }`,
);
