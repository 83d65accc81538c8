/**
 * `TunInterface.fromFd` and `tun.fd`: fds attached by "another library" (a
 * few libc calls of the test's own, as any other code in the process would
 * make them) are adopted, carry packets both ways, and are closed by the
 * handle; fds that are not attached TUN/TAP fds are refused untouched.
 */
import { TunError, TunInterface } from "../mod.ts";
import { assert, assertMatch, assertStrictEquals, assertThrows } from "./assert.ts";
import {
  interfaceExists,
  kernelTest,
  namespace,
  sh,
  udpRoundTrip,
  uniqueName,
  within,
} from "./kernel.ts";

// The other library: its own binding of libc.
const libc = Deno.dlopen("libc.so.6", {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
}).symbols;

const O_RDONLY = 0;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_NONBLOCK = 0o4000;
const F_GETFD = 1;
const F_GETFL = 3;
const FD_CLOEXEC = 1;
const TUNSETIFF = 0x400454can;
const TUNSETVNETHDRSZ = 0x400454d8n;
const TUNSETQUEUE = 0x400454d9n;
const IFF_TUN = 0x0001;
const IFF_TAP = 0x0002;
const IFF_MULTI_QUEUE = 0x0100;
const IFF_DETACH_QUEUE = 0x0400;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;

const path = (text: string) => new TextEncoder().encode(`${text}\0`);

function ifreq(name: string, flags: number): Uint8Array {
  const ifr = new Uint8Array(40);
  ifr.set(new TextEncoder().encode(name));
  new DataView(ifr.buffer).setUint16(16, flags, true);
  return ifr;
}

/** Opens /dev/net/tun blocking and inheritable, as a careless library would; attaches `name`. */
function attachElsewhere(name: string, flags: number, access = O_RDWR): number {
  const fd = libc.open(path("/dev/net/tun"), access, 0);
  assert(fd >= 0, "open /dev/net/tun");
  if (libc.ioctl(fd, TUNSETIFF, ifreq(name, flags)) < 0) {
    libc.close(fd);
    throw new Error(`TUNSETIFF ${name} failed`);
  }
  return fd;
}

const isOpen = (fd: number) => libc.fcntl(fd, F_GETFD, 0) >= 0;

function fromFdError(fd: number, options?: Parameters<typeof TunInterface.fromFd>[1]): TunError {
  try {
    TunInterface.fromFd(fd, options).close();
  } catch (error) {
    if (error instanceof TunError) return error;
    throw error;
  }
  throw new Error(`fromFd(${fd}) succeeded; a TunError was expected`);
}

/** Gives an adopted TUN device 192.0.2.1/24 with IPv6 off, so it sends nothing by itself. */
function quiet(tun: TunInterface): void {
  sh(`sysctl -qw net.ipv6.conf.${tun.name}.disable_ipv6=1`);
  tun.addAddress("192.0.2.1/24");
  tun.up();
}

kernelTest("fromFd adopts a TUN fd attached elsewhere and carries packets both ways", async () => {
  const name = uniqueName("adopt");
  const fd = attachElsewhere(name, IFF_TUN | IFF_NO_PI);
  using tun = TunInterface.fromFd(fd);
  assertStrictEquals(tun.fd, fd);
  assertStrictEquals(tun.name, name);
  assertStrictEquals(tun.mode, "tun");
  assertStrictEquals(tun.packetInfo, false);
  assertStrictEquals(tun.vnetHeader, false);
  assertStrictEquals(tun.multiQueue, false);
  assert((libc.fcntl(fd, F_GETFL, 0) & O_NONBLOCK) !== 0, "O_NONBLOCK is set");
  assert((libc.fcntl(fd, F_GETFD, 0) & FD_CLOEXEC) !== 0, "FD_CLOEXEC is set");
  quiet(tun);
  const trip = await udpRoundTrip(tun, { port: 4101, peer: "192.0.2.2", text: "adopted" });
  assertStrictEquals(trip.received, "adopted");
  assertStrictEquals(trip.written, trip.packet.length);
});

kernelTest(
  "fromFd learns packet info and the vnet header: the headers come where expected",
  async () => {
    const name = uniqueName("adpi");
    using tun = TunInterface.fromFd(attachElsewhere(name, IFF_TUN | IFF_VNET_HDR));
    assertStrictEquals(tun.packetInfo, true);
    assertStrictEquals(tun.vnetHeader, true);
    // Offloads left as found cannot be read back: reads are sized for super-packets.
    assertStrictEquals(tun.readBufferSize, 65535 + 4 + 10);
    quiet(tun);
    const trip = await udpRoundTrip(tun, {
      port: 4102,
      peer: "192.0.2.2",
      text: "behind both headers",
      offset: 4 + 10,
    });
    assertStrictEquals(trip.received, "behind both headers");
    assertStrictEquals(trip.packet[2] << 8 | trip.packet[3], 0x0800, "packet info says IPv4");
  },
);

kernelTest("fromFd reads back TAP mode and flags, with and without a vnet header", () => {
  for (
    const [flags, packetInfo, vnetHeader] of [
      [IFF_TAP | IFF_NO_PI, false, false],
      [IFF_TAP, true, false],
      [IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, false, true],
    ] as const
  ) {
    const name = uniqueName("adtap");
    using tap = TunInterface.fromFd(attachElsewhere(name, flags));
    assertStrictEquals(tap.name, name);
    assertStrictEquals(tap.mode, "tap");
    assertStrictEquals(tap.packetInfo, packetInfo);
    assertStrictEquals(tap.vnetHeader, vnetHeader);
    assertMatch(tap.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  }
});

kernelTest("fromFd with offload sets the device's offloads and sizes reads by them", () => {
  const name = uniqueName("adoff");
  using plain = TunInterface.fromFd(attachElsewhere(name, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR), {
    offload: {},
  });
  assertStrictEquals(plain.readBufferSize, plain.mtu + 10);
  const other = uniqueName("adoff");
  using tso = TunInterface.fromFd(attachElsewhere(other, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR), {
    offload: { checksum: true, tso4: true },
  });
  assertStrictEquals(tso.readBufferSize, 65535 + 10);
  const fd = attachElsewhere(uniqueName("adoff"), IFF_TUN | IFF_NO_PI);
  try {
    assertThrows(
      () => TunInterface.fromFd(fd, { offload: { checksum: true } }),
      /no vnet header/,
    );
    assert((libc.fcntl(fd, F_GETFL, 0) & O_NONBLOCK) === 0, "the refused fd is left blocking");
  } finally {
    libc.close(fd);
  }
});

kernelTest(
  "fromFd adopts a queue of a multi-queue device, which then detaches and attaches",
  () => {
    const name = uniqueName("admq");
    using first = TunInterface.open({ name, multiQueue: true });
    using queue = TunInterface.fromFd(attachElsewhere(name, IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE));
    assertStrictEquals(queue.multiQueue, true);
    assertStrictEquals(queue.index, first.index);
    queue.detachQueue();
    queue.attachQueue();
  },
);

kernelTest("close() closes the adopted fd, after which fd is -1 and the device gone", () => {
  const name = uniqueName("adcls");
  const fd = attachElsewhere(name, IFF_TUN | IFF_NO_PI);
  const tun = TunInterface.fromFd(fd);
  tun.close();
  assertStrictEquals(tun.fd, -1);
  assert(!isOpen(fd), "the fd is closed");
  assert(!interfaceExists(name), "the non-persistent device went with its only fd");
});

kernelTest("fromFd refuses a number that is not open, with EBADF", () => {
  const fd = libc.open(path("/dev/null"), O_RDWR, 0);
  libc.close(fd);
  const error = fromFdError(fd);
  assertStrictEquals(error.code, "EBADF");
  assertMatch(error.message, new RegExp(`Cannot adopt fd ${fd} .*: fd ${fd} is not open`));
});

kernelTest("fromFd refuses a regular file and a socket, leaving them open and unchanged", () => {
  const temp = Deno.makeTempFileSync();
  const file = libc.open(path(temp), O_RDWR | O_CREAT, 0o600);
  const socket = libc.socket(2, 2, 0); // AF_INET, SOCK_DGRAM
  const devNull = libc.open(path("/dev/null"), O_RDWR, 0);
  try {
    for (const fd of [file, socket, devNull]) {
      const error = fromFdError(fd);
      assert(["ENOTTY", "EINVAL"].includes(error.code), `${fd}: ${error.code}`);
      assertMatch(error.message, /is not a TUN\/TAP fd/);
      assert(isOpen(fd));
      assert((libc.fcntl(fd, F_GETFL, 0) & O_NONBLOCK) === 0, "left blocking");
    }
  } finally {
    for (const fd of [file, socket, devNull]) libc.close(fd);
    Deno.removeSync(temp);
  }
});

kernelTest("fromFd refuses a /dev/net/tun fd attached to no device, with EBADFD", () => {
  const unattached = libc.open(path("/dev/net/tun"), O_RDWR, 0);
  try {
    const error = fromFdError(unattached);
    assertStrictEquals(error.code, "EBADFD");
    assertMatch(error.message, /attached to no device: TUNSETIFF was not called/);
    assert(isOpen(unattached));
  } finally {
    libc.close(unattached);
  }
});

kernelTest("fromFd adopts a detached queue as it is, and attachQueue puts it back", () => {
  const name = uniqueName("adq");
  using _owner = TunInterface.open({ name, multiQueue: true });
  const detached = attachElsewhere(name, IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE);
  assert(libc.ioctl(detached, TUNSETQUEUE, ifreq("", IFF_DETACH_QUEUE)) === 0);
  using queue = TunInterface.fromFd(detached);
  assertThrows(() => queue.detachQueue(), /already detached/);
  queue.attachQueue();
});

kernelTest("fromFd refuses a read-only fd and a vnet header size other than 10", () => {
  const readOnly = attachElsewhere(uniqueName("adro"), IFF_TUN | IFF_NO_PI, O_RDONLY);
  const wide = attachElsewhere(uniqueName("adw"), IFF_TUN | IFF_NO_PI | IFF_VNET_HDR);
  assert(libc.ioctl(wide, TUNSETVNETHDRSZ, new Uint8Array(new Int32Array([12]).buffer)) === 0);
  try {
    const error = fromFdError(readOnly);
    assertStrictEquals(error.code, "EBADF");
    assertMatch(error.message, /open for reading only.*O_RDWR/);
    const size = fromFdError(wide);
    assertStrictEquals(size.code, "EINVAL");
    assertMatch(size.message, /virtio-net headers are 12 bytes/);
  } finally {
    libc.close(readOnly);
    libc.close(wide);
  }
});

kernelTest("fromFd refuses a device that left this network namespace, with ENODEV", () => {
  using other = namespace("adns");
  const name = uniqueName("adns");
  const fd = attachElsewhere(name, IFF_TUN | IFF_NO_PI);
  try {
    sh(`ip link set ${name} netns ${other.name}`);
    const error = fromFdError(fd);
    assertStrictEquals(error.code, "ENODEV");
    assertMatch(error.message, /not in this thread's network namespace/);
  } finally {
    libc.close(fd);
  }
});

kernelTest("fromFd refuses the fd of a handle that is open, and bad arguments", () => {
  using tun = TunInterface.open({ name: uniqueName("adheld") });
  assertThrows(() => TunInterface.fromFd(tun.fd), {
    name: "TypeError",
    message: new RegExp(`fd of an open TunInterface for TUN device "${tun.name}"`),
  });
  assertThrows(() => TunInterface.fromFd(-1), RangeError);
  assertThrows(() => TunInterface.fromFd(1.5), RangeError);
  assertThrows(() => TunInterface.fromFd("3" as unknown as number), TypeError);
  assertThrows(() => TunInterface.fromFd(tun.fd, { name: "x" } as never), {
    name: "TypeError",
    message: /has no option "name": fromFd\(\) reads it from the fd/,
  });
  assertThrows(() => TunInterface.fromFd(tun.fd, { busyPol: 5 } as never), {
    name: "TypeError",
    message: /has no option "busyPol": did you mean "busyPoll"\?/,
  });
  assertThrows(() => TunInterface.fromFd(tun.fd, { mtu: 1400 } as never), /configure it/);
});

kernelTest(
  "a Worker given the number adopts the device, answers through it and closes it",
  async () => {
    const name = uniqueName("adwk");
    const fd = attachElsewhere(name, IFF_TUN | IFF_NO_PI);
    sh(`sysctl -qw net.ipv6.conf.${name}.disable_ipv6=1`);
    sh(`ip addr add 192.0.2.1/24 dev ${name} && ip link set ${name} up`);
    const code = `
    import { TunInterface } from ${JSON.stringify(import.meta.resolve("../mod.ts"))};
    import { isIpv4Udp, readUntil, swapUdp } from ${
      JSON.stringify(import.meta.resolve("./kernel.ts"))
    };
    self.onmessage = async (event) => {
      const tun = TunInterface.fromFd(event.data);
      self.postMessage({ adopted: tun.name });
      const packet = await readUntil(tun, (p) => isIpv4Udp(p));
      await tun.write(swapUdp(packet));
      tun.close();
      self.postMessage({ closed: tun.fd });
    };`;
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    const worker = new Worker(url, { type: "module" });
    const adopted = Promise.withResolvers<string>();
    const closed = Promise.withResolvers<number>();
    worker.onmessage = ({ data }) => {
      if ("adopted" in data) adopted.resolve(data.adopted);
      if ("closed" in data) closed.resolve(data.closed);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      adopted.reject(new Error(event.message));
      closed.reject(new Error(event.message));
    };
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port: 4103 });
    try {
      worker.postMessage(fd);
      assertStrictEquals(await within(adopted.promise, 10_000, "the worker adopting"), name);
      await socket.send(new TextEncoder().encode("to the worker"), {
        transport: "udp",
        hostname: "192.0.2.2",
        port: 5000,
      });
      const [data] = await within(socket.receive(), 10_000, "the worker's answer");
      assertStrictEquals(new TextDecoder().decode(data), "to the worker");
      assertStrictEquals(await within(closed.promise, 10_000, "the worker closing"), -1);
    } finally {
      socket.close();
      worker.terminate();
      URL.revokeObjectURL(url);
    }
    assert(!interfaceExists(name), "the worker's close() closed the only fd of the device");
  },
);
