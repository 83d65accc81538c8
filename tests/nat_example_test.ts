/**
 * examples/nat.ts: its translation core (examples/nat/masquerade.ts) on
 * built packets, then the example itself as a process between a client
 * and a server namespace, driven by ping, Deno sockets and tcpdump.
 */
import { assert, assertEquals, assertMatch, assertStrictEquals } from "./assert.ts";
import { Example } from "./example_process.ts";
import { kernelTest, type Namespace, namespace, uniqueName, within } from "./kernel.ts";
import {
  buildIcmpEcho,
  buildIcmpError,
  buildIPv4,
  buildTcp,
  buildUdp,
  buildVirtioNetHeader,
  formatIp,
  gsoSplit,
  internetChecksum,
  parseIp,
  parsePacket,
  parseVirtioNetHeader,
  pseudoHeaderSum,
  Reassembler,
  type TcpFlags,
  VIRTIO_NET_HDR_SIZE,
  VirtioNetGsoType,
  VirtioNetHeaderFlag,
} from "../packet/mod.ts";
import {
  Masquerade,
  type MasqueradeOptions,
  type NatConnection,
  type NatEvent,
} from "../examples/nat/masquerade.ts";

const CLIENT = "192.0.2.2";
const ROUTER = "192.0.2.1";
const SERVER = "203.0.113.1";
const PUBLIC = "203.0.113.2";

/** A NAT on a clock the test moves, with the events it reported. */
function makeNat(options: Partial<MasqueradeOptions> = {}) {
  let clock = 1_000_000;
  const events: NatEvent[] = [];
  const nat = new Masquerade({
    publicAddresses: [PUBLIC, "2001:db8:2::2"],
    routerAddresses: [ROUTER, "2001:db8:1::1"],
    now: () => clock,
    onEvent: (event) => events.push(event),
    ...options,
  });
  return {
    nat,
    events,
    advance: (seconds: number) => void (clock += seconds * 1000),
    /** What the NAT sends on and answers for one packet. */
    out(packet: Uint8Array) {
      const forward: Uint8Array[] = [];
      const reply: Uint8Array[] = [];
      nat.outbound(packet, forward, reply);
      return { forward, reply };
    },
    in(packet: Uint8Array) {
      const forward: Uint8Array[] = [];
      const reply: Uint8Array[] = [];
      nat.inbound(packet, forward, reply);
      return { forward, reply };
    },
  };
}

function udp(source: string, sourcePort: number, destination: string, destinationPort: number) {
  return buildUdp({
    source,
    destination,
    sourcePort,
    destinationPort,
    payload: new TextEncoder().encode("hello"),
  });
}

function tcp(
  source: string,
  sourcePort: number,
  destination: string,
  destinationPort: number,
  flags: Partial<TcpFlags>,
  options?: Uint8Array,
) {
  return buildTcp({
    source,
    destination,
    sourcePort,
    destinationPort,
    sequence: 1,
    flags,
    options,
  });
}

/** The one connection of the table, without the counters that vary. */
function only(
  nat: Masquerade,
): Pick<NatConnection, "protocol" | "state" | "inside" | "outside" | "remote"> {
  const list = nat.connections();
  assertStrictEquals(list.length, 1, JSON.stringify(list));
  const { protocol, state, inside, outside, remote } = list[0];
  return { protocol, state, inside, outside, remote };
}

Deno.test("nat core: UDP leaves from the public address and only the answer comes back in", () => {
  const t = makeNat();
  const { forward, reply } = t.out(udp(CLIENT, 40000, SERVER, 53));
  assertStrictEquals(reply.length, 0);
  const sent = parsePacket(forward[0], "ip");
  assertEquals(
    [sent.ipv4?.source, sent.ipv4?.destination, sent.ipv4?.ttl, sent.udp?.sourcePort],
    [PUBLIC, SERVER, 63, 40000],
  );
  assert(sent.ipv4?.checksumValid && sent.udp?.checksumValid);

  const back = t.in(udp(SERVER, 53, PUBLIC, 40000)).forward;
  const received = parsePacket(back[0], "ip");
  assertEquals(
    [received.ipv4?.destination, received.udp?.destinationPort, received.udp?.checksumValid],
    [CLIENT, 40000, true],
  );
  // Another sender, or another port of the same one, is filtered out.
  assertStrictEquals(t.in(udp("203.0.113.9", 53, PUBLIC, 40000)).forward.length, 0);
  assertStrictEquals(t.in(udp(SERVER, 54, PUBLIC, 40000)).forward.length, 0);
  assertStrictEquals(t.nat.stats.dropped.noConnection, 2);
  assertEquals(only(t.nat), {
    protocol: "udp",
    state: "replied",
    inside: { address: CLIENT, port: 40000 },
    outside: { address: PUBLIC, port: 40000 },
    remote: { address: SERVER, port: 53 },
  });
});

Deno.test("nat core: two inside hosts on the same port get two public ports, answers find each", () => {
  const t = makeNat();
  const a = parsePacket(t.out(udp(CLIENT, 5000, SERVER, 53)).forward[0], "ip").udp!;
  const b = parsePacket(t.out(udp("192.0.2.3", 5000, SERVER, 53)).forward[0], "ip").udp!;
  assertStrictEquals(a.sourcePort, 5000);
  assert(b.sourcePort !== 5000 && b.checksumValid);
  const back = parsePacket(t.in(udp(SERVER, 53, PUBLIC, b.sourcePort)).forward[0], "ip");
  assertEquals([back.ipv4?.destination, back.udp?.destinationPort], ["192.0.2.3", 5000]);
  assert(back.udp?.checksumValid);
  // The same inside endpoint keeps its public port towards another server (RFC 4787 REQ-1).
  const again = parsePacket(t.out(udp("192.0.2.3", 5000, "203.0.113.7", 53)).forward[0], "ip");
  assertStrictEquals(again.udp?.sourcePort, b.sourcePort);
});

Deno.test("nat core: ICMP echo is mapped by its identifier", () => {
  const t = makeNat();
  const ping = (source: string) =>
    buildIcmpEcho({ source, destination: SERVER, identifier: 7, sequence: 1 });
  t.out(ping(CLIENT));
  const second = parsePacket(t.out(ping("192.0.2.3")).forward[0], "ip").icmp!;
  assert(second.identifier !== 7 && second.checksumValid);
  const answer = buildIcmpEcho({
    source: SERVER,
    destination: PUBLIC,
    identifier: second.identifier!,
    sequence: 1,
    reply: true,
  });
  const back = parsePacket(t.in(answer).forward[0], "ip");
  assertEquals([back.ipv4?.destination, back.icmp?.identifier], ["192.0.2.3", 7]);
  assert(back.icmp?.checksumValid);
  assertStrictEquals(t.nat.connections().length, 2);
});

Deno.test("nat core: TCP states set the timeouts, and an idle flow expires with an event", () => {
  const t = makeNat();
  const state = () => {
    const [c] = t.nat.connections();
    return `${c.state} ${c.expiresIn}`;
  };
  // A segment that does not open a connection opens no flow.
  assertStrictEquals(t.out(tcp(CLIENT, 40000, SERVER, 80, { ack: true })).forward.length, 0);
  t.out(tcp(CLIENT, 40000, SERVER, 80, { syn: true }));
  assertStrictEquals(state(), "syn-sent 120");
  t.in(tcp(SERVER, 80, PUBLIC, 40000, { syn: true, ack: true }));
  assertStrictEquals(state(), "syn-recv 60");
  t.out(tcp(CLIENT, 40000, SERVER, 80, { ack: true }));
  assertStrictEquals(state(), "established 432000");
  t.out(tcp(CLIENT, 40000, SERVER, 80, { fin: true, ack: true }));
  assertStrictEquals(state(), "fin-wait 120");
  t.in(tcp(SERVER, 80, PUBLIC, 40000, { fin: true, ack: true }));
  assertStrictEquals(state(), "time-wait 120");
  t.advance(119);
  assertStrictEquals(t.nat.expire(), 0);
  t.advance(1);
  assertStrictEquals(t.nat.expire(), 1);
  assertStrictEquals(t.nat.connections().length, 0);
  assertEquals(t.events.map((e) => `${e.kind} ${e.connection.state}`), [
    "created syn-sent",
    "expired time-wait",
  ]);
  // Gone with its flow, the mapping lets nothing in.
  assertStrictEquals(t.in(tcp(SERVER, 80, PUBLIC, 40000, { ack: true })).forward.length, 0);
});

Deno.test("nat core: UDP waits 30 s for an answer, 120 s once answered", () => {
  const t = makeNat();
  t.out(udp(CLIENT, 40000, SERVER, 53));
  assertStrictEquals(t.nat.connections()[0].expiresIn, 30);
  t.in(udp(SERVER, 53, PUBLIC, 40000));
  assertStrictEquals(t.nat.connections()[0].expiresIn, 120);
  t.advance(121);
  t.nat.expire();
  assertStrictEquals(t.nat.connections().length, 0);
});

Deno.test("nat core: the MSS of a SYN is clamped to the smaller MTU, both ways", () => {
  const t = makeNat({ outsideMtu: 1400 });
  const mss1460 = new Uint8Array([2, 4, 0x05, 0xb4]);
  const syn = parsePacket(
    t.out(tcp(CLIENT, 40000, SERVER, 80, { syn: true }, mss1460)).forward[0],
    "ip",
  );
  assertEquals([syn.tcp?.mss, syn.tcp?.checksumValid], [1360, true]);
  const synAck = tcp(SERVER, 80, PUBLIC, 40000, { syn: true, ack: true }, mss1460);
  const back = parsePacket(t.in(synAck).forward[0], "ip");
  assertEquals([back.tcp?.mss, back.tcp?.checksumValid], [1360, true]);
});

Deno.test("nat core: TTL 1 is answered with time exceeded from the router, quoting the packet", () => {
  const t = makeNat();
  const packet = buildUdp({
    source: CLIENT,
    destination: SERVER,
    sourcePort: 40000,
    destinationPort: 33434,
    ttl: 1,
  });
  const original = packet.slice();
  const { forward, reply } = t.out(packet);
  assertStrictEquals(forward.length, 0);
  const error = parsePacket(reply[0], "ip");
  assertEquals(
    [error.ipv4?.source, error.ipv4?.destination, error.icmp?.type, error.icmp?.code],
    [ROUTER, CLIENT, 11, 0],
  );
  assertEquals(error.payload.subarray(0, original.length), original);
  assertStrictEquals(t.nat.connections().length, 0);
});

Deno.test("nat core: too big for the outside MTU: DF gets fragmentation needed, no DF is fragmented", () => {
  const t = makeNat({ outsideMtu: 1400 });
  const big = buildUdp({
    source: CLIENT,
    destination: SERVER,
    sourcePort: 40000,
    destinationPort: 9,
    payload: new Uint8Array(1472),
  });
  const { forward, reply } = t.out(big.slice());
  assertStrictEquals(forward.length, 0);
  const error = parsePacket(reply[0], "ip");
  assertEquals([error.ipv4?.source, error.icmp?.type, error.icmp?.code], [ROUTER, 3, 4]);
  // The next-hop MTU is the low half of the ICMP header's second word.
  const at = error.ipv4!.headerLength + 6;
  assertStrictEquals((reply[0][at] << 8) | reply[0][at + 1], 1400);

  const loose = buildIPv4({
    source: CLIENT,
    destination: SERVER,
    protocol: 17,
    dontFragment: false,
    identification: 99,
    payload: big.subarray(20),
  });
  const pieces = t.out(loose).forward;
  assertStrictEquals(pieces.length, 2);
  for (const piece of pieces) {
    const { ipv4 } = parsePacket(piece, "ip");
    assert(piece.length <= 1400 && ipv4?.source === PUBLIC && ipv4.checksumValid);
  }
});

Deno.test("nat core: an ICMP error from outside reaches the inside host with its quote translated", () => {
  const t = makeNat();
  // A second host on the same port, so that the public port differs from the inside one.
  t.out(udp("192.0.2.3", 40000, SERVER, 9));
  const sent = t.out(udp(CLIENT, 40000, SERVER, 9)).forward[0];
  const unreachable = buildIcmpError(sent, {
    type: "destination-unreachable",
    code: 3,
    source: SERVER,
  });
  const back = t.in(unreachable).forward[0];
  const outer = parsePacket(back, "ip");
  assertEquals(
    [outer.ipv4?.destination, outer.icmp?.type, outer.icmp?.checksumValid],
    [CLIENT, 3, true],
  );
  const quote = parsePacket(outer.payload, "ip");
  assertEquals(
    [
      quote.ipv4?.source,
      quote.udp?.sourcePort,
      quote.ipv4?.checksumValid,
      quote.udp?.checksumValid,
    ],
    [CLIENT, 40000, true, true],
  );
});

Deno.test("nat core: a quote cut short by the router that sent it is translated too", () => {
  const t = makeNat();
  // A second host on the same port, so that the public port differs from the inside one.
  t.out(udp("192.0.2.3", 40000, SERVER, 9));
  const long = buildUdp({
    source: CLIENT,
    destination: SERVER,
    sourcePort: 40000,
    destinationPort: 9,
    payload: new Uint8Array(972),
  });
  const sent = t.out(long).forward[0];
  // A router quotes that 1000-byte datagram in a 576-byte error (RFC 1812).
  const error = buildIcmpError(sent, { type: "time-exceeded", source: "203.0.113.254" });
  assertStrictEquals(error.length, 576);
  const back = t.in(error).forward[0];
  const outer = parsePacket(back, "ip");
  assertEquals([outer.ipv4?.destination, outer.icmp?.checksumValid], [CLIENT, true]);
  // The quoted header still says 1000 bytes, and its checksum is right.
  const quote = outer.payload;
  assertEquals(
    [
      formatIp(quote.subarray(12, 16)),
      (quote[2] << 8) | quote[3],
      internetChecksum(quote.subarray(0, 20)),
    ],
    [CLIENT, 1000, 0],
  );
  assertStrictEquals((outer.payload[20] << 8) | outer.payload[21], 40000);
});

Deno.test("nat core: IPv6 is masqueraded too (NAT66), and too big gets packet too big", () => {
  const t = makeNat({ outsideMtu: 1280 });
  const sent = parsePacket(
    t.out(udp("2001:db8:1::2", 40000, "2001:db8:2::1", 53)).forward[0],
    "ip",
  );
  assertEquals(
    [sent.ipv6?.source, sent.ipv6?.hopLimit, sent.udp?.checksumValid],
    ["2001:db8:2::2", 63, true],
  );
  const back = parsePacket(t.in(udp("2001:db8:2::1", 53, "2001:db8:2::2", 40000)).forward[0], "ip");
  assertEquals([back.ipv6?.destination, back.udp?.checksumValid], ["2001:db8:1::2", true]);
  const big = buildUdp({
    source: "2001:db8:1::2",
    destination: "2001:db8:2::1",
    sourcePort: 40000,
    destinationPort: 53,
    payload: new Uint8Array(1300),
  });
  const error = parsePacket(t.out(big).reply[0], "ip");
  assertEquals([error.ipv6?.source, error.icmp?.type], ["2001:db8:1::1", 2]);
  // Link-local and multicast stay on their link.
  const solicitation = buildIcmpEcho({
    source: "fe80::1",
    destination: "ff02::2",
    identifier: 1,
    sequence: 1,
  });
  assertStrictEquals(t.out(solicitation).forward.length, 0);
});

// ---- The core behind virtio-net headers, as with offload ----

const PLAIN = new Uint8Array(VIRTIO_NET_HDR_SIZE);

/** `packet` behind `header` (a plain one by default), as a device with offload hands it over. */
function framed(packet: Uint8Array, header: Uint8Array = PLAIN): Uint8Array {
  const bytes = new Uint8Array(VIRTIO_NET_HDR_SIZE + packet.length);
  bytes.set(header);
  bytes.set(packet, VIRTIO_NET_HDR_SIZE);
  return bytes;
}

/**
 * A TCP super-packet of `payload` bytes as the kernel reads it out with
 * TSO: NEEDS_CSUM, the checksum field holding the folded pseudo-header sum.
 */
function superPacket(
  source: string,
  sourcePort: number,
  destination: string,
  destinationPort: number,
  payload: number,
  dontFragment = true,
): Uint8Array {
  const segment = buildTcp({
    source,
    destination,
    sourcePort,
    destinationPort,
    sequence: 1000,
    flags: { ack: true, psh: true },
    payload: new Uint8Array(payload).map((_, i) => i * 13),
  });
  const packet = buildIPv4({
    source,
    destination,
    protocol: 6,
    dontFragment,
    payload: segment.subarray(20),
  });
  let sum = pseudoHeaderSum({
    source: parseIp(source),
    destination: parseIp(destination),
    protocol: 6,
    length: packet.length - 20,
  });
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  packet[36] = sum >> 8;
  packet[37] = sum;
  const header = buildVirtioNetHeader({
    flags: VirtioNetHeaderFlag.NEEDS_CSUM,
    gsoType: VirtioNetGsoType.TCPV4,
    headerLength: 40,
    gsoSize: 1448,
    checksumStart: 20,
    checksumOffset: 16,
  });
  return framed(packet, header);
}

/** A NAT taking and giving packets behind virtio-net headers, with the inside flow opened. */
function offloadNat(options: Partial<MasqueradeOptions> = {}) {
  const t = makeNat({ vnetHeader: true, ...options });
  const syn = t.out(framed(tcp(CLIENT, 40000, SERVER, 80, { syn: true }))).forward[0];
  assertEquals(syn.subarray(0, VIRTIO_NET_HDR_SIZE), PLAIN);
  t.in(framed(tcp(SERVER, 80, PUBLIC, 40000, { syn: true, ack: true })));
  return t;
}

Deno.test("nat core with virtio-net headers: a TSO super-packet is translated in place and keeps its header", () => {
  const t = offloadNat();
  const read = superPacket(CLIENT, 40000, SERVER, 80, 10_000);
  const header = read.slice(0, VIRTIO_NET_HDR_SIZE);
  const { forward, reply } = t.out(read);
  assertStrictEquals(reply.length, 0);
  // The very bytes read, header and all: written on as they are.
  assertStrictEquals(forward[0].buffer, read.buffer);
  assertEquals(forward[0].subarray(0, VIRTIO_NET_HDR_SIZE), header);
  // Segmented and completed as the device would, every segment is a right translation.
  const segments = gsoSplit(
    forward[0].subarray(VIRTIO_NET_HDR_SIZE),
    parseVirtioNetHeader(header),
    1500,
  );
  assertStrictEquals(segments.length, 7);
  for (const segment of segments) {
    const { ipv4, tcp } = parsePacket(segment, "ip");
    assertEquals(
      [ipv4?.source, ipv4?.ttl, ipv4?.checksumValid, tcp?.sourcePort, tcp?.checksumValid],
      [PUBLIC, 63, true, 40000, true],
    );
  }
  // The answer comes back in as a super-packet too.
  const back = t.in(superPacket(SERVER, 80, PUBLIC, 40000, 3000)).forward[0];
  const [first] = gsoSplit(
    back.subarray(VIRTIO_NET_HDR_SIZE),
    parseVirtioNetHeader(back),
    1500,
  );
  const answer = parsePacket(first, "ip");
  assertEquals([answer.ipv4?.destination, answer.tcp?.checksumValid], [CLIENT, true]);
  assertEquals(t.nat.connections()[0].bytes, { outbound: 40 + 10_040, inbound: 40 + 3040 });
});

Deno.test("nat core with virtio-net headers: too big is judged by the segments, not the super-packet", () => {
  const t = offloadNat({ outsideMtu: 1400 });
  // Segments of 1448 bytes of data make 1488-byte packets: too big for 1400.
  const { forward, reply } = t.out(superPacket(CLIENT, 40000, SERVER, 80, 5000));
  assertStrictEquals(forward.length, 0);
  const error = parsePacket(reply[0].subarray(VIRTIO_NET_HDR_SIZE), "ip");
  assertEquals([error.ipv4?.source, error.icmp?.type, error.icmp?.code], [ROUTER, 3, 4]);
  assertEquals(reply[0].subarray(0, VIRTIO_NET_HDR_SIZE), PLAIN);
  // Without DF it is cut into segments, each fragmented, with checksums complete.
  const pieces = t.out(superPacket(CLIENT, 40000, SERVER, 80, 5000, false)).forward;
  // 4 segments (3 × 1448 + 656 bytes of data), the first 3 in two fragments each.
  assertStrictEquals(pieces.length, 7);
  const reassembler = new Reassembler();
  let whole = 0;
  for (const piece of pieces) {
    assertEquals(piece.subarray(0, VIRTIO_NET_HDR_SIZE), PLAIN);
    assert(piece.length - VIRTIO_NET_HDR_SIZE <= 1400);
    const datagram = reassembler.push(piece.slice(VIRTIO_NET_HDR_SIZE));
    if (datagram === undefined) continue;
    const { ipv4, tcp } = parsePacket(datagram, "ip");
    assertEquals([ipv4?.source, tcp?.checksumValid], [PUBLIC, true]);
    whole++;
  }
  assertStrictEquals(whole, 4);
  // A super-packet whose segments fit passes whole, though it is far longer than the MTU.
  const fits = superPacket(CLIENT, 40000, SERVER, 80, 5000);
  fits[4] = 1300 & 0xff;
  fits[5] = 1300 >> 8;
  assertStrictEquals(t.out(fits).forward[0].buffer, fits.buffer);
});

Deno.test("nat core with virtio-net headers: a checksum left to the device without GSO is translated as a partial sum", () => {
  const t = makeNat({ vnetHeader: true });
  const datagram = udp(CLIENT, 40000, SERVER, 53);
  let sum = pseudoHeaderSum({
    source: parseIp(CLIENT),
    destination: parseIp(SERVER),
    protocol: 17,
    length: datagram.length - 20,
  });
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  datagram[26] = sum >> 8;
  datagram[27] = sum;
  const header = buildVirtioNetHeader({
    flags: VirtioNetHeaderFlag.NEEDS_CSUM,
    checksumStart: 20,
    checksumOffset: 6,
  });
  const out = t.out(framed(datagram, header)).forward[0];
  assertEquals(out.subarray(0, VIRTIO_NET_HDR_SIZE), header);
  const [complete] = gsoSplit(out.subarray(VIRTIO_NET_HDR_SIZE), parseVirtioNetHeader(out), 1500);
  const { ipv4, udp: translated } = parsePacket(complete, "ip");
  assertEquals([ipv4?.source, ipv4?.checksumValid, translated?.checksumValid], [
    PUBLIC,
    true,
    true,
  ]);
});

Deno.test("nat core with virtio-net headers: echo replies and ICMP errors the NAT builds get a plain header", () => {
  const t = makeNat({ vnetHeader: true });
  const ping = buildIcmpEcho({ source: CLIENT, destination: ROUTER, identifier: 7, sequence: 1 });
  const echo = t.out(framed(ping)).reply[0];
  assertEquals(echo.subarray(0, VIRTIO_NET_HDR_SIZE), PLAIN);
  assertEquals(parsePacket(echo.subarray(VIRTIO_NET_HDR_SIZE), "ip").icmp?.type, 0);
  const expiring = buildUdp({
    source: CLIENT,
    destination: SERVER,
    sourcePort: 40000,
    destinationPort: 33434,
    ttl: 1,
  });
  const error = t.out(framed(expiring)).reply[0];
  assertEquals(error.subarray(0, VIRTIO_NET_HDR_SIZE), PLAIN);
  assertEquals(parsePacket(error.subarray(VIRTIO_NET_HDR_SIZE), "ip").icmp?.type, 11);
  // Shorter than a header: dropped as malformed.
  assertStrictEquals(t.out(new Uint8Array(4)).forward.length, 0);
  assertStrictEquals(t.nat.stats.dropped.malformed, 1);
});

// ---- The example as a process, between two namespaces ----

/** Each kernel test runs with the devices' offload (the default) and without. */
const MODES: { label: string; args: string[] }[] = [
  { label: "with offload", args: [] },
  { label: "without offload", args: ["--no-offload"] },
];

/** Starts examples/nat.ts with its devices in `client` and `server`, waiting for "ready". */
async function startNat(
  client: Namespace,
  server: Namespace,
  args: string[] = [],
): Promise<Example> {
  const [inside, outside] = [uniqueName("natin"), uniqueName("natout")];
  const nat = new Example("nat.ts", [
    "--inside",
    inside,
    "--outside",
    outside,
    "--inside-netns",
    client.name,
    "--outside-netns",
    server.name,
    "--inside-host",
    `${CLIENT}/24`,
    "--outside-host",
    `${SERVER}/24`,
    "--json",
    "--verbose",
    ...args,
  ]);
  await nat.line(new RegExp(`^ready ${inside} ${outside}$`), 15_000);
  return nat;
}

/** The process whose command line names `device` (unique to one run): the NAT. */
function pidOf(device: string): number {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      if (argv.some((arg) => arg.endsWith("examples/nat.ts")) && argv.includes(device)) {
        return Number(entry.name);
      }
    } catch {
      // It exited while we looked.
    }
  }
  throw new Error(`no nat.ts process for ${device}`);
}

/** The connection table the NAT prints on SIGUSR1 (the n-th one it printed, counting from 1). */
async function table(nat: Example, n: number): Promise<NatConnection[]> {
  const before = nat.lines.length;
  Deno.kill(pidOf(nat.lines[0].split(" ")[1]), "SIGUSR1");
  for (let i = 0; i < 250; i++) {
    const tables = nat.lines.filter((line) => line.startsWith(`{"connections"`));
    if (tables.length >= n) return JSON.parse(tables[n - 1]).connections;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no table after SIGUSR1:\n${nat.lines.slice(before).join("\n")}`);
}

for (const mode of MODES) {
  kernelTest(
    `nat carries TCP, UDP and ping from the client to the server from the public address, and lists the three flows (${mode.label})`,
    async () => {
      using client = namespace("natc");
      using server = namespace("nats");
      await using nat = await startNat(client, server, mode.args);
      const size = 1 << 20;
      const tcpServer = server.deno(`
      using listener = Deno.listen({ hostname: "${SERVER}", port: 5001 });
      const connection = await listener.accept();
      let received = 0;
      for await (const chunk of connection.readable) received += chunk.length;
      console.log(connection.remoteAddr.hostname, received);`);
      const tcpClient = client.deno(`
      let connection;
      for (let i = 0; i < 100 && !connection; i++) {
        connection = await Deno.connect({ hostname: "${SERVER}", port: 5001 })
          .catch(() => new Promise((resolve) => setTimeout(resolve, 50)));
      }
      const writer = connection.writable.getWriter();
      await writer.write(new Uint8Array(${size}).fill(7));
      await writer.close();`);
      const [seen] = await within(Promise.all([tcpServer, tcpClient]), 30_000, "the TCP transfer");
      assertStrictEquals(seen.trim(), `${PUBLIC} ${size}`);

      const udpServer = server.deno(`
      const socket = Deno.listenDatagram({ transport: "udp", hostname: "${SERVER}", port: 5353 });
      const [data, from] = await socket.receive();
      await socket.send(data, from);
      console.log(from.hostname);
      socket.close();`);
      const udpClient = client.deno(`
      const socket = Deno.listenDatagram({ transport: "udp", hostname: "${CLIENT}", port: 40053 });
      const target = { transport: "udp", hostname: "${SERVER}", port: 5353 };
      const received = socket.receive();
      let answer;
      // Until the server listens, the datagram finds a closed port: send again.
      for (let i = 0; i < 50 && !answer; i++) {
        await socket.send(new TextEncoder().encode("ping"), target);
        answer = await Promise.race([received, new Promise((resolve) => setTimeout(resolve, 200))]);
      }
      console.log(new TextDecoder().decode(answer[0]));
      socket.close();`);
      const [from, echoed] = await within(
        Promise.all([udpServer, udpClient]),
        20_000,
        "the UDP exchange",
      );
      assertStrictEquals(from.trim(), PUBLIC);
      assertStrictEquals(echoed.trim(), "ping");

      assertMatch(client.sh(`ping -c 2 -W 2 ${SERVER}`), /2 received/);

      const connections = await table(nat, 1);
      // Of each protocol, the flow that carried the most: a connect() that came before the
      // server listened was reset, and left a flow of its own.
      const find = (protocol: string) =>
        connections.filter((c) => c.protocol === protocol)
          .sort((a, b) => b.packets.outbound - a.packets.outbound)[0];
      const tcp = find("tcp");
      assertEquals([tcp?.inside.address, tcp?.outside.address, tcp?.remote], [
        CLIENT,
        PUBLIC,
        { address: SERVER, port: 5001 },
      ]);
      assertEquals([
        find("udp")?.inside,
        find("udp")?.outside,
        find("udp")?.remote,
        find("udp")?.state,
      ], [
        { address: CLIENT, port: 40053 },
        { address: PUBLIC, port: 40053 },
        { address: SERVER, port: 5353 },
        "replied",
      ]);
      const icmp = find("icmp");
      assertEquals([icmp?.inside.address, icmp?.remote, icmp?.packets], [
        CLIENT,
        { address: SERVER, port: 0 },
        { outbound: 2, inbound: 2 },
      ]);
      // The transfer's connection is closing or closed; each flow was announced as a JSON line.
      assert(tcp.bytes.outbound > size, JSON.stringify(tcp));
      assert(["fin-wait", "time-wait", "close"].includes(tcp.state), tcp.state);
      const created = nat.lines.filter((line) => line.startsWith(`{"event":"created"`))
        .map((line) => JSON.parse(line).protocol);
      assertEquals(new Set(created), new Set(["tcp", "udp", "icmp"]));

      const { code, stderr } = await nat.exit("SIGTERM");
      assertStrictEquals(code, 0, stderr);
      assertStrictEquals(JSON.parse(nat.lines.at(-2)!).connections.length, connections.length);
      assert(JSON.parse(nat.lines.at(-1)!).stats.outbound > 0);
    },
  );
}

for (const mode of MODES) {
  kernelTest(
    `nat answers TTL expiry and DF packets too big for the outside MTU, and passes ICMP errors from outside back in (${mode.label})`,
    async () => {
      using client = namespace("natc");
      using server = namespace("nats");
      await using nat = await startNat(client, server, [...mode.args, "--outside-mtu", "1400"]);
      const run = (command: string) => client.sh(`${command} || true`);
      assertMatch(
        run(`ping -c 1 -t 1 -W 2 ${SERVER}`),
        new RegExp(`From ${ROUTER.replaceAll(".", "\\.")} .*Time to live exceeded`),
      );
      assertMatch(run(`ping -c 1 -M do -s 1400 -W 2 ${SERVER}`), /mtu ?= ?1400/i);
      // Without DF the NAT fragments on the way out and reassembles the answer's fragments.
      assertMatch(run(`ping -c 1 -M dont -s 1400 -W 2 ${SERVER}`), /1 received/);
      assertMatch(run(`ping -c 1 -W 2 ${ROUTER}`), /1 received/);
      // A router outside with no way on answers "unreachable" to the public address; the NAT
      // hands it to the client, whose ping matches the quoted request to its own.
      server.sh("sysctl -qw net.ipv4.ip_forward=1 && ip route add unreachable 198.51.100.0/24");
      assertMatch(
        run("ping -c 1 -W 2 198.51.100.1"),
        new RegExp(`From ${SERVER.replaceAll(".", "\\.")} .*Unreachable`),
      );
      const { code, stderr } = await nat.exit("SIGTERM");
      assertStrictEquals(code, 0, stderr);
    },
  );
}

for (const mode of MODES) {
  kernelTest(
    `nat clamps the MSS of SYNs to the outside MTU (tcpdump on the server's side) (${mode.label})`,
    async () => {
      using client = namespace("natc");
      using server = namespace("nats");
      await using nat = await startNat(client, server, [...mode.args, "--outside-mtu", "1400"]);
      const device = nat.lines[0].split(" ")[2];
      const tcpdump = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          server.name,
          "timeout",
          "20",
          "tcpdump",
          "-nn",
          "-l",
          "-c",
          "1",
          "-i",
          device,
          "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0",
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stdout = new Response(tcpdump.stdout).text();
      const reader = tcpdump.stderr.pipeThrough(new TextDecoderStream()).getReader();
      for (let seen = ""; !seen.includes("listening on");) {
        const { value, done } = await within(reader.read(), 10_000, "tcpdump starting");
        if (done) throw new Error(`tcpdump ended: ${seen}`);
        seen += value;
      }
      const drained = (async () => {
        while (!(await reader.read()).done);
      })();
      await client.deno(`
    try {
      (await Deno.connect({ hostname: "${SERVER}", port: 9 })).close();
    } catch {
      // Nothing listens: the SYN is what counts.
    }`);
      const line = await within(stdout, 20_000, "tcpdump's line");
      await Promise.all([tcpdump.status, drained]);
      assertMatch(
        line,
        new RegExp(`IP ${PUBLIC.replaceAll(".", "\\.")}\\.\\d+ > .*mss 1360[,\\]]`),
      );
    },
  );
}

/**
 * Script lines that define `data(n, seed)` (n pseudo-random bytes), `sha256(bytes)` (hex),
 * `writeAll(connection, bytes)` and `readAll(connection)` (to EOF).
 */
const DATA_HELPERS = `
  const data = (n, seed) => {
    const bytes = new Uint8Array(n);
    for (let i = 0, x = seed; i < n; i++) bytes[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    return bytes;
  };
  const sha256 = async (bytes) => Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const writeAll = async (connection, bytes) => {
    for (let at = 0; at < bytes.length;) at += await connection.write(bytes.subarray(at));
  };
  const readAll = async (connection) => {
    let all = new Uint8Array(1 << 16);
    let length = 0;
    for (let n; (n = await connection.read(all.subarray(length))) !== null;) {
      length += n;
      if (length === all.length) {
        const more = new Uint8Array(all.length * 2);
        more.set(all);
        all = more;
      }
    }
    return all.subarray(0, length);
  };`;

kernelTest(
  "nat with offload carries a TCP transfer intact both ways as super-packets, and the server sees the public address",
  async () => {
    using client = namespace("natc");
    using server = namespace("nats");
    await using nat = await startNat(client, server);
    const [up, down] = [8 << 20, 4 << 20];
    const tcpServer = server.deno(`${DATA_HELPERS}
      using listener = Deno.listen({ hostname: "${SERVER}", port: 5001 });
      const connection = await listener.accept();
      const received = await readAll(connection);
      await writeAll(connection, data(${down}, 2));
      await connection.closeWrite();
      console.log(connection.remoteAddr.hostname, received.length, await sha256(received));
      connection.close();`);
    const tcpClient = client.deno(`${DATA_HELPERS}
      let connection;
      for (let i = 0; i < 100 && !connection; i++) {
        connection = await Deno.connect({ hostname: "${SERVER}", port: 5001 })
          .catch(() => new Promise((resolve) => setTimeout(resolve, 50)));
      }
      const sent = data(${up}, 1);
      await writeAll(connection, sent);
      await connection.closeWrite();
      const answer = await readAll(connection);
      connection.close();
      const expected = await sha256(data(${down}, 2));
      console.log(await sha256(sent), answer.length, await sha256(answer), expected);`);
    const [seen, got] = await within(
      Promise.all([tcpServer, tcpClient]),
      60_000,
      "the TCP transfer",
    );
    const [from, received, receivedHash] = seen.trim().split(" ");
    const [sentHash, answered, answerHash, expectedAnswer] = got.trim().split(" ");
    assertEquals([from, Number(received), receivedHash], [PUBLIC, up, sentHash]);
    assertEquals([Number(answered), answerHash], [down, expectedAnswer]);
    // The flow moved in super-packets: far more bytes per packet than an MTU holds.
    const flow = (await table(nat, 1)).filter((c) => c.protocol === "tcp")
      .sort((a, b) => b.bytes.outbound - a.bytes.outbound)[0];
    assert(flow.bytes.outbound > up && flow.bytes.inbound > down, JSON.stringify(flow));
    assert(flow.bytes.outbound / flow.packets.outbound > 3000, JSON.stringify(flow));
    assert(flow.bytes.inbound / flow.packets.inbound > 1500, JSON.stringify(flow));
    const { code, stderr } = await nat.exit("SIGTERM");
    assertStrictEquals(code, 0, stderr);
  },
);

/** Waits until the namespace's IPv6 `address` is local (the kernel adds it a moment later). */
async function localAddress(ns: Namespace, address: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (ns.sh("ip -6 route show table local").includes(`local ${address} `)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${address} never became local in ${ns.name}`);
}

for (const mode of MODES) {
  kernelTest(
    `nat masquerades IPv6 too (NAT66): ping -6 and a TCP connection leave from the public address (${mode.label})`,
    async () => {
      using client = namespace("natc");
      using server = namespace("nats");
      await using nat = await startNat(client, server, [
        ...mode.args,
        "--inside-host",
        "2001:db8:1::2/64",
        "--outside-host",
        "2001:db8:2::1/64",
        "--public",
        PUBLIC,
        "--public",
        "2001:db8:2::2",
        "--router",
        ROUTER,
        "--router",
        "2001:db8:1::1",
      ]);
      await localAddress(client, "2001:db8:1::2");
      await localAddress(server, "2001:db8:2::1");
      assertMatch(client.sh("ping -6 -c 1 -W 2 2001:db8:2::1"), /1 received/);
      assertMatch(client.sh("ping -6 -c 1 -W 2 2001:db8:1::1"), /1 received/);
      const accepted = server.deno(`
    using listener = Deno.listen({ hostname: "2001:db8:2::1", port: 5001 });
    const connection = await listener.accept();
    console.log(connection.remoteAddr.hostname);
    connection.close();`);
      await client.deno(`
    for (let i = 0; i < 100; i++) {
      try {
        (await Deno.connect({ hostname: "2001:db8:2::1", port: 5001 })).close();
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }`);
      assertStrictEquals(
        (await within(accepted, 10_000, "the IPv6 connection")).trim(),
        "2001:db8:2::2",
      );
      const icmp = (await table(nat, 1)).find((c) => c.protocol === "icmp");
      assertEquals([icmp?.family, icmp?.inside.address, icmp?.outside.address], [
        6,
        "2001:db8:1::2",
        "2001:db8:2::2",
      ]);
    },
  );
}
