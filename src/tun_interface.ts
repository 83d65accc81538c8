/**
 * {@linkcode TunInterface}: one attached TUN or TAP device.
 *
 * @module
 */
import {
  IFF_ATTACH_QUEUE,
  IFF_DETACH_QUEUE,
  IFF_MULTI_QUEUE,
  IFF_NO_PI,
  IFF_TAP,
  IFF_TUN,
  IFF_TUN_EXCL,
  IFF_VNET_HDR,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  TUNGETIFF,
  TUNGETVNETHDRSZ,
  TUNSETCARRIER,
  TUNSETGROUP,
  TUNSETIFF,
  TUNSETOWNER,
  TUNSETPERSIST,
  TUNSETQUEUE,
  TUNSETVNETHDRSZ,
} from "../ffi/constants.ts";
import { EBADF, EBADFD, EEXIST, EINVAL, ENODEV, ENOTTY } from "../ffi/errno.ts";
import { ifr_flags, ifr_name, ifreq, set_ifr_flags } from "../ffi/ifreq.ts";
import { cstring, libc } from "../ffi/libc.ts";
import { formatMac } from "../packet/address.ts";
import {
  addAddress,
  listAddresses,
  parseAddress,
  removeAddress,
  type TunAddress,
  type TunAddressOptions,
} from "./address_config.ts";
import { destroyTunDevice, type TunDeviceInfo, tunDeviceInfo } from "./device_info.ts";
import {
  moveLink,
  parseDeviceMac,
  readLink,
  readLinkByName,
  setMac,
  setMtu,
  setTxQueueLength,
  setUp,
  validateMtu,
  validateTxQueueLength,
} from "./link_config.ts";
import { type Link, withNetlinkSocket } from "./netlink.ts";
import { describeNetns, inNetns, netnsSocket, validateNetns, withNetnsFd } from "./netns.ts";
import {
  parseOffload,
  SEGMENTATION_OFFLOADS,
  setOffload,
  type TunOffloadOptions,
} from "./offload.ts";
import { applyOpenConfig, parseOpenConfig, runUndo, type UndoSteps } from "./open_config.ts";
import { ETHERNET_VLAN_ROOM, MAX_IP_PACKET, PacketIo } from "./packet_io.ts";
import { packetReadable, packetWritable } from "./packet_streams.ts";
import { closeFds, Readiness, type ReadinessFds } from "./readiness.ts";
import {
  addRoute,
  listRoutes,
  parseRoute,
  removeRoute,
  type TunRoute,
  type TunRouteOptions,
} from "./route_config.ts";
import { check, ioctl, ioctlValue } from "./syscall.ts";
import { closestName } from "./suggest.ts";
import type { TunMode } from "./tun_mode.ts";
import { type TunLinkEvent, watchLinkEvents } from "./link_events.ts";
import { readLinkStats, type TunDeviceStats } from "./link_stats.ts";
import { TunError } from "./tun_error.ts";
import {
  describe,
  validateId,
  validateInteger,
  validateInterfaceName,
  validateOptionalBoolean,
} from "./validate.ts";

/** Options for {@linkcode TunInterface.open}. */
export interface TunOpenOptions {
  /**
   * The interface name, at most 15 bytes. A kernel template such as
   * `"tap%d"` lets the kernel number it; omitted, the kernel picks
   * `tunN` or `tapN`. A name that exists is attached to, one that does not
   * is created.
   */
  name?: string;
  /** `"tun"` (IP packets, the default) or `"tap"` (Ethernet frames). */
  mode?: TunMode;
  /**
   * With `true`, every packet read or written starts with the 4-byte
   * packet-information header (`u16 flags`, `be16 protocol`). Default `false`.
   */
  packetInfo?: boolean;
  /**
   * With `true` (`IFF_VNET_HDR`), every packet read or written starts with
   * the 10-byte `struct virtio_net_hdr` (after the packet-information header
   * when `packetInfo` is set too): `u8 flags`, `u8 gso_type`,
   * `le16 hdr_len`, `le16 gso_size`, `le16 csum_start`, `le16 csum_offset`.
   * Without `offload`, the kernel hands over no GSO packet and no checksum
   * to complete: `gso_type` is 0 (`VIRTIO_NET_HDR_GSO_NONE`) and `flags` 0,
   * or 2 (`VIRTIO_NET_HDR_F_DATA_VALID`) for a packet whose checksum was
   * already verified. Writes may start with ten zero bytes. Default `false`.
   */
  vnetHeader?: boolean;
  /**
   * Offloads to turn on (`TUNSETOFFLOAD`); needs `vnetHeader: true`. With
   * `tso4`/`tso6`/`uso4`/`uso6`, reads may return super-packets of up to
   * 64 KiB that the header says how to cut (`gsoSplit` in the packet
   * toolkit), and writes may hand the kernel such super-packets
   * (`groCoalesce`): one system call then moves what would take dozens.
   * Omitted, every offload is off, also on a persistent device where an
   * earlier user left some on. An offload the kernel lacks is a
   * {@linkcode TunError} naming it.
   */
  offload?: TunOffloadOptions;
  /**
   * Microseconds to keep retrying a read that found nothing before waiting
   * in `poll()`, which costs tens of microseconds to wake from. Spinning
   * trades a busy core (and a blocked event loop for that long) for
   * latency: worth it for request-response traffic, not for bulk. 0 to
   * 1000000; default 0 (wait at once).
   */
  busyPoll?: number;
  /**
   * The network namespace to create or attach the device in: a name under
   * `/run/netns` (as `ip netns add` makes) or an open fd of a namespace. The
   * device is attached, and configured, there, while the program stays in
   * its own namespace; later configuration of the handle goes through a
   * netlink socket opened in that namespace. Default: the program's own.
   * {@linkcode TunInterface.events} is not available for such a device.
   */
  netns?: string | number;
  /**
   * With `true` (`IFF_MULTI_QUEUE`), the device is multi-queue: several
   * handles (in this process or others) may attach the same name, each
   * becoming one queue, and the kernel spreads packets across them by flow.
   * Every queue shares the device's `mode`, `packetInfo` and `vnetHeader`;
   * attaching with others fails with `EINVAL`, as does attaching a
   * single-queue device with `true` or a multi-queue one without.
   * Default `false`.
   */
  multiQueue?: boolean;
  /**
   * `true` makes the device outlive this handle, `false` makes it go away
   * when the last handle closes, omitted leaves it as it is.
   */
  persist?: boolean;
  /**
   * `true` refuses to attach a device that already exists (`IFF_TUN_EXCL`):
   * the call either creates the device or fails with `EEXIST`.
   */
  exclusive?: boolean;
  /** The uid that may attach the device without CAP_NET_ADMIN. */
  owner?: number;
  /** The gid whose members may attach the device without CAP_NET_ADMIN. */
  group?: number;
  /**
   * Addresses to add, as {@linkcode TunInterface.addAddress} does: CIDR
   * strings (`"192.0.2.1/24"`, `"2001:db8::1/64"`) or
   * `{ address, peer }` for a point-to-point link.
   */
  addresses?: readonly (string | TunAddress)[];
  /**
   * Routes to add through the device, as {@linkcode TunInterface.addRoute}
   * does: CIDR strings or `{ destination, via?, metric? }`.
   */
  routes?: readonly (string | TunRoute)[];
  /** The MTU to set, 1 to 65535 (the kernel enforces the device's own limits). */
  mtu?: number;
  /** `true` brings the device up, `false` down; omitted leaves it as it is. */
  up?: boolean;
}

/** Options for {@linkcode TunInterface.read} and {@linkcode TunInterface.packets}. */
export interface TunReadOptions {
  /**
   * Aborting rejects the pending read with the signal's reason. The device
   * stays open and no packet is lost: the next read gets the next packet.
   */
  signal?: AbortSignal;
}

/**
 * The largest IP packet `write()` accepts: the largest an IP length field can
 * say. The headers the device adds (packet information, virtio-net header,
 * Ethernet and VLAN for TAP) come on top.
 */
export const MAX_PACKET_SIZE: number = MAX_IP_PACKET;

/**
 * Options for {@linkcode TunInterface.fromFd}: only what the fd cannot tell.
 * The name, mode, packet-info, vnet-header and multi-queue flags are read
 * from the fd and its device; the rest of {@linkcode TunOpenOptions}
 * (addresses, MTU, persist…) is refused, since adopting changes nothing on
 * the device: configure it through the handle afterwards.
 */
export interface TunFromFdOptions {
  /**
   * Offloads to set (`TUNSETOFFLOAD`), as {@linkcode TunOpenOptions.offload}
   * does; the device must have a vnet header. Given, exactly these are on
   * afterwards, for the whole device (other queues of a multi-queue device
   * included). Omitted, the device keeps the offloads its opener set: the
   * kernel has no call that reads them back, so on a device with a vnet
   * header the handle expects super-packets, and
   * {@linkcode TunInterface.readBufferSize} is 65535 bytes plus headers.
   */
  offload?: TunOffloadOptions;
  /** As {@linkcode TunOpenOptions.busyPoll}: microseconds of spinning before `poll()`, default 0. */
  busyPoll?: number;
}

// sizeof(struct virtio_net_hdr): the header without num_buffers.
const VNET_HDR_SIZE = 10;
const PACKET_INFO_SIZE = 4;

// <fcntl.h>
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const FD_CLOEXEC = 1;
const O_ACCMODE = 0o3;
const O_RDONLY = 0o0;
const FD_MAX = 0x7fffffff;

// Every key of TunOpenOptions, checked by the compiler both ways.
const OPEN_OPTION_KEYS = Object.keys(
  {
    name: true,
    mode: true,
    packetInfo: true,
    vnetHeader: true,
    offload: true,
    busyPoll: true,
    netns: true,
    multiQueue: true,
    persist: true,
    exclusive: true,
    owner: true,
    group: true,
    addresses: true,
    routes: true,
    mtu: true,
    up: true,
  } satisfies Record<keyof TunOpenOptions, true>,
);

const FROM_FD_OPTION_KEYS = Object.keys(
  { offload: true, busyPoll: true } satisfies Record<keyof TunFromFdOptions, true>,
);

// Why fromFd() refuses an open() option, for the keys a user may carry over.
const LEARNT = "fromFd() reads it from the fd and its device";
const UNCHANGED = "fromFd() adopts the device as it is and changes nothing on it";
const CONFIGURE = "fromFd() adopts the device as it is: configure it through the handle " +
  "afterwards (addAddress, addRoute, setMtu, up)";
const FROM_FD_REFUSED: Partial<Record<string, string>> = {
  name: LEARNT,
  mode: LEARNT,
  packetInfo: LEARNT,
  vnetHeader: LEARNT,
  multiQueue: LEARNT,
  persist: UNCHANGED,
  exclusive: UNCHANGED,
  owner: UNCHANGED,
  group: UNCHANGED,
  addresses: CONFIGURE,
  routes: CONFIGURE,
  mtu: CONFIGURE,
  up: CONFIGURE,
};

// A misspelt key would otherwise be ignored, and the device opened with
// the default the caller meant to override.
function rejectUnknownOptions(
  options: object,
  method: string,
  keys: readonly string[],
  refused: Partial<Record<string, string>> = {},
): void {
  for (const key of Object.keys(options)) {
    if (keys.includes(key)) continue;
    const why = Object.hasOwn(refused, key) ? refused[key] : undefined;
    const near = closestName(key, keys);
    throw new TypeError(
      `${method} has no option ${JSON.stringify(key)}` +
        (why ? `: ${why}` : near ? `: did you mean "${near}"?` : `: use ${keys.join(", ")}`),
    );
  }
}

// The state of a TUN/TAP device of that name before the attach, or
// undefined when there is none (the attach creates it) or it is another
// kind of link (the attach refuses it).
function existingDevice(name: string): TunDeviceInfo | undefined {
  try {
    return tunDeviceInfo(name);
  } catch (error) {
    if (error instanceof TunError && (error.errno === ENODEV || error.errno === EINVAL)) {
      return undefined;
    }
    throw error;
  }
}

/**
 * After a failed open() has detached, puts back the packet-info and
 * vnet-header flags its attach rewrote. A device's flags change only on an
 * attach (and a queue joining others leaves them), so this attaches once
 * more with the old flags and detaches. Best effort: if someone attached
 * the device meanwhile, the kernel refuses with EBUSY and the flags are
 * theirs to choose anyway.
 */
function restoreAttachFlags(before: TunDeviceInfo): void {
  try {
    const now = tunDeviceInfo(before.name);
    if (now.pi === before.pi && now.vnetHdr === before.vnetHdr) return;
    const fd = libc().open(cstring("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) return;
    const flags = (before.mode === "tap" ? IFF_TAP : IFF_TUN) | (before.pi ? 0 : IFF_NO_PI) |
      (before.vnetHdr ? IFF_VNET_HDR : 0) | (before.multiQueue ? IFF_MULTI_QUEUE : 0);
    libc().ioctl(fd, BigInt(TUNSETIFF), set_ifr_flags(ifreq(before.name), flags));
    libc().close(fd);
  } catch {
    // The open() failure is the error to report.
  }
}

function setVnetHeaderSize(fd: number, size: number, device: string): void {
  ioctl(
    fd,
    TUNSETVNETHDRSZ,
    new Uint8Array(new Int32Array([size]).buffer),
    `set the vnet header size of ${device}`,
  );
}

// The fds of this isolate's open handles, with their devices: fromFd()
// refuses them, since two handles on one fd would each close it.
const held = new Map<number, string>();

// Holds fd numbers only: holding the instance would keep it alive forever.
const forgotten = new FinalizationRegistry<ReadinessFds>((fds) => {
  held.delete(fds.fd);
  closeFds(fds);
});

/**
 * An attached TUN or TAP device: read packets the kernel routes into it,
 * write packets for the kernel to receive.
 *
 * The fd is non-blocking. Reads and writes are synchronous system calls,
 * and waiting is a single `poll()` on Deno's blocking pool that `close()`
 * interrupts, so a pending read never holds up closing.
 *
 * @example Answer every UDP datagram routed into the device
 * ```ts ignore
 * import { TunInterface } from "@tuntap/tuntap";
 *
 * using tun = TunInterface.open({ name: "tun0" });
 * for await (const packet of tun) {
 *   console.log(`${packet.length} bytes from the kernel`);
 * }
 * ```
 */
export class TunInterface {
  readonly #fd: number;
  readonly #readiness: Readiness;
  readonly #name: string;
  readonly #mode: TunMode;
  readonly #packetInfo: boolean;
  readonly #vnetHeader: boolean;
  readonly #multiQueue: boolean;
  // "unknown" for an adopted fd whose offloads were left as found.
  readonly #offload: Partial<Record<string, true>> | "unknown";
  #link: Link;
  readonly #io: PacketIo;
  #closed = false;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  private constructor(
    fd: number,
    readiness: Readiness,
    name: string,
    mode: TunMode,
    flags: {
      packetInfo: boolean;
      vnetHeader: boolean;
      multiQueue: boolean;
      offload: number;
      offloadShown: Partial<Record<string, true>> | "unknown";
    },
    index: number,
    busyPoll: number,
    netlink?: number,
  ) {
    this.#fd = fd;
    this.#readiness = readiness;
    this.#name = name;
    this.#mode = mode;
    this.#packetInfo = flags.packetInfo;
    this.#vnetHeader = flags.vnetHeader;
    this.#multiQueue = flags.multiQueue;
    this.#offload = flags.offloadShown;
    this.#link = this.#makeLink(index, netlink);
    this.#io = new PacketIo({
      fd,
      readiness,
      device: this.#link.device,
      headerRoom: (flags.packetInfo ? PACKET_INFO_SIZE : 0) +
        (flags.vnetHeader ? VNET_HDR_SIZE : 0) + (mode === "tap" ? ETHERNET_VLAN_ROOM : 0),
      ethernet: mode === "tap",
      gso: (flags.offload & SEGMENTATION_OFFLOADS) !== 0,
      readMtu: () => readLink(this.#link, `read the MTU of ${this.#link.device}`).mtu,
      busyPoll,
    });
    held.set(fd, this.#link.device);
    forgotten.register(this, readiness.fds, this);
  }

  /**
   * Opens `/dev/net/tun` and attaches a device, creating it when the name
   * does not exist. Arguments are checked before any system call; when a
   * kernel call fails, the fd is closed, a device this call created is gone
   * again, and a {@linkcode TunError} is thrown.
   *
   * The `mtu`, `addresses`, `up` and `routes` options are applied after the
   * attach, in that order: the kernel needs an IPv6-capable MTU before IPv6
   * addresses, and an IPv4 route needs the device up and its gateway on an
   * address's network. If any step fails, what this call changed on a
   * device that existed before is put back: MTU, addresses, link state,
   * routes, owner, group, vnet header size, and the packet-info and
   * vnet-header flags (which attaching rewrites). An option key that
   * {@linkcode TunOpenOptions} lacks is a TypeError that names the key.
   *
   * @example Create a TAP device the kernel names
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tap = TunInterface.open({ mode: "tap" });
   * console.log(tap.name); // "tap0"
   * ```
   *
   * @example Create a configured TUN device, no `ip` command needed
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({
   *   name: "tun0",
   *   addresses: ["192.0.2.1/24", "2001:db8::1/64"],
   *   routes: [{ destination: "198.51.100.0/24", via: "192.0.2.254" }],
   *   mtu: 1400,
   *   up: true,
   * });
   * ```
   */
  static open(options: TunOpenOptions = {}): TunInterface {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Options must be an object, got ${describe(options)}`,
      );
    }
    rejectUnknownOptions(options, "TunInterface.open()", OPEN_OPTION_KEYS);
    const name = options.name === undefined
      ? undefined
      : validateInterfaceName(options.name, "Device name");
    const mode = options.mode ?? "tun";
    if (mode !== "tun" && mode !== "tap") {
      throw new TypeError(`Mode must be "tun" or "tap", got ${describe(mode)}`);
    }
    const packetInfo = validateOptionalBoolean(options.packetInfo, "packetInfo") ?? false;
    const vnetHeader = validateOptionalBoolean(options.vnetHeader, "vnetHeader") ?? false;
    const multiQueue = validateOptionalBoolean(options.multiQueue, "multiQueue") ?? false;
    const persist = validateOptionalBoolean(options.persist, "persist");
    const exclusive = validateOptionalBoolean(options.exclusive, "exclusive") ?? false;
    const owner = options.owner === undefined ? undefined : validateId(options.owner, "owner");
    const group = options.group === undefined ? undefined : validateId(options.group, "group");
    const offload = parseOffload(options.offload, vnetHeader);
    const offloadShown = Object.fromEntries(
      Object.entries(options.offload ?? {}).filter(([, on]) => on === true),
    );
    const busyPoll = options.busyPoll === undefined
      ? 0
      : validateInteger(options.busyPoll, "busyPoll", 0, 1_000_000);
    const config = parseOpenConfig(options);

    const netns = options.netns === undefined ? undefined : validateNetns(options.netns);
    const where = netns === undefined ? "" : ` in ${describeNetns(netns)}`;
    const netlink = netns === undefined
      ? undefined
      : netnsSocket(netns, `open ${mode.toUpperCase()} device "${name ?? `${mode}%d`}"${where}`);
    // In another namespace, everything up to the handle happens there: the
    // attach, reading back the index, configuration and undoing it.
    const attach = (): TunInterface => {
      const kind = mode.toUpperCase();
      let label = name ?? `${mode}%d`;
      const describeDevice = () => `${kind} device "${label}"`;
      // What a failure must put back on a device that exists: the attach
      // below rewrites its packet-info and vnet-header flags.
      const existing = name === undefined || name.includes("%") ? undefined : existingDevice(name);
      const fd = check(
        libc().open(cstring("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0),
        "open(/dev/net/tun)",
        () => `open /dev/net/tun for ${describeDevice()}`,
      );
      const undo: UndoSteps = [];
      let readiness: Readiness | undefined;
      let tun: TunInterface | undefined;
      let attachedHere = false;
      try {
        const wanted = (mode === "tap" ? IFF_TAP : IFF_TUN) | (packetInfo ? 0 : IFF_NO_PI) |
          (vnetHeader ? IFF_VNET_HDR : 0) | (multiQueue ? IFF_MULTI_QUEUE : 0) |
          (exclusive ? IFF_TUN_EXCL : 0);
        try {
          ioctl(fd, TUNSETIFF, set_ifr_flags(ifreq(name), wanted), `attach ${describeDevice()}`, {
            [EINVAL]: `a device named "${label}" exists and is not a ${kind} device of this kind ` +
              `(TUN or TAP, single or multi-queue)`,
          });
        } catch (error) {
          // IFF_TUN_EXCL answers EBUSY for "exists"; say what it means.
          if (exclusive && error instanceof TunError && error.code === "EBUSY") {
            throw new TunError({
              errno: EEXIST,
              syscall: error.syscall,
              action: `create ${describeDevice()}`,
              hint: "a device with this name already exists",
            });
          }
          throw error;
        }
        attachedHere = true;
        const attached = ifreq();
        ioctl(fd, TUNGETIFF, attached, `read back ${describeDevice()}`);
        label = ifr_name(attached);
        // Only the name is read back. The flags are not worth checking:
        // TUNGETIFF reports IFF_NOFILTER, the same bit as IFF_NO_PI, and a
        // single-queue attach always takes the flags asked for (a multi-queue
        // device refuses a single-queue attach with EINVAL, and a queue
        // joining it is checked below).

        // The index is taken once: every later call addresses the device by
        // index, which a rename does not change.
        const found = libc().if_nametoindex(cstring(label));
        const index = check(
          found === 0 ? -1 : found,
          "if_nametoindex",
          () => `find the index of ${describeDevice()}`,
        );
        if (multiQueue) {
          // A queue joining a multi-queue device that has others keeps the
          // device's flags, whatever it asked for: refuse rather than hand out
          // packets with headers the caller does not expect.
          const device = tunDeviceInfo(label);
          if (device.pi !== packetInfo || device.vnetHdr !== vnetHeader) {
            const onOff = (on: boolean) => on ? "on" : "off";
            throw new TunError({
              errno: EINVAL,
              syscall: "ioctl(TUNSETIFF)",
              action: `attach ${describeDevice()}`,
              hint: `its other queues have packet info ${onOff(device.pi)} and vnet header ` +
                `${onOff(device.vnetHdr)}, which every queue shares: open it with ` +
                `packetInfo: ${device.pi} and vnetHeader: ${device.vnetHdr}`,
            });
          }
        }
        // Only an attached fd can be watched: an unattached TUN fd answers
        // poll with EPOLLERR and never registers for a wake-up.
        readiness = new Readiness(fd, describeDevice);
        // An offload mask set by an earlier user survives on a persistent
        // device, so it is always set: to 0 unless offloads were asked for.
        setOffload(fd, offload, describeDevice());
        if (vnetHeader) {
          // The size is the device's and survives too: make it the documented 10.
          const size = new Int32Array(1);
          ioctl(fd, TUNGETVNETHDRSZ, new Uint8Array(size.buffer), `read ${describeDevice()}`);
          setVnetHeaderSize(fd, VNET_HDR_SIZE, describeDevice());
          undo.push(() => setVnetHeaderSize(fd, size[0], describeDevice()));
        }
        applyOpenConfig({ index, device: describeDevice(), closed: false }, config, undo);
        // Owner and group come after every step that can fail for a reason of
        // the caller's (only an unmapped id in a user namespace fails them),
        // since the kernel cannot put back "no owner": it refuses uid -1.
        if (owner !== undefined) {
          ioctlValue(fd, TUNSETOWNER, owner, `set the owner of ${describeDevice()} to ${owner}`);
          const previous = existing?.owner;
          if (previous !== undefined && previous !== null) {
            undo.push(() => ioctlValue(fd, TUNSETOWNER, previous, `restore ${describeDevice()}`));
          }
        }
        if (group !== undefined) {
          ioctlValue(fd, TUNSETGROUP, group, `set the group of ${describeDevice()} to ${group}`);
          const previous = existing?.group;
          if (previous !== undefined && previous !== null) {
            undo.push(() => ioctlValue(fd, TUNSETGROUP, previous, `restore ${describeDevice()}`));
          }
        }
        tun = new TunInterface(
          fd,
          readiness,
          label,
          mode,
          { packetInfo, vnetHeader, multiQueue, offload, offloadShown },
          index,
          busyPoll,
          netlink,
        );
        // Last, so that every failure above leaves a device this call created
        // non-persistent, and closing the fd removes it.
        if (persist !== undefined) {
          ioctlValue(
            fd,
            TUNSETPERSIST,
            persist ? 1 : 0,
            `make ${describeDevice()} ${persist ? "persistent" : "non-persistent"}`,
          );
        }
        return tun;
      } catch (error) {
        runUndo(undo);
        // Each owns the fd once made: the handle also leaves the finalizer.
        if (tun) tun.close();
        else if (readiness) readiness.close();
        else libc().close(fd);
        if (existing && attachedHere) restoreAttachFlags(existing);
        throw error;
      }
    };
    if (netns === undefined) return attach();
    return inNetns(
      netns,
      `open ${mode.toUpperCase()} device "${name ?? `${mode}%d`}"${where}`,
      attach,
    );
  }

  /**
   * Adopts the fd of a TUN/TAP device that was opened elsewhere in this
   * process: by another library, or by another thread that handed a Worker
   * the number. From then on the handle owns the fd, as if
   * {@linkcode TunInterface.open} had made it: {@linkcode TunInterface.close}
   * closes it, and nothing else may use it.
   *
   * What the fd's device is comes from the kernel, not the caller: the name
   * and the TUN/TAP, vnet-header and multi-queue flags from `TUNGETIFF`, and
   * whether packets carry packet information from rtnetlink (`TUNGETIFF`
   * reports `IFF_NOFILTER` in the bit of `IFF_NO_PI`, so its flags cannot
   * tell). The device must be in the calling thread's network namespace.
   *
   * An fd that is not an open, read-write, attached TUN/TAP fd is refused
   * with a {@linkcode TunError} before anything is changed, and stays the
   * caller's: `EBADF` for a number that is not open (or an fd opened
   * read-only), `ENOTTY` or `EINVAL` for a regular file, a socket or another
   * device, `EBADFD` for a `/dev/net/tun` fd attached to no device (no
   * `TUNSETIFF` yet, or its device deleted), `ENODEV` for a device in
   * another network namespace. A queue of a multi-queue device that was
   * taken out with `TUNSETQUEUE` is adopted as it is: reads wait until
   * {@linkcode TunInterface.attachQueue}.
   * A vnet header size other than 10 bytes (`TUNSETVNETHDRSZ`) is refused
   * too, since it belongs to the device and its other users. The fd of a
   * handle that is open in this thread is a TypeError: use that handle.
   *
   * Adopting sets `O_NONBLOCK` and `FD_CLOEXEC` on the fd (the first on the
   * open file description, so a `dup()` of it elsewhere sees it too) and,
   * with `offload`, the device's offloads; nothing else.
   *
   * @example Take over a device another library attached
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * declare const fdFromOtherLibrary: number;
   * using tun = TunInterface.fromFd(fdFromOtherLibrary);
   * console.log(tun.name, tun.mode, tun.packetInfo);
   * for await (const packet of tun) console.log(packet.length);
   * ```
   *
   * @example Adopt in a Worker the number another thread opened
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * self.onmessage = async (event: MessageEvent<number>) => {
   *   using tun = TunInterface.fromFd(event.data);
   *   for await (const packet of tun) await tun.write(packet);
   * };
   * ```
   */
  static fromFd(fd: number, options: TunFromFdOptions = {}): TunInterface {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Options must be an object, got ${describe(options)}`);
    }
    rejectUnknownOptions(options, "TunInterface.fromFd()", FROM_FD_OPTION_KEYS, FROM_FD_REFUSED);
    validateInteger(fd, "fd", 0, FD_MAX);
    // The shape and combination now; whether the device has a vnet header
    // for it, once the fd says.
    const offload = parseOffload(options.offload, true);
    const offloadShown = options.offload === undefined ? "unknown" : Object.fromEntries(
      Object.entries(options.offload).filter(([, on]) => on === true),
    );
    const busyPoll = options.busyPoll === undefined
      ? 0
      : validateInteger(options.busyPoll, "busyPoll", 0, 1_000_000);
    let action = `adopt fd ${fd} as a TUN/TAP device`;
    const holder = held.get(fd);
    if (holder !== undefined) {
      throw new TypeError(
        `Cannot ${action}: it is the fd of an open TunInterface for ${holder} in this ` +
          `thread; use that handle`,
      );
    }

    // Everything is read and checked before anything is changed, so that a
    // refused fd is still the caller's, as it was.
    const notTun = `fd ${fd} is not a TUN/TAP fd (a regular file, a socket or another ` +
      `device): adopt an fd of /dev/net/tun attached to a device with TUNSETIFF`;
    const attached = ifreq();
    ioctl(fd, TUNGETIFF, attached, action, {
      [EBADF]: `fd ${fd} is not open`,
      [ENOTTY]: notTun,
      [EINVAL]: notTun,
      [EBADFD]: `fd ${fd} is /dev/net/tun but attached to no device: TUNSETIFF was not ` +
        `called on it, or its device was deleted`,
    });
    const flags = ifr_flags(attached);
    const type = flags & (IFF_TUN | IFF_TAP);
    if (type !== IFF_TUN && type !== IFF_TAP) {
      // Another driver that answered the same request number.
      throw new TunError({ errno: EINVAL, syscall: "ioctl(TUNGETIFF)", action, hint: notTun });
    }
    const name = ifr_name(attached);
    const mode: TunMode = type === IFF_TAP ? "tap" : "tun";
    const vnetHeader = (flags & IFF_VNET_HDR) !== 0;
    const multiQueue = (flags & IFF_MULTI_QUEUE) !== 0;
    const device = `${mode.toUpperCase()} device "${name}"`;
    action = `adopt fd ${fd} (${device})`;

    const status = check(libc().fcntl(fd, F_GETFL, 0), "fcntl(F_GETFL)", action);
    if ((status & O_ACCMODE) !== O_RDWR) {
      throw new TunError({
        errno: EBADF,
        syscall: "fcntl(F_GETFL)",
        action,
        hint: `fd ${fd} is open for ${
          (status & O_ACCMODE) === O_RDONLY ? "reading" : "writing"
        } only, and a handle both reads and writes: open /dev/net/tun with O_RDWR`,
      });
    }
    if (vnetHeader) {
      const size = new Int32Array(1);
      ioctl(fd, TUNGETVNETHDRSZ, new Uint8Array(size.buffer), action);
      if (size[0] !== VNET_HDR_SIZE) {
        throw new TunError({
          errno: EINVAL,
          syscall: "ioctl(TUNGETVNETHDRSZ)",
          action,
          hint: `its virtio-net headers are ${size[0]} bytes and a handle reads and writes ` +
            `${VNET_HDR_SIZE}-byte ones: set the size to ${VNET_HDR_SIZE} (TUNSETVNETHDRSZ) ` +
            `before adopting it (adopting leaves it alone: the device's other users share it)`,
        });
      }
    } else if (offload !== 0) {
      throw new RangeError(
        `Cannot ${action} with offload: the device has no vnet header (IFF_VNET_HDR), ` +
          `without which a packet cannot say that its checksum or segmentation is left to do`,
      );
    }
    // The packet-info flag, which TUNGETIFF cannot give, and a check that
    // the name leads to the fd's device in this namespace: the other flags
    // must agree.
    const elsewhere = (other: string) =>
      new TunError({
        errno: ENODEV,
        syscall: "netlink(RTM_GETLINK)",
        action,
        hint: `the device is not in this thread's network namespace (${other}): adopt it ` +
          `from a thread in the device's namespace`,
      });
    let info: TunDeviceInfo;
    try {
      info = tunDeviceInfo(name);
    } catch (error) {
      if (!(error instanceof TunError)) throw error;
      if (error.errno === ENODEV) throw elsewhere(`no interface here is named "${name}"`);
      if (error.errno === EINVAL) throw elsewhere(`"${name}" here is not a TUN/TAP device`);
      throw error;
    }
    if (info.mode !== mode || info.vnetHdr !== vnetHeader || info.multiQueue !== multiQueue) {
      throw elsewhere(`the "${name}" here is another device, with other flags`);
    }
    const found = libc().if_nametoindex(cstring(name));
    const index = check(found === 0 ? -1 : found, "if_nametoindex", action);

    if (options.offload !== undefined) setOffload(fd, offload, device);
    const descriptorFlags = check(libc().fcntl(fd, F_GETFD, 0), "fcntl(F_GETFD)", action);
    let readiness: Readiness;
    try {
      check(libc().fcntl(fd, F_SETFL, status | O_NONBLOCK), "fcntl(F_SETFL)", action);
      check(libc().fcntl(fd, F_SETFD, descriptorFlags | FD_CLOEXEC), "fcntl(F_SETFD)", action);
      readiness = new Readiness(fd, () => device);
    } catch (error) {
      libc().fcntl(fd, F_SETFL, status);
      libc().fcntl(fd, F_SETFD, descriptorFlags);
      throw error;
    }
    try {
      return new TunInterface(
        fd,
        readiness,
        name,
        mode,
        {
          packetInfo: info.pi,
          vnetHeader,
          multiQueue,
          // Offloads left as found may include segmentation: size reads for it.
          offload: options.offload === undefined && vnetHeader ? SEGMENTATION_OFFLOADS : offload,
          offloadShown,
        },
        index,
        busyPoll,
      );
    } catch (error) {
      // Only the MTU read can fail here, when the device was deleted in the
      // meantime and the fd is of no use to anyone: it is closed.
      readiness.close();
      throw error;
    }
  }

  /**
   * Removes a TUN or TAP device by name, as `ip link del` does: it checks
   * over rtnetlink that the name is a TUN/TAP device, then deletes it by
   * index (`RTM_DELLINK`). That works whether or not the device is
   * persistent and whether or not something is attached: handles attached
   * elsewhere then fail their reads with `EBADFD`. A name that does not
   * exist fails with `ENODEV`, one that is not a TUN/TAP device with
   * `EINVAL`, and nothing is deleted.
   *
   * @example Remove a device left by `tuntap create`
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * TunInterface.destroy("tun0");
   * ```
   */
  static destroy(name: string): void {
    destroyTunDevice(name);
  }

  /** The kernel's name for the device, e.g. `"tun0"`. */
  get name(): string {
    return this.#name;
  }

  /** `"tun"` or `"tap"`. */
  get mode(): TunMode {
    return this.#mode;
  }

  /** Whether packets carry the 4-byte packet-information header. */
  get packetInfo(): boolean {
    return this.#packetInfo;
  }

  /** Whether packets carry the 10-byte `struct virtio_net_hdr` (`IFF_VNET_HDR`). */
  get vnetHeader(): boolean {
    return this.#vnetHeader;
  }

  /** Whether the device is multi-queue (`IFF_MULTI_QUEUE`) and this handle one of its queues. */
  get multiQueue(): boolean {
    return this.#multiQueue;
  }

  /** Whether {@linkcode TunInterface.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The device's file descriptor, or -1 once the handle is closed (as a
   * closed Python socket's `fileno()` and Go's `File.Fd()` say): a stale
   * number may already belong to whatever the process opened next, while
   * every system call refuses -1 with `EBADF`.
   *
   * The handle owns the fd. It is for calls the library does not make
   * (`TUNSETSNDBUF`, `TUNATTACHFILTER`, `fstat`, …) and must be left as it
   * is: do not close it (call {@linkcode TunInterface.close}), do not change
   * its flags (it must stay `O_NONBLOCK`; waiting relies on it), and do not
   * read or write it: a packet read there is lost to the handle's readers,
   * and a write there jumps ahead of the handle's writes that wait for room.
   * Nor is it for {@linkcode TunInterface.fromFd} while the handle is open:
   * two owners would each close it. To give a Worker the device, let it
   * open a queue of its own (`multiQueue: true`).
   *
   * @example Enlarge the socket buffer the library does not set
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * const libc = Deno.dlopen("libc.so.6", {
   *   ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
   * });
   * using tun = TunInterface.open();
   * const TUNSETSNDBUF = 0x400454d4n;
   * libc.symbols.ioctl(tun.fd, TUNSETSNDBUF, new Uint8Array(new Int32Array([1 << 20]).buffer));
   * ```
   */
  get fd(): number {
    return this.#closed ? -1 : this.#fd;
  }

  /**
   * The least length of a buffer that {@linkcode TunInterface.readInto} and
   * {@linkcode TunInterface.readBatch} accept: the largest packet the device
   * can hand over (its MTU, or 65535 bytes with a segmentation offload) plus
   * every header it puts before it (4 bytes of packet information, 10 of
   * virtio-net header, 18 of Ethernet and VLAN header for TAP). The kernel
   * cuts a longer packet to the buffer without a word, so shorter buffers
   * are refused. It follows {@linkcode TunInterface.setMtu}; an MTU raised
   * by someone else is noticed on the first packet that fills a buffer,
   * which then fails with `EMSGSIZE` rather than pass for whole.
   *
   * @example Buffers for a batch read
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ mtu: 9000 });
   * const buffers = Array.from({ length: 64 }, () => new Uint8Array(tun.readBufferSize));
   * ```
   */
  get readBufferSize(): number {
    return this.#io.readBufferSize;
  }

  /**
   * The next packet the kernel sent into the device, exactly its length;
   * `null` once the device is closed.
   *
   * Each packet is its own `Uint8Array` whose bytes never change afterwards,
   * but to spare an allocation per packet it is a view into a shared slab
   * (`packet.buffer`, 256 KiB) that holds the packets read before and after
   * it: use `packet.byteOffset` with `packet.buffer`, and `packet.slice()`
   * for a copy to keep for long (a slab lives as long as any of its packets).
   *
   * @example Read one packet, giving up after a second
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * const packet = await tun.read({ signal: AbortSignal.timeout(1000) });
   * ```
   */
  read(options?: TunReadOptions): Promise<Uint8Array | null> {
    return this.#io.read(options?.signal);
  }

  /**
   * Reads one packet into `buffer` and resolves to its length (`null` once
   * the device is closed): no allocation at all. `buffer` must hold at least
   * {@linkcode TunInterface.readBufferSize} bytes (a RangeError otherwise,
   * before anything is read).
   *
   * @example Reuse one buffer for every packet
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * const buffer = new Uint8Array(tun.readBufferSize);
   * let length;
   * while ((length = await tun.readInto(buffer)) !== null) {
   *   console.log(buffer.subarray(0, length));
   * }
   * ```
   */
  readInto(buffer: Uint8Array, options?: TunReadOptions): Promise<number | null> {
    return this.#io.readInto(buffer, options?.signal);
  }

  /**
   * Reads as many packets as the kernel has queued, at least one and at
   * most `buffers.length`: packet `i` goes into `buffers[i]`, its length into
   * `sizes[i]`, and the promise resolves to the count (`null` once closed).
   * It waits only when no packet is queued, and returns as soon as one is
   * read; one system call per packet and nothing allocated per packet. Each
   * buffer must hold {@linkcode TunInterface.readBufferSize} bytes and
   * `sizes` must have room for a length per buffer (checked before any
   * read). Aborting rejects a waiting call and loses no packet. A read that
   * fails after some packets were read returns those; the failure comes
   * with the next call.
   *
   * @example Drain the queue 64 packets at a time
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * const buffers = Array.from({ length: 64 }, () => new Uint8Array(tun.readBufferSize));
   * const sizes = new Uint32Array(buffers.length);
   * let count;
   * while ((count = await tun.readBatch(buffers, sizes)) !== null) {
   *   for (let i = 0; i < count; i++) console.log(buffers[i].subarray(0, sizes[i]));
   * }
   * ```
   */
  readBatch(
    buffers: Uint8Array[],
    sizes: Uint32Array | number[],
    options?: TunReadOptions,
  ): Promise<number | null> {
    return this.#io.readBatch(buffers, sizes, options?.signal);
  }

  /**
   * Writes one whole packet (with the headers the device takes before it:
   * packet information, virtio-net header) and resolves to the bytes
   * written. When the kernel has no room it waits until there is: no packet
   * is dropped silently, and writes keep their order.
   *
   * @example Hand the kernel an IPv4 packet
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * declare const packet: Uint8Array;
   * await tun.write(packet);
   * ```
   */
  write(packet: Uint8Array): Promise<number> {
    return this.#io.write(packet);
  }

  /**
   * Writes every packet, in order and after any write still waiting, and
   * resolves to how many were written (all of them). Waits for room as
   * {@linkcode TunInterface.write} does; one system call per packet and
   * nothing allocated per packet. Every packet is checked before the first
   * is written. When the kernel refuses one, the {@linkcode TunError}'s
   * `written` says how many went before it; the rest were not written.
   *
   * @example Forward a batch from one device to another
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using a = TunInterface.open();
   * using b = TunInterface.open();
   * const buffers = Array.from({ length: 64 }, () => new Uint8Array(a.readBufferSize));
   * const sizes = new Uint32Array(buffers.length);
   * const count = await a.readBatch(buffers, sizes);
   * if (count) await b.writeBatch(buffers.slice(0, count).map((b, i) => b.subarray(0, sizes[i])));
   * ```
   */
  writeBatch(packets: Uint8Array[]): Promise<number> {
    return this.#io.writeBatch(packets);
  }

  /**
   * Yields packets until the device is closed. With a signal, aborting
   * rejects the pending step with the signal's reason and leaves the device
   * open.
   *
   * @example Stop listening after five seconds
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * try {
   *   for await (const packet of tun.packets({ signal: AbortSignal.timeout(5000) })) {
   *     console.log(packet.length);
   *   }
   * } catch (error) {
   *   if ((error as DOMException).name !== "TimeoutError") throw error;
   * }
   * ```
   */
  packets(options?: TunReadOptions): AsyncIterableIterator<Uint8Array> {
    const signal = options?.signal;
    const done: IteratorReturnResult<undefined> = { done: true, value: undefined };
    // A plain iterator rather than an async generator: with packets queued,
    // each step is one synchronous read and one settled promise.
    const io = this.#io;
    const step = (packet: Uint8Array | null): IteratorResult<Uint8Array> =>
      packet ? { done: false, value: packet } : done;
    const iterator: AsyncIterableIterator<Uint8Array> = {
      next: () => {
        try {
          signal?.throwIfAborted();
          const packet = io.closed ? undefined : io.readNow();
          if (packet) return Promise.resolve({ done: false, value: packet });
        } catch (error) {
          return Promise.reject(error);
        }
        return io.read(signal).then(step);
      },
      return: () => Promise.resolve(done),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Yields packets until the device is closed: `for await (const p of tun)`. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.packets();
  }

  /**
   * The packets as a stream, one chunk per packet. It is pull-based: nothing
   * is read from the device until the consumer asks, so a slow consumer
   * leaves packets in the kernel's queue (which drops and counts them)
   * rather than in memory. Cancelling the stream closes the device.
   *
   * @example Forward every packet from one device to another
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using a = TunInterface.open();
   * using b = TunInterface.open();
   * await a.readable.pipeTo(b.writable);
   * ```
   */
  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= packetReadable(this.#io, () => this.close());
    return this.#readable;
  }

  /**
   * A stream that writes each chunk as one packet; a failed write errors it
   * with the {@linkcode TunError}. Closing or aborting the stream leaves the
   * device open: it has no write side to shut on its own.
   *
   * @example Write packets from a generator
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * declare const packets: Uint8Array[];
   * await ReadableStream.from(packets).pipeTo(tun.writable);
   * ```
   */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= packetWritable(this.#io);
    return this.#writable;
  }

  /**
   * The kernel's 64-bit counters of the device (`IFLA_STATS64`), read on
   * every call, as `ip -s link show` prints them. They count from the
   * kernel's side: `txPackets`/`txBytes` are what was read from the device
   * (by this handle and any other queue), `rxPackets`/`rxBytes` what was
   * written to it; `txDropped` counts packets routed into the device while
   * its queue was full, `rxDropped` writes the kernel refused.
   *
   * @example Print how much the program has read and written
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ addresses: ["192.0.2.1/24"], up: true });
   * const { txPackets, rxPackets, txDropped } = tun.stats();
   * console.log(`read ${txPackets}, wrote ${rxPackets}, ${txDropped} dropped unread`);
   * ```
   */
  stats(): TunDeviceStats {
    return readLinkStats(this.#link);
  }

  /**
   * Moves the device to another network namespace (`IFLA_NET_NS_FD`, as
   * `ip link set tun0 netns blue` does) and keeps working on it: reads and
   * writes go on through the fd, and configuration goes through a netlink
   * socket of the target namespace. The name stays; the index is read back
   * there, since the kernel may hand out another one. Its addresses and
   * routes do not move with it (the kernel drops them) and it arrives down.
   *
   * @example Hand a configured device to a namespace
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ name: "tun0" });
   * tun.moveToNetns("blue");
   * tun.addAddress("192.0.2.1/24");
   * tun.up();
   * ```
   */
  moveToNetns(netns: string | number): void {
    const target = validateNetns(netns);
    const action = `move ${this.#link.device} to ${describeNetns(target)}`;
    withNetnsFd(target, action, (fd) => moveLink(this.#link, fd, action));
    const netlink = netnsSocket(target, action);
    const attached = ifreq();
    ioctl(this.#fd, TUNGETIFF, attached, action);
    const index = withNetlinkSocket(netlink, () => readLinkByName(ifr_name(attached), action))
      .index;
    this.#link = this.#makeLink(index, netlink);
  }

  /**
   * The device's link events as they happen (as `watchLinks()`
   * reports them): `"changed"` when its name, administrative state, carrier
   * or MTU changes, then `"removed"` when it is deleted, after which the
   * iteration ends. Closing the handle of a device that is not persistent
   * deletes it, so the events end that way too; a persistent device's go on
   * until the loop breaks or the signal is aborted. Aborting rejects the
   * pending step with the signal's reason. Each iteration holds a netlink
   * socket until it ends.
   *
   * @example Log what happens to a device for a minute
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * try {
   *   for await (const event of tun.events({ signal: AbortSignal.timeout(60_000) })) {
   *     console.log(`${event.kind}: ${event.up ? "up" : "down"}, MTU ${event.mtu}`);
   *   }
   * } catch (error) {
   *   if ((error as DOMException).name !== "TimeoutError") throw error;
   * }
   * ```
   */
  events(options?: TunReadOptions): AsyncIterableIterator<TunLinkEvent> {
    const verb = "watch the link events of";
    // The index outlives the device: make sure it still leads to this one.
    if (this.#closed) throw this.#error(EBADF, "socket(AF_NETLINK)", verb);
    this.#verify("socket(AF_NETLINK)", `${verb} ${this.#link.device}`);
    return watchLinkEvents(this.#link.index, { ...options, netlink: this.#link.netlink });
  }

  /**
   * Detaches from the device and closes its fd: when `close()` returns, the
   * device is gone (unless it is persistent or has other queues) and its
   * name is free. Idempotent. Every pending read resolves `null`, iterators
   * end, and waiting writes reject with `EBADF`.
   *
   * @example Close from a signal handler
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * const tun = TunInterface.open();
   * Deno.addSignalListener("SIGINT", () => tun.close());
   * for await (const _packet of tun) { }
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    forgotten.unregister(this);
    held.delete(this.#fd);
    this.#io.close();
    this.#readiness.close();
  }

  /** Calls {@linkcode TunInterface.close}, so `using tun = …` works. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Calls {@linkcode TunInterface.close}, so `await using tun = …` works. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  /**
   * The interface index, taken once after the attach. Every configuration
   * call addresses the device by it, so renaming the device does not break
   * them. It stays readable after {@linkcode TunInterface.close}.
   *
   * @example Match the device in a netlink or `ip -j` listing
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * console.log(`${tun.name} has index ${tun.index}`);
   * ```
   */
  get index(): number {
    return this.#link.index;
  }

  /**
   * The device's MTU, read from the kernel on every access.
   *
   * @example Size a buffer by the MTU
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * const buffer = new Uint8Array(tun.mtu);
   * ```
   */
  get mtu(): number {
    return readLink(this.#link, `read the MTU of ${this.#link.device}`).mtu;
  }

  /**
   * Sets the MTU. `mtu` must be a whole number from 1 to 65535; the kernel
   * enforces the device's own limits (68 and up) with `EINVAL`. Below 1280
   * the kernel turns IPv6 off on the device and drops its IPv6 addresses.
   *
   * @example Leave room for an encapsulation header
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * tun.setMtu(1420);
   * ```
   */
  setMtu(mtu: number): void {
    setMtu(this.#link, validateMtu(mtu));
    this.#io.refreshReadBufferSize();
  }

  /**
   * Brings the device up (`IFF_UP`), as `ip link set DEV up` does.
   *
   * @example Bring a configured device up
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * tun.addAddress("192.0.2.1/24");
   * tun.up();
   * ```
   */
  up(): void {
    setUp(this.#link, true);
  }

  /**
   * Takes the device down. The kernel then drops the routes through it and
   * its IPv6 addresses (unless `keep_addr_on_down` is set); IPv4 addresses
   * stay.
   *
   * @example Take the device down for a while
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ addresses: ["192.0.2.1/24"], up: true });
   * tun.down();
   * ```
   */
  down(): void {
    setUp(this.#link, false);
  }

  /**
   * Whether the device is administratively up (`IFF_UP`), read from the
   * kernel on every access.
   *
   * @example Bring the device up unless it is
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ name: "tun0" });
   * if (!tun.isUp) tun.up();
   * ```
   */
  get isUp(): boolean {
    return readLink(this.#link, `read the state of ${this.#link.device}`).up;
  }

  /**
   * Adds an IPv4 or IPv6 address in CIDR form (`"192.0.2.1/24"`,
   * `"2001:db8::1/64"`; without a prefix it is a host address, /32 or /128).
   * With `peer`, it is a point-to-point address: the kernel routes the peer
   * (with the prefix given) through the device. IPv6 addresses are added
   * with `IFA_F_NODAD`, so they are usable at once instead of tentative
   * while duplicate address detection runs.
   *
   * The text is checked before any syscall (TypeError or RangeError naming
   * the bad part); the kernel's refusals are {@linkcode TunError}s, e.g.
   * `EEXIST` when the device already has the address.
   *
   * @example Give a point-to-point TUN device both families
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * tun.addAddress("192.0.2.1/32", { peer: "192.0.2.2" });
   * tun.addAddress("2001:db8::1/64");
   * tun.up();
   * ```
   */
  addAddress(cidr: string, options?: TunAddressOptions): void {
    addAddress(this.#link, parseAddress(cidr, options));
  }

  /**
   * Removes the address with this local address and prefix length (a peer
   * address is matched by its local address). Fails with `EADDRNOTAVAIL`
   * when the device has no such address.
   *
   * @example Move the device to another address
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ addresses: ["192.0.2.1/24"] });
   * tun.removeAddress("192.0.2.1/24");
   * tun.addAddress("198.51.100.1/24");
   * ```
   */
  removeAddress(cidr: string): void {
    removeAddress(this.#link, parseAddress(cidr));
  }

  /**
   * The device's addresses of both families in CIDR form, as the kernel
   * lists them (what `ip addr show dev DEV` shows): including the IPv6
   * link-local `fe80::` addresses the kernel adds itself when the device
   * comes up. A point-to-point address appears as its local address with
   * its prefix; IPv6 addresses are in RFC 5952 form.
   *
   * @example Print the addresses
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ addresses: ["192.0.2.1/24"], up: true });
   * console.log(tun.addresses()); // ["192.0.2.1/24", "fe80::…/64"]
   * ```
   */
  addresses(): string[] {
    return listAddresses(this.#link);
  }

  /**
   * Adds a route through the device to the main table: `cidr` is the
   * destination network (`"198.51.100.0/24"`, `"0.0.0.0/0"` for a default
   * route; without a prefix a host route), with host bits clear. `via` is a
   * gateway on one of the device's networks, `metric` the priority (0 to
   * 4294967295, lower wins). An IPv4 route needs the device up. Fails with
   * `EEXIST` when the table has the route, `ENETUNREACH` when the gateway
   * is not on a network of the device.
   *
   * @example Route a network through a gateway behind the device
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ addresses: ["192.0.2.1/24"], up: true });
   * tun.addRoute("198.51.100.0/24", { via: "192.0.2.254", metric: 10 });
   * tun.addRoute("2001:db8:1::/48");
   * ```
   */
  addRoute(cidr: string, options?: TunRouteOptions): void {
    addRoute(this.#link, parseRoute(cidr, options));
  }

  /**
   * Removes a main-table route through the device. `via` and `metric`, when
   * given, must match; omitted they match any. Fails with `ESRCH` when there
   * is no such route.
   *
   * @example Remove a route added earlier
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({
   *   addresses: ["192.0.2.1/24"],
   *   routes: ["198.51.100.0/24"],
   *   up: true,
   * });
   * tun.removeRoute("198.51.100.0/24");
   * ```
   */
  removeRoute(cidr: string, options?: TunRouteOptions): void {
    removeRoute(this.#link, parseRoute(cidr, options));
  }

  /**
   * The main table's unicast routes whose output device is this one, IPv4
   * first: what `ip route show dev DEV` and `ip -6 route show dev DEV` show.
   * That includes the routes the kernel makes for an address's network and
   * for IPv6 link-local `fe80::/64`, and leaves out the local, broadcast
   * and multicast routes the kernel keeps in its local table and
   * multipath routes. `metric` is present whenever the kernel reports one
   * (IPv4 routes of metric 0 have none).
   *
   * @example Print the routing table of the device
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ addresses: ["192.0.2.1/24"], up: true });
   * for (const { destination, via, metric } of tun.routes()) {
   *   console.log(destination, via ?? "direct", metric ?? 0);
   * }
   * ```
   */
  routes(): TunRoute[] {
    return listRoutes(this.#link);
  }

  /**
   * The MAC address of a TAP device, e.g. `"02:00:5e:10:00:01"`. A TUN
   * device carries IP packets without an Ethernet header and has none:
   * reading it throws a TypeError.
   *
   * @example Print the MAC address
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tap = TunInterface.open({ mode: "tap" });
   * console.log(tap.mac);
   * ```
   */
  get mac(): string {
    this.#requireTap("has no MAC address");
    const { mac } = readLink(this.#link, `read the MAC address of ${this.#link.device}`);
    return mac ? formatMac(mac) : "";
  }

  /**
   * Sets the MAC address of a TAP device (six hexadecimal pairs separated
   * by `:` or `-`; a unicast address, not all zeros). On a TUN device it
   * throws a TypeError.
   *
   * @example Give the device a locally administered address
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tap = TunInterface.open({ mode: "tap" });
   * tap.setMac("02:00:5e:10:00:01");
   * ```
   */
  setMac(mac: string): void {
    this.#requireTap("cannot have a MAC address");
    setMac(this.#link, parseDeviceMac(mac));
  }

  /**
   * Raises or drops the carrier (`TUNSETCARRIER`): with it off the device
   * is up but its link is down (`NO-CARRIER`), and the kernel routes
   * nothing into it, as if a cable were unplugged.
   *
   * @example Simulate a link failure
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ addresses: ["192.0.2.1/24"], up: true });
   * tun.setCarrier(false);
   * ```
   */
  setCarrier(on: boolean): void {
    if (typeof on !== "boolean") {
      throw new TypeError(`Carrier must be a boolean, got ${describe(on)}`);
    }
    const verb = `${on ? "raise" : "drop"} the carrier of`;
    if (this.#closed) throw this.#error(EBADF, "ioctl(TUNSETCARRIER)", verb);
    this.#onDevice(
      () =>
        ioctl(
          this.#fd,
          TUNSETCARRIER,
          new Uint8Array(new Int32Array([on ? 1 : 0]).buffer),
          `${verb} ${this.#link.device}`,
        ),
      "ioctl(TUNSETCARRIER)",
      `${verb} ${this.#link.device}`,
    );
  }

  /**
   * Takes this handle's queue out of its multi-queue device
   * (`TUNSETQUEUE` with `IFF_DETACH_QUEUE`): the kernel stops giving it
   * packets and spreads the flows over the other queues; the device stays.
   * While detached, reads wait (a pending read stays pending) until
   * {@linkcode TunInterface.attachQueue}, and writes still reach the
   * kernel. Throws a TypeError on a handle that is not multi-queue, and
   * fails with `EINVAL` when the queue is already detached.
   *
   * @example Drain one queue's share into the others
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using a = TunInterface.open({ name: "mq0", multiQueue: true });
   * using b = TunInterface.open({ name: "mq0", multiQueue: true });
   * a.detachQueue(); // every flow now goes to b
   * a.attachQueue();
   * ```
   */
  detachQueue(): void {
    this.#setQueue(false);
  }

  /**
   * Puts a queue taken out with {@linkcode TunInterface.detachQueue} back
   * into its device (`TUNSETQUEUE` with `IFF_ATTACH_QUEUE`); the kernel
   * spreads flows over it again. Fails with `EINVAL` when the queue is
   * already attached.
   *
   * @example Take a queue out while it is busy elsewhere
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using queue = TunInterface.open({ name: "mq0", multiQueue: true });
   * queue.detachQueue();
   * queue.attachQueue();
   * ```
   */
  attachQueue(): void {
    this.#setQueue(true);
  }

  #setQueue(attach: boolean): void {
    const verb = `${attach ? "attach" : "detach"} a queue of`;
    if (!this.#multiQueue) {
      throw new TypeError(
        `Cannot ${verb} ${this.#link.device}: the handle is not multi-queue ` +
          `(open it with multiQueue: true)`,
      );
    }
    if (this.#closed) throw this.#error(EBADF, "ioctl(TUNSETQUEUE)", verb);
    this.#onDevice(
      () =>
        ioctl(
          this.#fd,
          TUNSETQUEUE,
          set_ifr_flags(ifreq(), attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE),
          `${verb} ${this.#link.device}`,
          { [EINVAL]: `the queue is already ${attach ? "attached" : "detached"}` },
        ),
      "ioctl(TUNSETQUEUE)",
      `${verb} ${this.#link.device}`,
    );
  }

  /**
   * The transmit queue length (`txqueuelen`): how many packets the kernel
   * queues for the device before dropping them, read on every access.
   *
   * @example Print the queue length
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * console.log(tun.txQueueLength); // 500
   * ```
   */
  get txQueueLength(): number {
    return readLink(this.#link, `read the transmit queue length of ${this.#link.device}`)
      .txQueueLength;
  }

  /**
   * Sets the transmit queue length, a whole number from 0 to 4294967295.
   *
   * @example Queue more packets for a slow reader
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open();
   * tun.setTxQueueLength(5000);
   * ```
   */
  setTxQueueLength(length: number): void {
    setTxQueueLength(this.#link, validateTxQueueLength(length));
  }

  #requireTap(problem: string): void {
    if (this.#mode !== "tap") {
      throw new TypeError(
        `${this.#link.device} ${problem}: a TUN device carries IP packets without an ` +
          `Ethernet header; only TAP devices (mode "tap") have MAC addresses`,
      );
    }
  }

  /**
   * Shows what the handle is, e.g. in `console.log(tun)`: name, mode,
   * index, the flags it was opened with and whether it is closed.
   *
   * @example Log a handle
   * ```ts ignore
   * import { TunInterface } from "@tuntap/tuntap";
   *
   * using tun = TunInterface.open({ name: "tun0" });
   * console.log(tun);
   * // TunInterface { name: "tun0", mode: "tun", index: 4, packetInfo: false, … closed: false }
   * ```
   */
  [Symbol.for("Deno.customInspect")](
    inspect: typeof Deno.inspect,
    options: Deno.InspectOptions,
  ): string {
    const shown = {
      name: this.#name,
      mode: this.#mode,
      index: this.#link.index,
      packetInfo: this.#packetInfo,
      vnetHeader: this.#vnetHeader,
      multiQueue: this.#multiQueue,
      offload: this.#offload,
      closed: this.#closed,
    };
    return `TunInterface ${inspect(shown, options)}`;
  }

  /**
   * Throws a TunError ENODEV unless the index still names this handle's
   * device; every netlink request of the handle runs it first.
   *
   * Two checks, because each alone can be fooled: the fd stays attached to
   * its device for the device's whole life (TUNGETIFF answers EBADFD once
   * it is deleted), and the device's name at the index in this namespace
   * tells whether the index still leads to it (a device moved to another
   * namespace keeps the fd attached but leaves its index behind). The
   * kernel cannot check it for us: with an index, RTM_SETLINK takes
   * IFLA_IFNAME as a rename, which would rename the stranger, and address
   * and route requests carry no name. What remains is the microseconds
   * between this check and the request, in which the device would have to
   * be deleted and another created at its index.
   */
  // netlink: the socket of the device's namespace, when not the program's.
  #makeLink(index: number, netlink: number | undefined): Link {
    const closed = () => this.#closed;
    return {
      index,
      device: `${this.#mode.toUpperCase()} device "${this.#name}"`,
      get closed() {
        return closed();
      },
      verify: (syscall, action) => this.#verify(syscall, action),
      netlink,
    };
  }

  #verify(syscall: string, action: string): void {
    const name = this.#onDevice(
      () => {
        const attached = ifreq();
        ioctl(this.#fd, TUNGETIFF, attached, action);
        return ifr_name(attached);
      },
      syscall,
      action,
    );
    let atIndex: string | undefined;
    try {
      const { index, device, netlink } = this.#link;
      const bare = { index, device, closed: false, netlink };
      atIndex = readLink(bare, action).name;
    } catch (error) {
      if (!(error instanceof TunError && error.errno === ENODEV)) throw error;
    }
    if (atIndex !== name) {
      throw new TunError({
        errno: ENODEV,
        syscall,
        action,
        hint: `the device left this network namespace; interface index ${this.#link.index} ` +
          (atIndex === undefined ? "is free" : `now names "${atIndex}"`),
      });
    }
  }

  // Runs an ioctl on the fd; once the device is deleted the fd answers
  // EBADFD, which is reported as the ENODEV that netlink calls give.
  #onDevice<T>(call: () => T, syscall: string, action: string): T {
    try {
      return call();
    } catch (error) {
      if (!(error instanceof TunError && error.errno === EBADFD)) throw error;
      throw new TunError({
        errno: ENODEV,
        syscall,
        action,
        hint: "the device was deleted; open it again to recreate it",
      });
    }
  }

  #error(code: number, syscall: string, verb: string): TunError {
    return new TunError({
      errno: code,
      syscall,
      action: `${verb} ${this.#mode.toUpperCase()} device "${this.#name}"`,
    });
  }
}
