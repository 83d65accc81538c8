import { TunInterface } from "../mod.ts";
import { buildIPv4, buildUdp, fragment, parsePacket, Reassembler } from "../packet/mod.ts";
import { assert, assertEquals, assertStrictEquals } from "./assert.ts";
import { kernelTest, uniqueName, within } from "./kernel.ts";

const MTU = 1280;
const SIZE = 4000;

function pattern(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 13 + (i >> 8)) & 0xff);
}

const families = [
  { family: "IPv4", local: "192.0.2.1", peer: "192.0.2.2", cidr: "192.0.2.1/24" },
  { family: "IPv6", local: "2001:db8::1", peer: "2001:db8::2", cidr: "2001:db8::1/64" },
] as const;

/** A device holding `cidr`, up, at {@linkcode MTU}; open() adds IPv6 addresses nodad. */
function device(prefix: string, cidr: string): TunInterface {
  return TunInterface.open({ name: uniqueName(prefix), addresses: [cidr], mtu: MTU, up: true });
}

/**
 * Reads packets from the device into a reassembler until it gives a
 * datagram `accept` takes; returns it with the fragments it was made of.
 */
async function reassembleFrom(
  tun: TunInterface,
  accept: (packet: Uint8Array) => boolean,
): Promise<{ whole: Uint8Array; fragments: Uint8Array[] }> {
  const reassembler = new Reassembler({ timeoutMs: 5000 });
  const signal = AbortSignal.timeout(5000);
  const fragments: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    const packet = await tun.read({ signal });
    if (packet === null) throw new Error("device closed while reading fragments");
    const whole = reassembler.push(packet);
    if (whole !== packet) fragments.push(packet);
    if (whole !== undefined && accept(whole)) return { whole, fragments };
  }
  throw new Error("no reassembled datagram among 200 packets");
}

for (const { family, local, peer, cidr } of families) {
  kernelTest(
    `the kernel reassembles ${family} fragments made by fragment() into the datagram a socket receives`,
    async () => {
      using tun = device("fragin", cidr);
      const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 0 });
      try {
        const port = (socket.addr as Deno.NetAddr).port;
        const data = pattern(SIZE);
        const udp = buildUdp({
          source: peer,
          destination: local,
          sourcePort: 40000,
          destinationPort: port,
          payload: data,
        });
        // buildUdp sets DF on IPv4, as a path-MTU-discovering sender does;
        // this one lets routers fragment (and the UDP checksum stays valid).
        const packet = family === "IPv4"
          ? buildIPv4({
            source: peer,
            destination: local,
            protocol: 17,
            payload: udp.subarray(20),
            dontFragment: false,
            identification: 0x4242,
          })
          : udp;
        const fragments = fragment(packet, MTU);
        assertStrictEquals(fragments.length, 4);
        // Last first, so the kernel cannot be relying on order.
        for (const piece of fragments.reverse()) await tun.write(piece);
        const [received, from] = await within(socket.receive(), 5000, "reassembled datagram");
        assertEquals(received, data);
        assertStrictEquals((from as Deno.NetAddr).port, 40000);
      } finally {
        socket.close();
      }
    },
  );

  kernelTest(
    `a Reassembler rebuilds the ${family} datagram the kernel fragmented for the device's MTU`,
    async () => {
      using tun = device("fragout", cidr);
      const socket = Deno.listenDatagram({ transport: "udp", hostname: local, port: 0 });
      try {
        const data = pattern(SIZE);
        // The socket does not set DF on datagrams above the route MTU, so
        // the kernel fragments them itself (IPv6: as their source).
        await socket.send(data, { transport: "udp", hostname: peer, port: 5000 });
        const { whole, fragments } = await reassembleFrom(
          tun,
          (packet) => parsePacket(packet, "ip").udp?.destinationPort === 5000,
        );
        assert(fragments.length >= 4, `only ${fragments.length} fragments`);
        for (const piece of fragments) assert(piece.length <= MTU, `${piece.length} > ${MTU}`);
        const parsed = parsePacket(whole, "ip");
        assertEquals(parsed.payload, data);
        assertStrictEquals(parsed.udp?.sourcePort, (socket.addr as Deno.NetAddr).port);
        assert(parsed.udp?.checksumValid, "the kernel's UDP checksum does not match the whole");
        if (family === "IPv4") {
          assertStrictEquals(parsed.ipv4?.moreFragments, false);
          assertStrictEquals(parsed.ipv4?.fragmentOffset, 0);
          assert(parsed.ipv4?.checksumValid);
        } else {
          assertStrictEquals(whole[6], 17);
          assertStrictEquals(whole.length, 40 + 8 + SIZE);
        }
      } finally {
        socket.close();
      }
    },
  );
}
