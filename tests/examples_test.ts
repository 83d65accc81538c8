/**
 * Runs every example as its own `deno run` process with the permissions
 * its header comment names, drives it with real traffic and stops it, so
 * that none of them can rot.
 */
import { assert, assertEquals, assertMatch, assertStrictEquals } from "./assert.ts";
import {
  interfaceExists,
  ipJson,
  kernelTest,
  type Namespace,
  namespace,
  sh,
  uniqueName,
  within,
} from "./kernel.ts";
import { Example } from "./example_process.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Waits until `address` is local on `device`. The kernel makes a new IPv6
 * address local a moment after adding it, on its addrconf work queue, and
 * drops what arrives for it until then (Ip6InAddrErrors).
 */
async function localAddress(device: string, address: string, run = sh): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (run(`ip -6 route show table local dev ${device}`).includes(`local ${address} `)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${address} never became local on ${device}`);
}

/** Runs ping without blocking the event loop; resolves to its output and success. */
async function ping(args: string): Promise<{ success: boolean; stdout: string }> {
  const output = await new Deno.Command("ping", { args: args.split(" "), stdin: "null" }).output();
  return { success: output.success, stdout: decoder.decode(output.stdout) };
}

kernelTest(
  "ping_responder answers ping and ping -6 for any address of its prefixes, and SIGTERM ends it with exit 0",
  async () => {
    const name = uniqueName("exping");
    await using example = new Example("ping_responder.ts", [
      "--name",
      name,
      "--address",
      "192.0.2.1/24",
      "--address",
      "2001:db8::1/64",
    ]);
    await example.line(/^answering pings on /);
    await localAddress(name, "2001:db8::1");
    for (const target of ["192.0.2.7", "192.0.2.200", "2001:db8::7", "2001:db8::abcd"]) {
      const result = await ping(`-c 2 -W 2 ${target}`);
      assertMatch(result.stdout, /2 received/, `ping ${target}`);
    }
    const { code, stderr } = await example.exit("SIGTERM");
    assertStrictEquals(code, 0, stderr);
    assertEquals(example.lines.at(-1), "answered 8 pings");
    assert(!interfaceExists(name), "closing the device removes it");
  },
);

kernelTest("ping_responder exits 0 by itself after --count replies", async () => {
  const name = uniqueName("excount");
  await using example = new Example("ping_responder.ts", ["--name", name, "--count", "2"]);
  await example.line(/^answering pings on /);
  assertMatch((await ping("-c 2 -W 2 192.0.2.9")).stdout, /2 received/);
  const { code, stderr } = await example.exit();
  assertStrictEquals(code, 0, stderr);
  assertEquals(example.lines.at(-1), "answered 2 pings");
});

kernelTest(
  "tap_responder answers ARP, neighbour solicitations and pings for its own addresses only, and SIGINT ends it with exit 0",
  async () => {
    const name = uniqueName("extap");
    await using example = new Example("tap_responder.ts", ["--name", name]);
    await example.line(/^198\.51\.100\.2 and 2001:db8:1::2 are at 02:00:5e:10:00:02 on /);
    await localAddress(name, "2001:db8:1::1");
    assertMatch((await ping("-c 2 -W 2 198.51.100.2")).stdout, /2 received/);
    assertMatch((await ping("-6 -c 2 -W 2 2001:db8:1::2")).stdout, /2 received/);
    // The kernel learnt the MAC from the ARP reply and the neighbour advertisement.
    const neighbours = ipJson<{ dst: string; lladdr?: string }[]>(`neigh show dev ${name}`);
    for (const address of ["198.51.100.2", "2001:db8:1::2"]) {
      const entry = neighbours.find((neighbour) => neighbour.dst === address);
      assertStrictEquals(entry?.lladdr, "02:00:5e:10:00:02", JSON.stringify(neighbours));
    }
    assert(!(await ping("-c 1 -W 1 198.51.100.3")).success, "an address it does not own");

    const { code, stderr } = await example.exit("SIGINT");
    assertStrictEquals(code, 0, stderr);
    assertEquals(example.lines.at(-1), "answered 4 pings");
  },
);

kernelTest(
  "udp_echo echoes datagrams from Deno sockets over IPv4 and IPv6 and exits 0 after --count",
  async () => {
    const name = uniqueName("exudp");
    await using example = new Example("udp_echo.ts", ["--name", name, "--count", "3"]);
    await example.line(/^echoing UDP on /);
    await localAddress(name, "2001:db8::1");
    const exchanges = [
      ["192.0.2.1", "192.0.2.50", 7, "over IPv4"],
      ["2001:db8::1", "2001:db8::50", 40900, "over IPv6"],
      ["192.0.2.1", "192.0.2.51", 40901, "x".repeat(1200)],
    ] as const;
    for (const [local, remote, port, text] of exchanges) {
      const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 0 });
      try {
        await socket.send(encoder.encode(text), { transport: "udp", hostname: remote, port });
        const [data, from] = await within(socket.receive(), 5000, `echo from ${remote}`);
        assertStrictEquals(decoder.decode(data), text);
        assertEquals(from, { transport: "udp", hostname: remote, port });
      } finally {
        socket.close();
      }
    }
    const { code, stderr } = await example.exit();
    assertStrictEquals(code, 0, stderr);
    assertEquals(example.lines.at(-1), "echoed 3 datagrams");
    assertMatch(example.lines.join("\n"), /IP6 2001:db8::50\.40900 > 2001:db8::1\.\d+: UDP/);
  },
);

/** Starts forward.ts, moves its devices into two namespaces and configures them. */
async function forwardBetween(
  left: Namespace,
  right: Namespace,
  args: string[],
  ipv6: boolean,
): Promise<{ example: Example; a: string; b: string }> {
  const example = new Example("forward.ts", [uniqueName("fwa"), uniqueName("fwb"), ...args]);
  try {
    const [, a, b] = await example.line(/^ready (\S+) (\S+)$/);
    sh(`ip link set ${a} netns ${left.name} && ip link set ${b} netns ${right.name}`);
    for (const [ns, device, host] of [[left, a, 1], [right, b, 2]] as const) {
      ns.sh(
        ipv6
          ? `ip addr add 2001:db8:2::${host}/64 dev ${device} nodad`
          : `sysctl -qw net.ipv6.conf.${device}.disable_ipv6=1`,
      );
      ns.sh(`ip addr add 198.51.100.${host}/24 dev ${device} && ip link set ${device} up`);
      if (ipv6) await localAddress(device, `2001:db8:2::${host}`, ns.sh);
    }
    return { example, a, b };
  } catch (error) {
    await example.exit("SIGKILL");
    throw error;
  }
}

kernelTest(
  "forward carries ping both ways between two namespaces, drops what meets a link that is down, and SIGTERM ends it with exit 0",
  async () => {
    using left = namespace("exleft");
    using right = namespace("exright");
    const { example, a, b } = await forwardBetween(left, right, [], true);
    await using _ = example;
    assertMatch(left.sh("ping -c 2 -W 2 198.51.100.2"), /2 received/);
    assertMatch(right.sh("ping -6 -c 2 -W 2 2001:db8:2::1"), /2 received/);
    // A link that goes down drops what reaches it and the forwarding goes on.
    right.sh(`ip link set ${b} down`);
    left.sh("! ping -c 1 -W 1 198.51.100.2");
    right.sh(`ip link set ${b} up`);
    assertMatch(left.sh("ping -c 1 -W 2 198.51.100.2"), /1 received/);

    const { code, stderr } = await example.exit("SIGTERM");
    assertStrictEquals(code, 0, stderr);
    const output = example.lines.join("\n");
    assertMatch(
      output,
      new RegExp(`${a} > ${b}  IP 198\\.51\\.100\\.1 > 198\\.51\\.100\\.2: ICMP echo request`),
    );
    assertMatch(
      output,
      new RegExp(`${b} > ${a}  IP 198\\.51\\.100\\.2 > 198\\.51\\.100\\.1: ICMP echo reply`),
    );
    assertMatch(
      output,
      new RegExp(`${b} > ${a}  IP6 2001:db8:2::2 > 2001:db8:2::1: ICMP6, echo request`),
    );
    assertMatch(output, new RegExp(`${a} > ${b}  dropped, link down: IP 198\\.51\\.100\\.1 > `));
    assert(!left.sh("ip -br link").includes(a) && !right.sh("ip -br link").includes(b));
  },
);

kernelTest(
  "forward exits 0 by itself after --count packets, the last one delivered",
  async () => {
    using left = namespace("excl");
    using right = namespace("excr");
    // IPv6 off, so that the kernel sends nothing but the ping: request and reply.
    const { example } = await forwardBetween(left, right, ["--count", "2"], false);
    await using _ = example;
    assertMatch(left.sh("ping -c 1 -W 2 198.51.100.2"), /1 received/);
    const { code, stderr } = await example.exit();
    assertStrictEquals(code, 0, stderr);
    assertEquals(example.lines.at(-1), "forwarded 2 packets");
  },
);

/** tcpdump's reading of a pcap file: its lines, and its complaint if any. */
function tcpdump(path: string): { lines: string[]; stderr: string } {
  const output = new Deno.Command("tcpdump", { args: ["-r", path, "-nn", "-t"] }).outputSync();
  assert(output.success, decoder.decode(output.stderr));
  return {
    lines: decoder.decode(output.stdout).split("\n").filter((line) => line !== ""),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * What a summary line and tcpdump's line agree on: the addresses (with
 * ports) of an IP packet, or what an ARP message asks or tells.
 */
function gist(line: string): string {
  const found = /^IP6? (\S+ > \S+):/.exec(line)?.[1] ?? /^ARP, (.*), length \d+$/.exec(line)?.[1];
  if (found === undefined) throw new Error(`neither IP nor ARP: ${line}`);
  return found;
}

kernelTest(
  "capture records a TUN device's traffic to a pcap file tcpdump reads packet for packet, and SIGTERM leaves it complete",
  async () => {
    const path = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      const name = uniqueName("excap");
      await using example = new Example(
        "capture.ts",
        [path, "--name", name, "--address", "192.0.2.1/24", "--address", "2001:db8::1/64"],
        ["--allow-ffi", "--allow-write"],
      );
      await example.line(/^capturing /);
      await ping("-c 1 -W 0.2 192.0.2.7");
      for (const [local, remote] of [["192.0.2.1", "192.0.2.8"], ["2001:db8::1", "2001:db8::8"]]) {
        const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 41000 });
        try {
          await socket.send(encoder.encode("captured"), {
            transport: "udp",
            hostname: remote,
            port: 41001,
          });
        } finally {
          socket.close();
        }
      }
      await example.line(/^IP6 2001:db8::1\.41000 > 2001:db8::8\.41001: UDP, length 8$/);
      const { code, stderr } = await example.exit("SIGTERM");
      assertStrictEquals(code, 0, stderr);

      const summaries = example.lines.slice(1, -1);
      assertEquals(example.lines.at(-1), `captured ${summaries.length} packets`);
      const dump = tcpdump(path);
      assertMatch(dump.stderr, /link-type RAW/);
      assertStrictEquals(dump.lines.length, summaries.length, dump.lines.join("\n"));
      assertEquals(dump.lines.map(gist), summaries.map(gist));
      const text = dump.lines.join("\n");
      assertMatch(text, /IP 192\.0\.2\.1 > 192\.0\.2\.7: ICMP echo request/);
      assertMatch(text, /IP 192\.0\.2\.1\.41000 > 192\.0\.2\.8\.41001: UDP, length 8/);
      assertMatch(text, /IP6 2001:db8::1\.41000 > 2001:db8::8\.41001: UDP, length 8/);
      assert(!/truncated|malformed|\[\|/.test(text), text);
    } finally {
      await Deno.remove(path);
    }
  },
);

kernelTest(
  "capture --tap records Ethernet frames and stops after --count with exactly that many in the file",
  async () => {
    const path = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      const name = uniqueName("excapt");
      await using example = new Example(
        "capture.ts",
        [path, "--name", name, "--tap", "--address", "198.51.100.1/24", "--count", "3"],
        ["--allow-ffi", "--allow-write"],
      );
      await example.line(/^capturing /);
      // Each unknown neighbour is an ARP request: three frames at least.
      const socket = Deno.listenDatagram({ transport: "udp", hostname: "198.51.100.1", port: 0 });
      try {
        for (const host of [11, 12, 13]) {
          await socket.send(encoder.encode("x"), {
            transport: "udp",
            hostname: `198.51.100.${host}`,
            port: 9,
          });
        }
      } finally {
        socket.close();
      }
      const { code, stderr } = await example.exit();
      assertStrictEquals(code, 0, stderr);
      assertEquals(example.lines.at(-1), "captured 3 packets");
      const dump = tcpdump(path);
      assertMatch(dump.stderr, /link-type EN10MB/);
      const summaries = example.lines.slice(1, -1);
      assertStrictEquals(dump.lines.length, 3, dump.lines.join("\n"));
      assertEquals(dump.lines.map(gist), summaries.map(gist));
    } finally {
      await Deno.remove(path);
    }
  },
);

kernelTest("capture stops after --timeout and leaves a file tcpdump reads", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const name = uniqueName("excapto");
    await using example = new Example(
      "capture.ts",
      [path, "--name", name, "--address", "192.0.2.1/24", "--timeout", "0.5"],
      ["--allow-ffi", "--allow-write"],
    );
    const started = Date.now();
    const { code, stderr } = await example.exit();
    assertStrictEquals(code, 0, stderr);
    assert(Date.now() - started < 5000, "it stopped on its own");
    const [, count] = example.lines.at(-1)!.match(/^captured (\d+) packets$/)!;
    assertStrictEquals(tcpdump(path).lines.length, Number(count));
  } finally {
    await Deno.remove(path);
  }
});
