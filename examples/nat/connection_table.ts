/**
 * The masquerading NAT's connection table: which inside endpoint got which
 * public port, which remote endpoints it talks to, in which state, and
 * until when.
 *
 * Two levels, as RFC 4787 asks of a NAT that games and VoIP can cross: a
 * *mapping* per inside endpoint (protocol, address, port), which keeps its
 * public port whatever the destination ("endpoint-independent mapping",
 * REQ-1), and a *flow* per remote endpoint under it, which is what lets
 * replies in ("address and port-dependent filtering", as Linux does) and
 * what times out. A mapping goes when its last flow does.
 *
 * Lookups on the packet path take their key straight from the packet's
 * bytes: an IPv4 key is a number (address, port and protocol fit in 53
 * bits), so a packet of an existing IPv4 flow allocates nothing here.
 * IPv6 keys are short strings of the address's 16-bit words.
 *
 * @module
 */

import { formatIp } from "../../packet/mod.ts";

/** The protocols the NAT translates; an ICMP echo's identifier serves as its port. */
export type NatProtocol = "tcp" | "udp" | "icmp";

/**
 * A flow's state. TCP follows Linux conntrack's states, simplified:
 * `syn-sent` (the inside SYN), `syn-recv` (the SYN-ACK came back),
 * `established` (the inside end acknowledged it), `fin-wait` (one end sent
 * FIN), `time-wait` (both did), `close` (a reset). UDP and ICMP flows are
 * `unreplied` until an answer comes back, then `replied`.
 */
export type NatState =
  | "syn-sent"
  | "syn-recv"
  | "established"
  | "fin-wait"
  | "time-wait"
  | "close"
  | "unreplied"
  | "replied";

/**
 * How long a flow lives without a packet, in seconds, by state.
 *
 * The defaults are Linux's conntrack defaults (`net.netfilter.nf_conntrack_*`,
 * Documentation/networking/nf_conntrack-sysctl.rst), which a Linux router
 * masquerading with iptables or nftables applies: TCP `syn_sent` 120,
 * `syn_recv` 60, `established` 432000 (5 days), `fin_wait` 120,
 * `time_wait` 120, `close` 10; `udp_timeout` 30 for a flow that has not
 * been answered and `udp_timeout_stream` 120 (180 before Linux 5.0) once it
 * has (Linux waits also for the flow to be 2 s old); `icmp_timeout` 30.
 * They meet RFC 5382 (established TCP at least 2 h 4 min, REQ-5) but not
 * RFC 4787's 2 minutes for an unanswered UDP flow (REQ-5), as Linux does not.
 */
export interface NatTimeouts {
  /** TCP: an inside SYN sent, nothing back yet. */
  tcpSynSent: number;
  /** TCP: the SYN-ACK came back. */
  tcpSynRecv: number;
  /** TCP: the handshake completed. */
  tcpEstablished: number;
  /** TCP: one end sent FIN. */
  tcpFinWait: number;
  /** TCP: both ends sent FIN. */
  tcpTimeWait: number;
  /** TCP: a reset went either way. */
  tcpClose: number;
  /** UDP: nothing came back yet. */
  udpUnreplied: number;
  /** UDP: an answer came back. */
  udpReplied: number;
  /** ICMP echo, answered or not. */
  icmp: number;
}

/**
 * Linux's conntrack defaults, in seconds (see {@linkcode NatTimeouts}).
 *
 * @example Keep unanswered UDP flows for RFC 4787's 2 minutes
 * ```ts ignore
 * const timeouts = { ...DEFAULT_NAT_TIMEOUTS, udpUnreplied: 120 };
 * ```
 */
export const DEFAULT_NAT_TIMEOUTS: Readonly<NatTimeouts> = Object.freeze({
  tcpSynSent: 120,
  tcpSynRecv: 60,
  tcpEstablished: 5 * 24 * 3600,
  tcpFinWait: 120,
  tcpTimeWait: 120,
  tcpClose: 10,
  udpUnreplied: 30,
  udpReplied: 120,
  icmp: 30,
});

/** One end of a flow: an address in text form and a port (the identifier for ICMP echo). */
export interface NatEndpoint {
  /** The address, IPv6 in RFC 5952 form. */
  address: string;
  /** The port, or the ICMP echo identifier. */
  port: number;
}

/**
 * A flow as the connection table lists it: the inside endpoint, the public
 * endpoint the NAT gave it, and the remote endpoint it talks to.
 */
export interface NatConnection {
  /** The protocol. */
  protocol: NatProtocol;
  /** 4 or 6. */
  family: 4 | 6;
  /** The state, which picks the timeout. */
  state: NatState;
  /** The inside host's endpoint. */
  inside: NatEndpoint;
  /** The public endpoint the remote end sees. */
  outside: NatEndpoint;
  /** The remote endpoint. */
  remote: NatEndpoint;
  /** Packets translated each way. */
  packets: { outbound: number; inbound: number };
  /** Bytes translated each way, IP headers included. */
  bytes: { outbound: number; inbound: number };
  /** Seconds since the flow's first packet. */
  age: number;
  /** Seconds left before the flow expires unless a packet comes. */
  expiresIn: number;
}

/** What {@linkcode ConnectionTable} reports: a flow created, or one that timed out. */
export interface NatEvent {
  /** `created` on the flow's first packet, `expired` when its timeout passed. */
  kind: "created" | "expired";
  /** The flow, as at that moment. */
  connection: NatConnection;
}

/** Options of {@linkcode ConnectionTable}. */
export interface ConnectionTableOptions {
  /** The NAT's public address of each family, as 4 or 16 bytes. */
  publicAddresses: { 4?: Uint8Array; 6?: Uint8Array };
  /** Timeouts by state, in seconds (defaults: {@linkcode DEFAULT_NAT_TIMEOUTS}). */
  timeouts?: Partial<NatTimeouts>;
  /** The public ports (and echo identifiers) handed out: default 1024 to 65535. */
  ports?: { first: number; last: number };
  /** Flows at most; a new one beyond is refused (default 65536). */
  maxConnections?: number;
  /** Called for each flow created or expired. */
  onEvent?: (event: NatEvent) => void;
}

const PROTOCOLS: readonly NatProtocol[] = ["tcp", "udp", "icmp"];
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

/** The table's index of a protocol: TCP 0, UDP 1, ICMP and ICMPv6 2. */
export function protocolIndex(ipProtocol: number): number {
  return ipProtocol === 6
    ? 0
    : ipProtocol === 17
    ? 1
    : ipProtocol === 1 || ipProtocol === 58
    ? 2
    : -1;
}

/** An inside endpoint and the public port it got. */
export interface Mapping {
  /** The protocol, as {@linkcode protocolIndex} numbers it. */
  readonly protocol: number;
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** The inside address (4 or 16 bytes, a copy). */
  readonly insideAddress: Uint8Array;
  /** The inside port or echo identifier. */
  readonly insidePort: number;
  /** The public port or echo identifier the NAT gave it. */
  readonly publicPort: number;
  /** Its key among the inside endpoints ({@linkcode endpointKey}). */
  readonly key: number | string;
  /** Its key among the public ports: family, protocol and port. */
  readonly publicKey: number;
  /** The remote endpoints it talks to. */
  readonly flows: Map<number | string, Flow>;
  /**
   * Options for the packet toolkit's rewriters, made once with the mapping
   * so that translating a packet allocates none.
   */
  readonly rewrite: {
    /** `rewritePort` of an outbound packet. */
    publicPort: { source: number };
    /** `rewriteAddress` of an inbound packet. */
    insideAddress: { destination: Uint8Array };
    /** `rewritePort` of an inbound packet. */
    insidePort: { destination: number };
  };
}

/** A mapping's traffic with one remote endpoint. */
export interface Flow {
  /** The inside endpoint's mapping. */
  readonly mapping: Mapping;
  /** The remote address (4 or 16 bytes, a copy). */
  readonly remoteAddress: Uint8Array;
  /** The remote port; 0 for ICMP echo. */
  readonly remotePort: number;
  /** Its key among the mapping's flows ({@linkcode endpointKey}). */
  readonly key: number | string;
  /** The state, which picks the timeout. */
  state: NatState;
  /** Whether the inside end sent FIN (TCP). */
  finOut: boolean;
  /** Whether the remote end sent FIN (TCP). */
  finIn: boolean;
  /** When the first packet came, in milliseconds on the table's clock. */
  readonly created: number;
  /** When the flow expires unless a packet comes first, same clock. */
  expires: number;
  /** Packets and bytes, each way. */
  packetsOut: number;
  packetsIn: number;
  bytesOut: number;
  bytesIn: number;
}

/**
 * The key of an endpoint whose address is at `bytes[offset…]`: a number
 * for IPv4 (address, port and a 2-bit tag fit in 50 bits), a string of
 * ten UTF-16 units for IPv6.
 */
export function endpointKey(
  bytes: Uint8Array,
  offset: number,
  family: 4 | 6,
  port: number,
  tag: number,
): number | string {
  if (family === 4) {
    const address = bytes[offset] * 0x1000000 + (bytes[offset + 1] << 16) +
      (bytes[offset + 2] << 8) + bytes[offset + 3];
    return (tag * 0x100000000 + address) * 0x10000 + port;
  }
  let key = String.fromCharCode(tag, port);
  for (let i = 0; i < 16; i += 2) {
    key += String.fromCharCode((bytes[offset + i] << 8) | bytes[offset + i + 1]);
  }
  return key;
}

/**
 * Mappings and flows, with public port allocation and timeouts. Times are
 * milliseconds on whatever clock the caller passes in (`now`).
 *
 * @example Open a flow for 192.0.2.2:4000 → 203.0.113.1:53 and list it
 * ```ts ignore
 * const table = new ConnectionTable({ publicAddresses: { 4: parseIp("203.0.113.2") } });
 * const packet = buildUdp({
 *   source: "192.0.2.2",
 *   destination: "203.0.113.1",
 *   sourcePort: 4000,
 *   destinationPort: 53,
 * });
 * table.create(packet, 4, protocolIndex(17), 12, 4000, 16, 53, performance.now());
 * table.list(performance.now())[0].outside; // { address: "203.0.113.2", port: 4000 }
 * ```
 */
export class ConnectionTable {
  readonly #byInside = new Map<number | string, Mapping>();
  readonly #byPublic = new Map<number, Mapping>();
  readonly #timeouts: NatTimeouts;
  readonly #first: number;
  readonly #last: number;
  readonly #max: number;
  readonly #public: { 4?: Uint8Array; 6?: Uint8Array };
  readonly #onEvent?: (event: NatEvent) => void;
  // Where the search for a free port resumes, per family and protocol.
  readonly #cursor = new Map<number, number>();
  #flows = 0;

  constructor(options: ConnectionTableOptions) {
    this.#timeouts = { ...DEFAULT_NAT_TIMEOUTS, ...options.timeouts };
    this.#first = options.ports?.first ?? 1024;
    this.#last = options.ports?.last ?? 65535;
    if (
      !Number.isInteger(this.#first) || !Number.isInteger(this.#last) || this.#first < 1 ||
      this.#last > 65535 || this.#first > this.#last
    ) {
      throw new RangeError(
        `ports must be a range within 1 to 65535, got ${this.#first}-${this.#last}`,
      );
    }
    this.#max = options.maxConnections ?? 65536;
    this.#public = options.publicAddresses;
    this.#onEvent = options.onEvent;
  }

  /** The number of flows. */
  get size(): number {
    return this.#flows;
  }

  /** The mapping of an inside endpoint, if it has one. */
  mappingOf(key: number | string): Mapping | undefined {
    return this.#byInside.get(key);
  }

  /** The mapping that owns a public port. */
  mappingOfPublic(family: 4 | 6, protocol: number, port: number): Mapping | undefined {
    return this.#byPublic.get(publicKey(family, protocol, port));
  }

  /**
   * A new flow from the inside endpoint at `bytes[insideOffset…]` to the
   * remote one at `bytes[remoteOffset…]`, under the endpoint's mapping (made
   * if needed), or undefined when the table is full or no port is free.
   */
  create(
    bytes: Uint8Array,
    family: 4 | 6,
    protocol: number,
    insideOffset: number,
    insidePort: number,
    remoteOffset: number,
    remotePort: number,
    now: number,
  ): Flow | undefined {
    if (this.#flows >= this.#max) return undefined;
    const length = family === 4 ? 4 : 16;
    const key = endpointKey(bytes, insideOffset, family, insidePort, protocol);
    let mapping = this.#byInside.get(key);
    if (mapping === undefined) {
      const port = this.#freePort(family, protocol, insidePort);
      if (port === undefined) return undefined;
      const insideAddress = bytes.slice(insideOffset, insideOffset + length);
      mapping = {
        protocol,
        family,
        insideAddress,
        insidePort,
        publicPort: port,
        key,
        publicKey: publicKey(family, protocol, port),
        flows: new Map(),
        rewrite: {
          publicPort: { source: port },
          insideAddress: { destination: insideAddress },
          insidePort: { destination: insidePort },
        },
      };
      this.#byInside.set(key, mapping);
      this.#byPublic.set(mapping.publicKey, mapping);
    }
    const flowKey = endpointKey(bytes, remoteOffset, family, remotePort, 0);
    const flow: Flow = {
      mapping,
      remoteAddress: bytes.slice(remoteOffset, remoteOffset + length),
      remotePort,
      key: flowKey,
      state: protocol === 0 ? "syn-sent" : "unreplied",
      finOut: false,
      finIn: false,
      created: now,
      expires: now,
      packetsOut: 0,
      packetsIn: 0,
      bytesOut: 0,
      bytesIn: 0,
    };
    this.touch(flow, now);
    mapping.flows.set(flowKey, flow);
    this.#flows++;
    this.#onEvent?.({ kind: "created", connection: this.describe(flow, now) });
    return flow;
  }

  /**
   * Counts a packet of `flow` going `outbound` or in, moves its state on
   * (`tcpFlags`: the TCP header's flags byte, 0 for UDP and ICMP) and
   * restarts its timeout.
   */
  record(flow: Flow, outbound: boolean, length: number, tcpFlags: number, now: number): void {
    if (outbound) {
      flow.packetsOut++;
      flow.bytesOut += length;
    } else {
      flow.packetsIn++;
      flow.bytesIn += length;
    }
    if (flow.mapping.protocol !== 0) {
      if (!outbound) flow.state = "replied";
    } else if (tcpFlags & RST) {
      flow.state = "close";
    } else if ((tcpFlags & (SYN | ACK)) === SYN) {
      // A new connection reusing the endpoints of one that ended.
      if (outbound && (flow.state === "time-wait" || flow.state === "close")) {
        flow.state = "syn-sent";
        flow.finOut = flow.finIn = false;
      }
    } else if (flow.state === "syn-sent") {
      if (!outbound && (tcpFlags & (SYN | ACK)) === (SYN | ACK)) flow.state = "syn-recv";
    } else if (flow.state === "syn-recv") {
      if (outbound && tcpFlags & ACK) flow.state = "established";
    }
    if (flow.mapping.protocol === 0 && tcpFlags & FIN && flow.state !== "close") {
      if (outbound) flow.finOut = true;
      else flow.finIn = true;
      flow.state = flow.finOut && flow.finIn ? "time-wait" : "fin-wait";
    }
    this.touch(flow, now);
  }

  /** Restarts a flow's timeout from `now`, for its current state. */
  touch(flow: Flow, now: number): void {
    flow.expires = now + 1000 * this.#timeout(flow.state, flow.mapping.protocol);
  }

  #timeout(state: NatState, protocol: number): number {
    const t = this.#timeouts;
    switch (state) {
      case "syn-sent":
        return t.tcpSynSent;
      case "syn-recv":
        return t.tcpSynRecv;
      case "established":
        return t.tcpEstablished;
      case "fin-wait":
        return t.tcpFinWait;
      case "time-wait":
        return t.tcpTimeWait;
      case "close":
        return t.tcpClose;
      default:
        return protocol === 2 ? t.icmp : state === "replied" ? t.udpReplied : t.udpUnreplied;
    }
  }

  /**
   * A public port for a new mapping: the inside port itself when it is in
   * range and free (as Linux's masquerade tries first), else the next free
   * one after the last handed out.
   */
  #freePort(family: 4 | 6, protocol: number, wanted: number): number | undefined {
    const first = this.#first;
    const span = this.#last - first + 1;
    if (
      wanted >= first && wanted <= this.#last &&
      !this.#byPublic.has(publicKey(family, protocol, wanted))
    ) {
      return wanted;
    }
    const space = family * 4 + protocol;
    let port = this.#cursor.get(space) ?? first;
    for (let i = 0; i < span; i++) {
      port = port >= this.#last ? first : port + 1;
      if (!this.#byPublic.has(publicKey(family, protocol, port))) {
        this.#cursor.set(space, port);
        return port;
      }
    }
    return undefined;
  }

  /** Removes the flows whose time has come, reporting each; returns how many. */
  expire(now: number): number {
    let count = 0;
    for (const mapping of this.#byInside.values()) {
      for (const flow of mapping.flows.values()) {
        if (flow.expires > now) continue;
        mapping.flows.delete(flow.key);
        this.#flows--;
        count++;
        this.#onEvent?.({ kind: "expired", connection: this.describe(flow, now) });
      }
      if (mapping.flows.size === 0) {
        this.#byInside.delete(mapping.key);
        this.#byPublic.delete(mapping.publicKey);
      }
    }
    return count;
  }

  /** Every flow, oldest mapping first. */
  list(now: number): NatConnection[] {
    const list: NatConnection[] = [];
    for (const mapping of this.#byInside.values()) {
      for (const flow of mapping.flows.values()) list.push(this.describe(flow, now));
    }
    return list;
  }

  /** A flow in plain form. */
  describe(flow: Flow, now: number): NatConnection {
    const { mapping } = flow;
    const publicAddress = this.#public[mapping.family];
    return {
      protocol: PROTOCOLS[mapping.protocol],
      family: mapping.family,
      state: flow.state,
      inside: { address: formatIp(mapping.insideAddress), port: mapping.insidePort },
      outside: {
        address: publicAddress ? formatIp(publicAddress) : "",
        port: mapping.publicPort,
      },
      remote: { address: formatIp(flow.remoteAddress), port: flow.remotePort },
      packets: { outbound: flow.packetsOut, inbound: flow.packetsIn },
      bytes: { outbound: flow.bytesOut, inbound: flow.bytesIn },
      age: Math.max(0, Math.round((now - flow.created) / 1000)),
      expiresIn: Math.max(0, Math.round((flow.expires - now) / 1000)),
    };
  }
}

function publicKey(family: 4 | 6, protocol: number, port: number): number {
  return ((family === 4 ? 0 : 4) + protocol) * 0x10000 + port;
}
