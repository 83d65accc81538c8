/**
 * examples/forward.ts with the options the benchmark uses: one Worker per
 * queue of multi-queue devices, and offload, each driven by real traffic
 * between two network namespaces. (tests/examples_test.ts covers it without
 * options.)
 */
import { assert, assertMatch, assertStrictEquals } from "./assert.ts";
import { Example } from "./example_process.ts";
import { kernelTest, type Namespace, namespace, sh, uniqueName, within } from "./kernel.ts";

/** Starts examples/forward.ts, then moves and configures its devices (IPv6 off: only the test's packets). */
async function startForwarder(left: Namespace, right: Namespace, args: string[]): Promise<Example> {
  const [a, b] = [uniqueName("fxa"), uniqueName("fxb")];
  const forwarder = new Example("forward.ts", [a, b, ...args], ["--allow-ffi", "--allow-read"]);
  try {
    await forwarder.line(new RegExp(`^ready ${a} ${b}$`), 15_000);
    sh(`ip link set ${a} netns ${left.name} && ip link set ${b} netns ${right.name}`);
    for (const [ns, device, host] of [[left, a, 1], [right, b, 2]] as const) {
      ns.sh(`sysctl -qw net.ipv6.conf.${device}.disable_ipv6=1`);
      ns.sh(`ip addr add 198.51.100.${host}/24 dev ${device} && ip link set ${device} up`);
    }
    return forwarder;
  } catch (error) {
    await forwarder.exit("SIGKILL");
    throw error;
  }
}

/** `ip -s -j link` counters of a device as its namespace sees them. */
function counters(ns: Namespace, device: string): { tx: { bytes: number; packets: number } } {
  return JSON.parse(ns.sh(`ip -s -j link show dev ${device}`))[0].stats64;
}

/** Datagrams the namespace's UDP received for ports nothing listens on (Udp NoPorts). */
function udpNoPorts(ns: Namespace): number {
  const [names, values] = ns.sh("grep ^Udp: /proc/net/snmp").trim().split("\n")
    .map((line) => line.split(/\s+/));
  return Number(values[names.indexOf("NoPorts")]);
}

kernelTest(
  "forward --queues 1 carries ping both ways through its Worker, and SIGTERM ends it with exit 0",
  async () => {
    using left = namespace("fxl");
    using right = namespace("fxr");
    await using forwarder = await startForwarder(left, right, ["--queues", "1"]);
    assertMatch(left.sh("ping -c 2 -W 2 198.51.100.2"), /2 received/);
    assertMatch(right.sh("ping -c 2 -W 2 198.51.100.1"), /2 received/);
    const { code, stderr } = await forwarder.exit("SIGTERM");
    assertStrictEquals(code, 0, stderr);
    const output = forwarder.lines.join("\n");
    assertMatch(output, /> \S+ queue 0 {2}IP 198\.51\.100\.1 > 198\.51\.100\.2: ICMP echo request/);
    assertMatch(output, /> \S+ queue 0 {2}IP 198\.51\.100\.2 > 198\.51\.100\.1: ICMP echo request/);
    assertStrictEquals(forwarder.lines.at(-1), "forwarded 8 packets");
  },
);

kernelTest(
  "forward --queues 2 spreads UDP flows over both Workers and every datagram arrives",
  async () => {
    using left = namespace("fxl");
    using right = namespace("fxr");
    await using forwarder = await startForwarder(left, right, ["--queues", "2"]);
    // Sixteen flows (one source port each) to a port nothing listens on: the kernel
    // hashes each flow to a queue, so both carry some (all on one: 2 in 65536).
    const before = udpNoPorts(right);
    const flows = 16;
    await within(
      left.deno(`
        for (let i = 0; i < ${flows}; i++) {
          const socket = Deno.listenDatagram({ transport: "udp", hostname: "198.51.100.1", port: 0 });
          await socket.send(new Uint8Array(8), { transport: "udp", hostname: "198.51.100.2", port: 9 });
          socket.close();
        }`),
      20_000,
      "sending the flows",
    );
    for (let i = 0; i < 100 && udpNoPorts(right) - before < flows; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assertStrictEquals(udpNoPorts(right) - before, flows, "datagrams that reached the right side");
    const { code, stderr } = await forwarder.exit("SIGTERM");
    assertStrictEquals(code, 0, stderr);
    const queues = new Set(
      forwarder.lines.flatMap((line) =>
        / queue (\d) {2}IP 198\.51\.100\.1\.\d+ > 198\.51\.100\.2\.9: UDP/.exec(line)?.[1] ?? []
      ),
    );
    assertStrictEquals(queues.size, 2, forwarder.lines.join("\n"));
  },
);

kernelTest(
  "forward --offload --quiet carries a TCP transfer whole, as super-packets larger than the MTU",
  async () => {
    using left = namespace("fxl");
    using right = namespace("fxr");
    await using forwarder = await startForwarder(left, right, ["--offload", "--quiet"]);
    const size = 4 << 20;
    const server = right.deno(`
      using listener = Deno.listen({ hostname: "198.51.100.2", port: 5001 });
      const connection = await listener.accept();
      let received = 0;
      for await (const chunk of connection.readable) received += chunk.length;
      console.log(received);`);
    const client = left.deno(`
      let connection;
      for (let i = 0; i < 100 && !connection; i++) {
        connection = await Deno.connect({ hostname: "198.51.100.2", port: 5001 })
          .catch(() => new Promise((resolve) => setTimeout(resolve, 50)));
      }
      const writer = connection.writable.getWriter();
      await writer.write(new Uint8Array(${size}).fill(7));
      await writer.close();`);
    const [received] = await within(Promise.all([server, client]), 30_000, "the transfer");
    assertStrictEquals(Number(received), size);
    // What the forwarder read from the sending side ("tx" of a TUN device is kernel to
    // program) came in packets larger than the 1500-byte MTU: TSO super-packets.
    const { tx } = counters(left, forwarder.lines[0].split(" ")[1]);
    assert(tx.bytes / tx.packets > 1500, `${tx.bytes} bytes in ${tx.packets} packets`);
    const { code, stderr } = await forwarder.exit("SIGTERM");
    assertStrictEquals(code, 0, stderr);
    assertStrictEquals(forwarder.lines.length, 2, "--quiet: no line per packet");
  },
);
