/**
 * Helpers shared by the kernel tests of the packet toolkit: parsing, ICMP
 * errors and neighbour discovery.
 *
 * @module
 */

import { TunInterface, type TunOpenOptions } from "../mod.ts";
import { type LinkType, PcapWriter } from "../packet/mod.ts";
import { assert } from "./assert.ts";
import { sh, uniqueName } from "./kernel.ts";

const decoder = new TextDecoder();

/** Polls `check` every 20 ms until it returns true, failing after `ms` milliseconds. */
export async function eventually(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Opens a device with addresses and waits until its IPv6 ones are local:
 * the kernel makes them so a moment later, on its addrconf work queue.
 */
export async function openWithAddresses(
  options: Omit<TunOpenOptions, "addresses"> & { name: string; addresses: string[] },
): Promise<TunInterface> {
  const device = TunInterface.open(options);
  try {
    const locals = options.addresses.filter((cidr) => cidr.includes(":"))
      .map((cidr) => `local ${cidr.split("/")[0]} `);
    await eventually(() => {
      const table = sh(`ip -6 route show table local dev ${device.name}`);
      return locals.every((route) => table.includes(route));
    }, `the IPv6 addresses of ${device.name} becoming local`);
    return device;
  } catch (error) {
    device.close();
    throw error;
  }
}

/** A TUN device, up, at 192.0.2.1/24 and 2001:db8::1/64, named from `prefix`. */
export function openTun(prefix: string): Promise<TunInterface> {
  return openWithAddresses({
    name: uniqueName(prefix),
    addresses: ["192.0.2.1/24", "2001:db8::1/64"],
    up: true,
  });
}

/** A TAP device, up, at `addresses`, named from `prefix`. */
export function openTap(prefix: string, addresses: string[]): Promise<TunInterface> {
  return openWithAddresses({ name: uniqueName(prefix), mode: "tap", addresses, up: true });
}

/**
 * Writes the packets to a pcap file and returns what `tcpdump -nn -t -vv`
 * prints for them, one entry per packet, after checking that tcpdump
 * decoded each without complaint (no truncation, no bad checksum).
 */
export async function tcpdumpVerbose(packets: Uint8Array[], link: LinkType): Promise<string[]> {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const writer = new PcapWriter(await Deno.open(path, { write: true }), { link });
    for (const packet of packets) await writer.write(packet);
    await writer.close();
    const output = await new Deno.Command("tcpdump", {
      args: ["-r", path, "-nn", "-t", "-vv"],
      stdin: "null",
    }).output();
    assert(output.success, `tcpdump failed: ${decoder.decode(output.stderr)}`);
    const text = decoder.decode(output.stdout);
    assert(!/truncated|malformed|bad-len|\[\||\bbad\b|incorrect|wrong/i.test(text), text);
    // With -vv a packet's decoding goes on over indented lines.
    const entries = text.split(/\n(?=\S)/).filter((entry) => entry.trim() !== "");
    assert(entries.length === packets.length, text);
    return entries;
  } finally {
    await Deno.remove(path);
  }
}
