import { listTunDevices, TunError, TunInterface } from "../mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "./assert.ts";
import { interfaceExists, ipJson, kernelTest, sh, udpRoundTrip, uniqueName } from "./kernel.ts";

const VNET_HDR_SIZE = 10;

function openError(options: Parameters<typeof TunInterface.open>[0]): TunError {
  try {
    TunInterface.open(options).close();
  } catch (error) {
    if (error instanceof TunError) return error;
    throw error;
  }
  throw new Error(`open(${JSON.stringify(options)}) succeeded; a TunError was expected`);
}

kernelTest("two handles attach one multi-queue name and the kernel counts both queues", () => {
  const name = uniqueName("mq");
  const first = TunInterface.open({ name, multiQueue: true });
  try {
    using second = TunInterface.open({ name, multiQueue: true });
    assert(first.multiQueue && second.multiQueue);
    assertStrictEquals(second.index, first.index);
    const info = ipJson(`-N -d link show ${name}`)[0].linkinfo.info_data;
    assertStrictEquals(info.multi_queue, true);
    assertStrictEquals(info.numqueues, 2);
    assertStrictEquals(listTunDevices().find((device) => device.name === name)?.queues, 2);
  } finally {
    first.close();
  }
  assert(!interfaceExists(name), "closing every queue removes a non-persistent device");
});

kernelTest("a multi-queue device refuses single-queue handles and other header settings", () => {
  const name = uniqueName("mqx");
  using first = TunInterface.open({ name, multiQueue: true, vnetHeader: true });
  const single = openError({ name, vnetHeader: true });
  assertStrictEquals(single.code, "EINVAL");
  const headers = openError({ name, multiQueue: true, packetInfo: true, vnetHeader: true });
  assertStrictEquals(headers.code, "EINVAL");
  assertMatch(headers.message, /packet info off and vnet header on/);
  assertMatch(headers.message, /packetInfo: false and vnetHeader: true/);
  assertStrictEquals(ipJson(`-N -d link show ${name}`)[0].linkinfo.info_data.numqueues, 1);
  assert(first.vnetHeader && !first.packetInfo);
});

kernelTest("a single-queue open of a name refuses multiQueue with EINVAL", () => {
  const name = uniqueName("sq");
  using _single = TunInterface.open({ name });
  assertStrictEquals(openError({ name, multiQueue: true }).code, "EINVAL");
});

kernelTest(
  "with vnetHeader, reads start with a 10-byte zero virtio_net_hdr and writes take one",
  async () => {
    using tun = TunInterface.open({ name: uniqueName("vnet"), vnetHeader: true });
    assertStrictEquals(tun.vnetHeader, true);
    assertStrictEquals(tun.multiQueue, false);
    assertStrictEquals(ipJson(`-N -d link show ${tun.name}`)[0].linkinfo.info_data.vnet_hdr, true);
    sh(`ip addr add 192.0.2.1/24 dev ${tun.name} && ip link set ${tun.name} up`);
    const { packet, received } = await udpRoundTrip(tun, {
      port: 40010,
      peer: "192.0.2.80",
      text: "vnet",
      offset: VNET_HDR_SIZE,
    });
    // Offloads are off: no GSO, no checksum left to the reader.
    assertEquals([...packet.subarray(0, VNET_HDR_SIZE)], new Array(VNET_HDR_SIZE).fill(0));
    assertStrictEquals(packet.length, VNET_HDR_SIZE + 28 + 4);
    assertEquals([...packet.subarray(VNET_HDR_SIZE + 16, VNET_HDR_SIZE + 20)], [192, 0, 2, 80]);
    assertEquals(received, "vnet");
  },
);

kernelTest(
  "with packetInfo and vnetHeader, the 4-byte header comes first, then the 10",
  async () => {
    using tun = TunInterface.open({
      name: uniqueName("pivnet"),
      packetInfo: true,
      vnetHeader: true,
    });
    sh(`ip addr add 192.0.2.1/24 dev ${tun.name} && ip link set ${tun.name} up`);
    const { packet } = await udpRoundTrip(tun, {
      port: 40011,
      peer: "192.0.2.81",
      text: "both",
      offset: 4 + VNET_HDR_SIZE,
      reply: false,
    });
    assertEquals([...packet.subarray(0, 4)], [0, 0, 0x08, 0x00]);
    assertEquals([...packet.subarray(4, 4 + VNET_HDR_SIZE)], new Array(VNET_HDR_SIZE).fill(0));
  },
);

kernelTest("vnetHeader and multiQueue must be booleans, checked before any syscall", () => {
  assertThrows(
    () => TunInterface.open({ vnetHeader: 1 as unknown as boolean }),
    TypeError,
  );
  assertThrows(
    () => TunInterface.open({ multiQueue: "yes" as unknown as boolean }),
    TypeError,
  );
});
