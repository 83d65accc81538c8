/**
 * Helpers for tests that talk to the real kernel. They run only inside the
 * private network namespace that `deno task test` makes (checked, not
 * assumed: the test's network namespace must differ from the one the runner
 * started in), so no
 * test ever creates a device in the machine's own namespace.
 *
 * @module
 */

import { TunInterface, type TunOpenOptions } from "../mod.ts";

const decoder = new TextDecoder();

/**
 * Why this process is not in the private network namespace that the task
 * runner made (so must not touch the network), or undefined when it is.
 */
export function privateNamespaceProblem(): string | undefined {
  const given = Deno.env.get("TUNTAP_KERNEL_UNAVAILABLE");
  if (given) return given;
  if (Deno.env.get("TUNTAP_PRIVATE_NETNS") !== "1") {
    return "not run by `deno task test`, which makes the private network namespace";
  }
  // The runner records the namespace it started in; the tests must be elsewhere.
  const outer = Deno.env.get("TUNTAP_OUTER_NETNS");
  try {
    if (!outer || Deno.readLinkSync("/proc/self/ns/net") === outer) {
      return "this is not a network namespace of its own";
    }
  } catch (error) {
    return `cannot tell which network namespace this is (${(error as Error).message})`;
  }
  return undefined;
}

const problem = privateNamespaceProblem();
const required = Deno.env.get("TUNTAP_REQUIRE_KERNEL_TESTS") === "1";
let announced = false;

/**
 * Registers a test that creates devices or sends packets. Outside the
 * private namespace it is skipped with the reason printed, or fails when
 * `TUNTAP_REQUIRE_KERNEL_TESTS=1`.
 */
export function kernelTest(name: string, fn: () => void | Promise<void>): void {
  if (problem === undefined) {
    Deno.test({ name, fn });
  } else if (required) {
    Deno.test(name, () => {
      throw new Error(`Kernel tests are required but cannot run: ${problem}`);
    });
  } else {
    if (!announced) console.log(`Skipping kernel tests: ${problem}.`);
    announced = true;
    Deno.test({ name, ignore: true, fn });
  }
}

/** Runs `sh -c command`; returns stdout, or throws with stderr. */
export function sh(command: string): string {
  const output = new Deno.Command("sh", { args: ["-c", command], stdin: "null" }).outputSync();
  if (!output.success) {
    throw new Error(
      `\`${command}\` exited with ${output.code}: ${decoder.decode(output.stderr).trim()}`,
    );
  }
  return decoder.decode(output.stdout);
}

/** Runs `ip -j ARGS` and parses its JSON. */
// deno-lint-ignore no-explicit-any
export function ipJson<T = any>(args: string): T {
  const text = sh(`ip -j ${args}`).trim();
  return JSON.parse(text === "" ? "[]" : text) as T;
}

/** Whether an interface of that name exists in this namespace. */
export function interfaceExists(name: string): boolean {
  return new Deno.Command("ip", { args: ["link", "show", "dev", name], stderr: "null" })
    .outputSync().success;
}

let counter = 0;

/** A fresh interface name (at most 15 bytes) unique within this test run. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix.slice(0, 10)}${counter}`;
}

/** Open file descriptors of this process. */
export function openFdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/**
 * Runs a TypeScript snippet in a new `deno run` process with only the
 * permissions given, optionally as another uid/gid (through `setpriv`,
 * using the world-usable deno binary and repository the runner prepared).
 * With `hideDevice`, `/dev/net` is an empty tmpfs in the child's own mount
 * namespace. The snippet imports the module as `"tuntap"`.
 */
export function runScript(
  code: string,
  options: { permissions?: string[]; uid?: number; gid?: number; hideDevice?: boolean } = {},
): { code: number; stdout: string; stderr: string } {
  const shared = Deno.env.get("TUNTAP_SHARED_DIR");
  if (!shared) throw new Error("TUNTAP_SHARED_DIR is not set: run through `deno task test`");
  const script = `${shared}/home/script-${crypto.randomUUID()}.ts`;
  Deno.writeTextFileSync(
    script,
    code.replaceAll(`"tuntap"`, JSON.stringify(`${shared}/repo/mod.ts`)),
  );
  Deno.chmodSync(script, 0o644);
  const denoArgs = [
    "run",
    "--no-prompt",
    "--no-config",
    ...(options.permissions ?? ["--allow-ffi"]),
    script,
  ];
  const privileges = options.uid === undefined ? [] : [
    "setpriv",
    `--reuid=${options.uid}`,
    `--regid=${options.gid ?? options.uid}`,
    "--clear-groups",
  ];
  const hide = options.hideDevice
    ? ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /dev/net && exec "$@"', "sh"]
    : [];
  const [program, ...args] = [...hide, ...privileges, `${shared}/deno`, ...denoArgs];
  const command = new Deno.Command(program, {
    args,
    env: { HOME: `${shared}/home`, DENO_DIR: `${shared}/home/deno-${options.uid ?? 0}` },
    stdin: "null",
  });
  const output = command.outputSync();
  Deno.removeSync(script);
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A named network namespace made inside the test's own, removed on dispose. */
export interface Namespace extends Disposable {
  readonly name: string;
  /** Runs `sh -c command` inside the namespace. */
  sh(command: string): string;
  /** Starts `deno eval` of `code` inside the namespace; resolves to its stdout. */
  deno(code: string): Promise<string>;
}

/** Makes a named network namespace (`ip netns add`) with `lo` up. */
export function namespace(prefix: string): Namespace {
  const name = uniqueName(prefix);
  sh(`ip netns add ${name} && ip -n ${name} link set lo up`);
  return {
    name,
    sh: (command) => sh(`ip netns exec ${name} sh -c '${command.replaceAll("'", `'\\''`)}'`),
    async deno(code) {
      const output = await new Deno.Command("ip", {
        args: ["netns", "exec", name, Deno.execPath(), "eval", "--unstable-net", code],
        stdin: "null",
      }).output();
      if (!output.success) {
        throw new Error(`deno in ${name} exited ${output.code}: ${decoder.decode(output.stderr)}`);
      }
      return decoder.decode(output.stdout);
    },
    [Symbol.dispose]: () => void sh(`ip netns del ${name}`),
  };
}

/** Reads until `accept` takes a packet, failing after `ms` milliseconds (at most 1000 packets). */
export async function readUntil(
  tun: TunInterface,
  accept: (packet: Uint8Array) => boolean,
  ms = 5000,
): Promise<Uint8Array> {
  const signal = AbortSignal.timeout(ms);
  for (let i = 0; i < 1000; i++) {
    const packet = await tun.read({ signal });
    if (packet === null) throw new Error("device closed while waiting for a packet");
    if (accept(packet)) return packet;
  }
  throw new Error("no matching packet among 1000");
}

/** `promise`, or a rejection once `ms` milliseconds pass. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  // A late rejection (a socket closed in a finally) must not go unhandled.
  promise.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the bytes at `offset` are an IPv4 UDP packet. */
export const isIpv4Udp = (packet: Uint8Array, offset = 0): boolean =>
  packet[offset] >> 4 === 4 && packet[offset + 9] === 17;

/**
 * The reply to an IPv4 UDP datagram at `offset`: addresses and ports swapped.
 * Both checksums stay valid, since swapping leaves every sum the same.
 */
export function swapUdp(packet: Uint8Array, offset = 0): Uint8Array {
  const reply = packet.slice();
  const ip = offset;
  const udp = offset + (packet[ip] & 0x0f) * 4;
  reply.set(packet.subarray(ip + 16, ip + 20), ip + 12);
  reply.set(packet.subarray(ip + 12, ip + 16), ip + 16);
  reply.set(packet.subarray(udp + 2, udp + 4), udp);
  reply.set(packet.subarray(udp, udp + 2), udp + 2);
  return reply;
}

/** What {@linkcode udpRoundTrip} saw. */
export interface UdpRoundTrip {
  /** The datagram as read from the device, headers included. */
  packet: Uint8Array;
  /** What `write()` of the reply returned (absent with `reply: false`). */
  written?: number;
  /** The reply's text as the socket received it. */
  received?: string;
  /** Where the socket says the reply came from. */
  from?: Deno.Addr;
}

/**
 * Sends `text` from a socket on 192.0.2.1:`port` (the device must hold
 * 192.0.2.1/24 and be up) to `peer`:5000, reads that datagram from the device
 * (its IP header at `offset`, after any packet-info or vnet header) and,
 * unless `reply` is false, writes back the swapped reply and receives it.
 */
export async function udpRoundTrip(
  tun: TunInterface,
  options: { port: number; peer: string; text: string; offset?: number; reply?: boolean },
): Promise<UdpRoundTrip> {
  const { port, peer, text, offset = 0, reply = true } = options;
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "192.0.2.1", port });
  try {
    await socket.send(new TextEncoder().encode(text), {
      transport: "udp",
      hostname: peer,
      port: 5000,
    });
    const packet = await readUntil(tun, (p) => isIpv4Udp(p, offset));
    if (!reply) return { packet };
    const written = await tun.write(swapUdp(packet, offset));
    const [data, from] = await socket.receive();
    return { packet, written, received: decoder.decode(data), from };
  } finally {
    socket.close();
  }
}

/**
 * A TUN device at 192.0.2.1/24 that sends nothing by itself: IPv6 (router
 * solicitations, MLD reports) is off before the link comes up.
 */
export function quietDevice(prefix: string, options: TunOpenOptions = {}): TunInterface {
  const tun = TunInterface.open({ ...options, name: uniqueName(prefix) });
  sh(`sysctl -qw net.ipv6.conf.${tun.name}.disable_ipv6=1`);
  sh(`ip addr add 192.0.2.1/24 dev ${tun.name} && ip link set ${tun.name} up`);
  return tun;
}
