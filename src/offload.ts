/**
 * Offloads (`TUNSETOFFLOAD`): which work the kernel leaves to the program
 * (checksums, segmentation) and so which packets a read may carry.
 *
 * @module
 */
import {
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_TSO_ECN,
  TUN_F_USO4,
  TUN_F_USO6,
  TUNSETOFFLOAD,
} from "../ffi/constants.ts";
import { EINVAL } from "../ffi/errno.ts";
import { ioctlValue } from "./syscall.ts";
import { TunError } from "./tun_error.ts";
import { describe } from "./validate.ts";

/**
 * The offloads to turn on, for `TunInterface.open({ offload })`. Each is
 * off unless `true`. With any on, the device must have `vnetHeader: true`:
 * the `struct virtio_net_hdr` before each packet then says what is left to
 * do (see `parseVirtioNetHeader` and `gsoSplit` in the packet toolkit).
 */
export interface TunOffloadOptions {
  /**
   * `TUN_F_CSUM`: packets may arrive with their TCP/UDP checksum left to
   * complete (`VIRTIO_NET_HDR_F_NEEDS_CSUM`), and writes may leave it so.
   * Every other offload needs it.
   */
  checksum?: boolean;
  /** `TUN_F_TSO4`: TCP over IPv4 may arrive as one super-packet of up to 64 KiB. */
  tso4?: boolean;
  /** `TUN_F_TSO6`: likewise for TCP over IPv6. */
  tso6?: boolean;
  /** `TUN_F_TSO_ECN`: TSO super-packets may carry the ECN CWR flag; needs `tso4` or `tso6`. */
  ecn?: boolean;
  /** `TUN_F_USO4`: UDP over IPv4 may arrive as one super-packet of equal datagrams (Linux 6.2+). */
  uso4?: boolean;
  /** `TUN_F_USO6`: likewise for UDP over IPv6 (Linux 6.2+). */
  uso6?: boolean;
}

const bits: Record<keyof TunOffloadOptions, { bit: number; name: string }> = {
  checksum: { bit: TUN_F_CSUM, name: "TUN_F_CSUM" },
  tso4: { bit: TUN_F_TSO4, name: "TUN_F_TSO4" },
  tso6: { bit: TUN_F_TSO6, name: "TUN_F_TSO6" },
  ecn: { bit: TUN_F_TSO_ECN, name: "TUN_F_TSO_ECN" },
  uso4: { bit: TUN_F_USO4, name: "TUN_F_USO4" },
  uso6: { bit: TUN_F_USO6, name: "TUN_F_USO6" },
};

/** The offloads that make reads carry super-packets larger than the MTU. */
export const SEGMENTATION_OFFLOADS = TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6;

/**
 * Checks the `offload` option and returns its `TUN_F_*` mask (0 when
 * omitted). TypeError for a wrong shape or an unknown key, RangeError for a
 * combination the kernel would refuse.
 */
export function parseOffload(value: unknown, vnetHeader: boolean): number {
  if (value === undefined) return 0;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`offload must be an object of booleans, got ${describe(value)}`);
  }
  let mask = 0;
  for (const [key, on] of Object.entries(value)) {
    const known = bits[key as keyof TunOffloadOptions];
    if (!known) {
      throw new TypeError(
        `offload has no option ${JSON.stringify(key)}: use ${Object.keys(bits).join(", ")}`,
      );
    }
    if (on !== undefined && typeof on !== "boolean") {
      throw new TypeError(`offload.${key} must be a boolean, got ${describe(on)}`);
    }
    if (on) mask |= known.bit;
  }
  if (mask === 0) return 0;
  if (!vnetHeader) {
    throw new RangeError(
      "offload needs vnetHeader: true: without the virtio-net header a packet cannot say " +
        "that its checksum or segmentation is left to do",
    );
  }
  if (!(mask & TUN_F_CSUM)) {
    throw new RangeError(
      "offload.checksum must be true for any other offload: the kernel needs it",
    );
  }
  if ((mask & TUN_F_TSO_ECN) && !(mask & (TUN_F_TSO4 | TUN_F_TSO6))) {
    throw new RangeError("offload.ecn needs offload.tso4 or offload.tso6");
  }
  return mask;
}

/**
 * Sets the offload mask. When the kernel refuses it (EINVAL: it lacks one
 * of them), it finds which by trying each alone, leaves every offload off,
 * and throws a TunError that names it.
 */
export function setOffload(fd: number, mask: number, device: string): void {
  const action = `set the offloads of ${device}`;
  try {
    ioctlValue(fd, TUNSETOFFLOAD, mask, action);
    return;
  } catch (error) {
    if (!(error instanceof TunError && error.errno === EINVAL)) throw error;
  }
  const missing = Object.values(bits).filter(({ bit }) => {
    if (!(mask & bit)) return false;
    const alone = TUN_F_CSUM | bit | (bit === TUN_F_TSO_ECN ? mask & (TUN_F_TSO4 | TUN_F_TSO6) : 0);
    try {
      ioctlValue(fd, TUNSETOFFLOAD, alone, action);
      return false;
    } catch {
      return true;
    }
  });
  ioctlValue(fd, TUNSETOFFLOAD, 0, action);
  throw new TunError({
    errno: EINVAL,
    syscall: "ioctl(TUNSETOFFLOAD)",
    action,
    hint: missing.length
      ? `this kernel lacks ${missing.map(({ name }) => name).join(" and ")}: leave ` +
        `${missing.map(({ bit }) => keyOf(bit)).join(" and ")} off (USO needs Linux 6.2+)`
      : "the kernel refused this combination of offloads",
  });
}

function keyOf(bit: number): string {
  return Object.entries(bits).find(([, known]) => known.bit === bit)![0];
}
