/**
 * The translation core of examples/nat.ts: a masquerading source NAT and
 * router for IP packets, with no device in sight, so that a test can drive
 * it with built packets.
 *
 * Each packet is changed in place by the packet toolkit's rewriters
 * (incremental checksums), and what comes out is appended to arrays the
 * caller owns and reuses: a packet of a known flow costs no allocation
 * here beyond the toolkit's own work. Fragments are reassembled first, as
 * Linux conntrack does, since only the first one holds the ports.
 *
 * With `vnetHeader: true` it takes and gives packets as a device with
 * checksum and segmentation offload reads and writes them, behind a
 * virtio-net header: TCP super-packets of up to 64 KiB whose checksum the
 * device completes are translated in place like any packet (the
 * rewriters' `partialChecksum`), and keep their header, which translation
 * leaves valid since no length changes.
 *
 * @module
 */

import {
  buildIcmpError,
  clampMss,
  decrementTtl,
  fragment,
  gsoSplit,
  icmpEchoReply,
  type IcmpErrorOptions,
  internetChecksum,
  IpProtocol,
  parseIp,
  parseVirtioNetHeader,
  Reassembler,
  rewriteAddress,
  type RewriteOptions,
  rewritePort,
  transportChecksum,
  VIRTIO_NET_HDR_SIZE,
  VirtioNetHeaderFlag,
} from "../../packet/mod.ts";
import {
  ConnectionTable,
  endpointKey,
  type Flow,
  type NatConnection,
  type NatEvent,
  type NatTimeouts,
  protocolIndex,
} from "./connection_table.ts";

export {
  DEFAULT_NAT_TIMEOUTS,
  type NatConnection,
  type NatEndpoint,
  type NatEvent,
  type NatProtocol,
  type NatState,
  type NatTimeouts,
} from "./connection_table.ts";

/** Options of {@linkcode Masquerade}. */
export interface MasqueradeOptions {
  /**
   * The NAT's public address, one per family it translates: e.g.
   * `["203.0.113.2", "2001:db8:2::2"]`. Inside packets leave from it; only
   * packets to it come in.
   */
  publicAddresses: string[];
  /**
   * The NAT's own address on the inside, one per family: the source of the
   * ICMP errors it sends inward (time exceeded, too big), and an address
   * that answers ping. Without one for a family, those errors are not sent.
   */
  routerAddresses?: string[];
  /** MTU of the inside link: packets going in are fitted to it (default 1500). */
  insideMtu?: number;
  /** MTU of the outside link: packets going out are fitted to it (default 1500). */
  outsideMtu?: number;
  /** Timeouts by state, in seconds (defaults: Linux conntrack's, `DEFAULT_NAT_TIMEOUTS`). */
  timeouts?: Partial<NatTimeouts>;
  /** Public ports (and echo identifiers) handed out; default 1024 to 65535. */
  ports?: { first: number; last: number };
  /** Flows at most (default 65536); a new one beyond is dropped. */
  maxConnections?: number;
  /** Called for each flow created or expired. */
  onEvent?: (event: NatEvent) => void;
  /** ICMP errors sent per second at most, as routers limit them (RFC 1812 4.3.2.8); default 100. */
  icmpErrorsPerSecond?: number;
  /** The clock in milliseconds (default `performance.now`); tests pass their own. */
  now?: () => number;
  /**
   * Packets taken and given start with the 10-byte virtio-net header, as on
   * devices opened with `vnetHeader: true` and checksum/TSO offload: a
   * packet read with one goes on with the same header (its checksum still
   * partial, its segmentation still to do), and a packet the NAT builds or
   * cuts gets a header of a plain, complete packet. Default false.
   */
  vnetHeader?: boolean;
}

/** Why packets were dropped, counted. */
export interface MasqueradeDrops {
  /** Not a well-formed IP packet, or a header cut short. */
  malformed: number;
  /** A protocol or ICMP type the NAT does not translate, or a family without a public address. */
  unsupported: number;
  /** Inbound: not to the public address. Outbound: multicast, link-local, or to the router itself. */
  notForUs: number;
  /** No flow matches: an inbound packet nobody asked for, or TCP without a SYN to start it. */
  noConnection: number;
  /** The table holds `maxConnections` flows already, or no public port is free. */
  tableFull: number;
  /** TTL or hop limit reached 0 (answered with time exceeded). */
  ttlExceeded: number;
  /** Too big for the next link and not to be fragmented (answered with too big). */
  tooBig: number;
}

/** What a {@linkcode Masquerade} did so far. */
export interface MasqueradeStats {
  /** Packets translated and passed on, per direction (before any fragmentation). */
  outbound: number;
  inbound: number;
  /** ICMP errors and echo replies the NAT itself sent. */
  answered: number;
  /** Packets dropped, by reason. */
  dropped: MasqueradeDrops;
}

const SYN = 0x02;
const ACK = 0x10;
const RST = 0x04;
/** The rewriters' option for a packet whose transport checksum the device completes. */
const PARTIAL: RewriteOptions = { partialChecksum: true };
/** The virtio-net header of a plain packet: nothing left to do. */
const PLAIN_HEADER = new Uint8Array(VIRTIO_NET_HDR_SIZE);

/**
 * A masquerading source NAT (NAPT, as Linux's `MASQUERADE` target): inside
 * hosts' TCP, UDP and ICMP echo leave from one public address with a port
 * (or echo identifier) of the NAT's choosing, and only answers to them come
 * back in. As a router it also decrements the TTL (answering "time
 * exceeded" at 0), clamps the MSS of TCP SYNs to the smaller MTU, fragments
 * IPv4 packets too big for the next link or answers "fragmentation needed"
 * / "packet too big" when it may not, and translates ICMP errors about a
 * flow back to the inside host, the packet they quote included.
 *
 * @example Translate a datagram out and its answer back in
 * ```ts ignore
 * import { buildUdp, parsePacket } from "@tuntap/tuntap/packet";
 * import { Masquerade } from "./masquerade.ts";
 *
 * const nat = new Masquerade({ publicAddresses: ["203.0.113.2"] });
 * const out: Uint8Array[] = [];
 * const back: Uint8Array[] = [];
 * nat.outbound(
 *   buildUdp({ source: "192.0.2.2", destination: "203.0.113.1", sourcePort: 4000, destinationPort: 53 }),
 *   out,
 *   back,
 * );
 * parsePacket(out[0], "ip").ipv4?.source; // "203.0.113.2"
 * nat.connections()[0].outside; // { address: "203.0.113.2", port: 4000 }
 * ```
 */
export class Masquerade {
  /** Inside and outside MTUs, which the owner may update as the links change. */
  insideMtu: number;
  outsideMtu: number;
  readonly #table: ConnectionTable;
  readonly #public: { 4?: Uint8Array; 6?: Uint8Array } = {};
  readonly #router: { 4?: Uint8Array; 6?: Uint8Array } = {};
  // The rewriteAddress() options of outbound packets, made once.
  readonly #fromPublic: { 4?: { source: Uint8Array }; 6?: { source: Uint8Array } } = {};
  readonly #now: () => number;
  readonly #reassembleOut: Reassembler;
  readonly #reassembleIn: Reassembler;
  readonly #stats: MasqueradeStats = {
    outbound: 0,
    inbound: 0,
    answered: 0,
    dropped: {
      malformed: 0,
      unsupported: 0,
      notForUs: 0,
      noConnection: 0,
      tableFull: 0,
      ttlExceeded: 0,
      tooBig: 0,
    },
  };
  readonly #errorRate: number;
  #errorTokens: number;
  #errorRefill: number;

  // The headers of the packet at hand, as #locate() found them: fields
  // rather than an object, so that reading them allocates nothing.
  #family: 4 | 6 = 4;
  #protocol = 0;
  #transport = 0;
  #end = 0;
  #fragment = false;
  // The virtio-net header of the packet at hand (vnetHeader only): its
  // bytes, whether its checksum is partial (NEEDS_CSUM), its GSO segment
  // size (0 for a packet that is not a super-packet).
  readonly #vnetHeader: boolean;
  #header: Uint8Array = PLAIN_HEADER;
  #partial = false;
  #gsoSize = 0;
  // The ports of the packet being translated (filled in place: nothing allocated per packet).
  readonly #ports = { sourcePort: 0, destinationPort: 0, flags: 0 };

  constructor(options: MasqueradeOptions) {
    for (const text of options.publicAddresses) {
      const bytes = parseIp(text);
      const family = bytes.length === 4 ? 4 : 6;
      this.#public[family] = bytes;
      this.#fromPublic[family] = { source: bytes };
    }
    if (this.#public[4] === undefined && this.#public[6] === undefined) {
      throw new TypeError("Cannot make a NAT without a public address");
    }
    for (const text of options.routerAddresses ?? []) {
      const bytes = parseIp(text);
      this.#router[bytes.length === 4 ? 4 : 6] = bytes;
    }
    this.insideMtu = options.insideMtu ?? 1500;
    this.outsideMtu = options.outsideMtu ?? 1500;
    this.#now = options.now ?? (() => performance.now());
    this.#table = new ConnectionTable({
      publicAddresses: this.#public,
      timeouts: options.timeouts,
      ports: options.ports,
      maxConnections: options.maxConnections,
      onEvent: options.onEvent,
    });
    this.#reassembleOut = new Reassembler({ now: this.#now });
    this.#reassembleIn = new Reassembler({ now: this.#now });
    this.#errorRate = options.icmpErrorsPerSecond ?? 100;
    this.#errorTokens = this.#errorRate;
    this.#errorRefill = this.#now();
    this.#vnetHeader = options.vnetHeader ?? false;
  }

  /** Counters of what was translated, answered and dropped (a live object). */
  get stats(): Readonly<MasqueradeStats> {
    return this.#stats;
  }

  /**
   * Handles a packet from the inside: appends what goes out to `forward`
   * (the packet itself, translated in place, or its fragments) and what
   * goes back to the inside to `reply` (an ICMP error or echo reply).
   */
  outbound(packet: Uint8Array, forward: Uint8Array[], reply: Uint8Array[]): void {
    this.#guard(packet, forward, reply, true);
  }

  /** Handles a packet from the outside, as {@linkcode Masquerade.outbound} does the other way. */
  inbound(packet: Uint8Array, forward: Uint8Array[], reply: Uint8Array[]): void {
    this.#guard(packet, forward, reply, false);
  }

  /** Every flow in the table. */
  connections(): NatConnection[] {
    return this.#table.list(this.#now());
  }

  /** Drops the flows whose timeout passed (reporting each to `onEvent`); returns how many. */
  expire(): number {
    return this.#table.expire(this.#now());
  }

  #guard(packet: Uint8Array, forward: Uint8Array[], reply: Uint8Array[], outbound: boolean) {
    if (!this.#vnetHeader) {
      this.#guarded(packet, forward, reply, outbound);
      return;
    }
    if (packet.length < VIRTIO_NET_HDR_SIZE) return void this.#stats.dropped.malformed++;
    const forwardFrom = forward.length;
    const replyFrom = reply.length;
    const header = packet.subarray(0, VIRTIO_NET_HDR_SIZE);
    this.#header = header;
    this.#partial = (header[0] & VirtioNetHeaderFlag.NEEDS_CSUM) !== 0;
    this.#gsoSize = header[1] === 0 ? 0 : header[4] | (header[5] << 8);
    const ip = packet.subarray(VIRTIO_NET_HDR_SIZE);
    try {
      this.#guarded(ip, forward, reply, outbound);
    } finally {
      this.#header = PLAIN_HEADER;
      this.#partial = false;
      this.#gsoSize = 0;
    }
    withHeaders(forward, forwardFrom, ip, packet);
    withHeaders(reply, replyFrom, ip, packet);
  }

  #guarded(packet: Uint8Array, forward: Uint8Array[], reply: Uint8Array[], outbound: boolean) {
    try {
      this.#handle(packet, forward, reply, outbound);
    } catch {
      // A header the toolkit's stricter checks refuse (an IPv6 extension
      // header cut short, say): nothing was pushed yet, so the packet just
      // goes.
      this.#stats.dropped.malformed++;
    }
  }

  #handle(packet: Uint8Array, forward: Uint8Array[], reply: Uint8Array[], outbound: boolean) {
    const drops = this.#stats.dropped;
    if (!this.#locate(packet)) return void drops.malformed++;
    let reassembled = false;
    if (this.#fragment) {
      let whole: Uint8Array | undefined;
      try {
        whole = (outbound ? this.#reassembleOut : this.#reassembleIn).push(packet);
      } catch {
        return void drops.malformed++;
      }
      if (whole === undefined) return;
      if (!this.#locate(whole) || this.#fragment) return void drops.malformed++;
      packet = whole;
      reassembled = true;
      // Fragments come with their checksums complete.
      this.#partial = false;
      this.#gsoSize = 0;
    }
    if (packet.length > this.#end) packet = packet.subarray(0, this.#end);
    const family = this.#family;
    const publicAddress = this.#public[family];
    if (publicAddress === undefined) return void drops.unsupported++;
    const sourceAt = family === 4 ? 12 : 8;
    const destinationAt = family === 4 ? 16 : 24;
    const size = family === 4 ? 4 : 16;

    // Packets for the NAT itself: it answers ping, on either side. Inbound,
    // the rest to the public address is the flows' traffic.
    const own = outbound ? this.#router[family] : publicAddress;
    const echo = this.#protocol === (family === 4 ? IpProtocol.ICMP : IpProtocol.ICMPV6) &&
      this.#end - this.#transport >= 8 && packet[this.#transport] === (family === 4 ? 8 : 128);
    if (own !== undefined && (outbound || echo) && equalAt(packet, destinationAt, own)) {
      if (!echo) return void drops.notForUs++;
      try {
        reply.push(icmpEchoReply(packet));
        this.#stats.answered++;
      } catch {
        drops.malformed++;
      }
      return;
    }
    if (outbound) {
      if (!routable(packet, sourceAt, size) || !routable(packet, destinationAt, size)) {
        return void drops.notForUs++;
      }
    } else if (!equalAt(packet, destinationAt, publicAddress)) {
      return void drops.notForUs++;
    }

    const errorSource = own;
    const mtu = outbound ? this.outsideMtu : this.insideMtu;
    let split = false;
    // A super-packet goes out in segments: its headers and gsoSize bytes each.
    const largest = this.#gsoSize === 0
      ? this.#end
      : Math.min(this.#end, this.#segmentHeaders(packet) + this.#gsoSize);
    if (largest > mtu) {
      // A router fragments IPv4 without DF; IPv6 only its source fragments.
      // A datagram the NAT reassembled goes on in fragments again, as
      // Linux conntrack sends on the fragments it gathered.
      if (reassembled || (family === 4 && (packet[6] & 0x40) === 0)) {
        split = true;
      } else {
        drops.tooBig++;
        return this.#answer(packet, reply, {
          type: family === 4 ? "fragmentation-needed" : "packet-too-big",
          mtu,
          source: errorSource!,
        }, errorSource);
      }
    }
    if (decrementTtl(packet) === 0) {
      drops.ttlExceeded++;
      return this.#answer(
        packet,
        reply,
        { type: "time-exceeded", source: errorSource! },
        errorSource,
      );
    }
    const translated = outbound ? this.#translateOut(packet) : this.#translateIn(packet);
    if (!translated) return;
    if (outbound) this.#stats.outbound++;
    else this.#stats.inbound++;
    if (!split) {
      forward.push(packet);
      return;
    }
    try {
      // Fragments need whole packets with their checksums complete: the
      // device's work is done here first.
      const whole = this.#partial || this.#gsoSize !== 0
        ? gsoSplit(packet, parseVirtioNetHeader(this.#header), 0xffff)
        : [packet];
      for (const segment of whole) {
        for (const piece of fragment(segment, mtu)) forward.push(piece);
      }
    } catch {
      // DF on a reassembled IPv4 datagram, or an MTU below the family's minimum.
      drops.tooBig++;
    }
  }

  /** Sends an ICMP error, within the rate limit, unless there is no source for it. */
  #answer(
    offending: Uint8Array,
    reply: Uint8Array[],
    options: IcmpErrorOptions,
    source: Uint8Array | undefined,
  ): void {
    if (source === undefined) return;
    const now = this.#now();
    this.#errorTokens = Math.min(
      this.#errorRate,
      this.#errorTokens + (now - this.#errorRefill) * this.#errorRate / 1000,
    );
    this.#errorRefill = now;
    if (this.#errorTokens < 1) return;
    try {
      reply.push(buildIcmpError(offending, options));
      this.#errorTokens--;
      this.#stats.answered++;
    } catch {
      // An error about an error, a later fragment, a multicast source:
      // RFC 1812 says nothing is sent.
    }
  }

  /** Masquerades a packet from the inside; false when it was dropped (and counted). */
  #translateOut(packet: Uint8Array): boolean {
    const family = this.#family;
    const protocol = this.#protocol;
    const kind = this.#readPorts(packet, true);
    if (kind === "icmpError") return this.#translateError(packet, true);
    if (kind !== "flow") return this.#drop(kind);
    const { sourcePort, destinationPort, flags } = this.#ports;
    const index = protocolIndex(protocol);
    const sourceAt = family === 4 ? 12 : 8;
    const destinationAt = family === 4 ? 16 : 24;
    const now = this.#now();
    const mapping = this.#table.mappingOf(endpointKey(packet, sourceAt, family, sourcePort, index));
    let flow: Flow | undefined = mapping?.flows.get(
      endpointKey(packet, destinationAt, family, destinationPort, 0),
    );
    if (flow === undefined) {
      // Only a SYN opens a TCP flow: a stray segment would get a port that
      // the far end has never heard of.
      if (protocol === IpProtocol.TCP && (flags & (SYN | ACK | RST)) !== SYN) {
        return this.#drop("noConnection");
      }
      flow = this.#table.create(
        packet,
        family,
        index,
        sourceAt,
        sourcePort,
        destinationAt,
        destinationPort,
        now,
      );
      if (flow === undefined) return this.#drop("tableFull");
    }
    this.#table.record(flow, true, this.#end, flags, now);
    const checksums = this.#partial ? PARTIAL : undefined;
    if (flags & SYN) clampMss(packet, this.#mss(), checksums);
    rewriteAddress(packet, this.#fromPublic[family]!, checksums);
    if (flow.mapping.publicPort !== sourcePort) {
      rewritePort(packet, flow.mapping.rewrite.publicPort, checksums);
    }
    return true;
  }

  /** Translates a packet from the outside back to its inside host; false when dropped. */
  #translateIn(packet: Uint8Array): boolean {
    const family = this.#family;
    const protocol = this.#protocol;
    const kind = this.#readPorts(packet, false);
    if (kind === "icmpError") return this.#translateError(packet, false);
    if (kind !== "flow") return this.#drop(kind);
    const { sourcePort, destinationPort, flags } = this.#ports;
    const mapping = this.#table.mappingOfPublic(family, protocolIndex(protocol), destinationPort);
    const flow = mapping?.flows.get(
      endpointKey(packet, family === 4 ? 12 : 8, family, sourcePort, 0),
    );
    if (mapping === undefined || flow === undefined) return this.#drop("noConnection");
    this.#table.record(flow, false, this.#end, flags, this.#now());
    const checksums = this.#partial ? PARTIAL : undefined;
    if (flags & SYN) clampMss(packet, this.#mss(), checksums);
    rewriteAddress(packet, mapping.rewrite.insideAddress, checksums);
    if (mapping.insidePort !== destinationPort) {
      rewritePort(packet, mapping.rewrite.insidePort, checksums);
    }
    return true;
  }

  /**
   * Translates an ICMP error about a flow: from the outside, about a packet
   * the NAT sent out (the quote's source is the public endpoint), to the
   * inside host; from the inside, about a packet the NAT let in (the quote's
   * destination is the inside endpoint), to the remote end. The outer
   * address, the quoted packet's address and port, and the checksums of
   * both change.
   */
  #translateError(packet: Uint8Array, outbound: boolean): boolean {
    const family = this.#family;
    const end = this.#end;
    const icmp = this.#transport;
    const inner = icmp + 8;
    // The quote: an IP header of the same family and 8 bytes of transport.
    if (end - inner < 28 || packet[inner] >> 4 !== family) return this.#drop("malformed");
    let innerTransport: number;
    let innerProtocol: number;
    if (family === 4) {
      innerTransport = inner + (packet[inner] & 0x0f) * 4;
      innerProtocol = packet[inner + 9];
      if ((read16(packet, inner + 6) & 0x1fff) !== 0) return this.#drop("unsupported");
    } else {
      innerProtocol = packet[inner + 6];
      innerTransport = inner + 40;
      while (innerProtocol === 0 || innerProtocol === 43 || innerProtocol === 60) {
        if (end - innerTransport < 8) return this.#drop("malformed");
        innerProtocol = packet[innerTransport];
        innerTransport += (packet[innerTransport + 1] + 1) * 8;
      }
    }
    if (end - innerTransport < 8) return this.#drop("malformed");
    const index = protocolIndex(innerProtocol);
    if (index < 0 || innerProtocol === (family === 4 ? IpProtocol.ICMPV6 : IpProtocol.ICMP)) {
      return this.#drop("unsupported");
    }
    const echo = index === 2;
    if (echo && isIcmpError(packet[innerTransport], family)) return this.#drop("unsupported");
    const innerSource = inner + (family === 4 ? 12 : 8);
    const innerDestination = inner + (family === 4 ? 16 : 24);
    // An echo's identifier is the port of the end that chose it, the other's is 0.
    const innerSourcePort = echo ? 0 : read16(packet, innerTransport);
    const innerDestinationPort = echo ? 0 : read16(packet, innerTransport + 2);
    const identifier = echo ? read16(packet, innerTransport + 4) : 0;
    const quote = packet.subarray(inner, end);
    let flow: Flow | undefined;
    if (outbound) {
      // About a packet that went in: remote → inside endpoint.
      const insidePort = echo ? identifier : innerDestinationPort;
      flow = this.#table.mappingOf(
        endpointKey(packet, innerDestination, family, insidePort, index),
      )?.flows.get(endpointKey(packet, innerSource, family, innerSourcePort, 0));
      if (flow === undefined) return this.#drop("noConnection");
      const { publicPort } = flow.mapping;
      rewriteAddress(packet, { source: this.#public[family] });
      // A quote cut short (576 bytes in all for ICMPv4) is rewritten as far as it goes.
      rewriteAddress(quote, { destination: this.#public[family] });
      rewritePort(quote, { destination: publicPort });
    } else {
      // About a packet that went out: public endpoint → remote.
      if (!equalAt(packet, innerSource, this.#public[family]!)) return this.#drop("noConnection");
      const publicPort = echo ? identifier : innerSourcePort;
      flow = this.#table.mappingOfPublic(family, index, publicPort)?.flows.get(
        endpointKey(packet, innerDestination, family, innerDestinationPort, 0),
      );
      if (flow === undefined) return this.#drop("noConnection");
      const { insideAddress, insidePort } = flow.mapping;
      rewriteAddress(packet, { destination: insideAddress });
      rewriteAddress(quote, { source: insideAddress });
      rewritePort(quote, { source: insidePort });
    }
    // The quote changed under the ICMP checksum, which covers it: recompute.
    packet[icmp + 2] = packet[icmp + 3] = 0;
    const segment = packet.subarray(icmp, end);
    const checksum = family === 4 ? internetChecksum(segment) : transportChecksum({
      source: packet.subarray(8, 24),
      destination: packet.subarray(24, 40),
      protocol: IpProtocol.ICMPV6,
      segment,
    });
    packet[icmp + 2] = checksum >> 8;
    packet[icmp + 3] = checksum;
    return true;
  }

  /** Length of the IP and transport headers each segment of the super-packet at hand repeats. */
  #segmentHeaders(packet: Uint8Array): number {
    const l4 = this.#transport;
    if (this.#protocol === IpProtocol.TCP && this.#end - l4 >= 20) {
      return l4 + (packet[l4 + 12] >> 4) * 4;
    }
    return l4 + (this.#protocol === IpProtocol.UDP ? 8 : 0);
  }

  /** The MSS that fits both links, for the family at hand. */
  #mss(): number {
    return Math.min(this.insideMtu, this.outsideMtu) - (this.#family === 4 ? 40 : 60);
  }

  /**
   * Reads a packet's ports and TCP flags into `#ports`, or says what it is
   * instead. An ICMP echo's identifier stands for the inside host's port:
   * the source of a request going out, the destination of a reply coming
   * in (the other port is 0).
   */
  #readPorts(packet: Uint8Array, outbound: boolean): "flow" | "icmpError" | keyof MasqueradeDrops {
    const family = this.#family;
    const l4 = this.#transport;
    const protocol = this.#protocol;
    const ports = this.#ports;
    ports.flags = 0;
    if (protocol === IpProtocol.TCP || protocol === IpProtocol.UDP) {
      if (this.#end - l4 < (protocol === IpProtocol.TCP ? 20 : 8)) return "malformed";
      ports.sourcePort = read16(packet, l4);
      ports.destinationPort = read16(packet, l4 + 2);
      if (protocol === IpProtocol.TCP) ports.flags = packet[l4 + 13];
      return "flow";
    }
    const icmp = family === 4 ? IpProtocol.ICMP : IpProtocol.ICMPV6;
    if (protocol !== icmp) {
      return protocol === IpProtocol.ICMP || protocol === IpProtocol.ICMPV6
        ? "malformed"
        : "unsupported";
    }
    if (this.#end - l4 < 8) return "malformed";
    const type = packet[l4];
    if (isIcmpError(type, family)) return "icmpError";
    const echo = outbound ? (family === 4 ? 8 : 128) : (family === 4 ? 0 : 129);
    if (type !== echo) return "unsupported";
    const identifier = read16(packet, l4 + 4);
    ports.sourcePort = outbound ? identifier : 0;
    ports.destinationPort = outbound ? 0 : identifier;
    return "flow";
  }

  #drop(reason: keyof MasqueradeDrops): false {
    this.#stats.dropped[reason]++;
    return false;
  }

  /**
   * Reads the IP header: family, protocol after IPv6 extension headers,
   * transport offset, datagram end, and whether it is a fragment. False
   * for anything that is not a well-formed IP packet.
   */
  #locate(packet: Uint8Array): boolean {
    const length = packet.length;
    if (length < 20) return false;
    const version = packet[0] >> 4;
    if (version === 4) {
      const header = (packet[0] & 0x0f) * 4;
      const total = read16(packet, 2);
      if (header < 20 || total < header || total > length) return false;
      this.#family = 4;
      this.#protocol = packet[9];
      this.#transport = header;
      this.#end = total;
      this.#fragment = (read16(packet, 6) & 0x3fff) !== 0;
      return true;
    }
    if (version !== 6 || length < 40) return false;
    const end = 40 + read16(packet, 4);
    if (end > length) return false;
    let protocol = packet[6];
    let at = 40;
    this.#fragment = false;
    // Hop-by-hop, routing and destination options; a Fragment header sends
    // the packet to reassembly, which takes it out.
    for (let i = 0; i < 8 && (protocol === 0 || protocol === 43 || protocol === 60); i++) {
      if (end - at < 8) return false;
      protocol = packet[at];
      at += (packet[at + 1] + 1) * 8;
    }
    if (protocol === 44) this.#fragment = true;
    if (at > end) return false;
    this.#family = 6;
    this.#protocol = protocol;
    this.#transport = at;
    this.#end = end;
    return true;
  }
}

function read16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

/** Whether `bytes[at…]` holds `address`. */
function equalAt(bytes: Uint8Array, at: number, address: Uint8Array): boolean {
  for (let i = 0; i < address.length; i++) if (bytes[at + i] !== address[i]) return false;
  return true;
}

/**
 * Whether the address at `bytes[at…]` may cross a router: not unspecified,
 * loopback, multicast, broadcast (IPv4), nor link-local (IPv6: what the
 * kernel says on a link by itself, router solicitations and MLD reports).
 */
function routable(bytes: Uint8Array, at: number, size: number): boolean {
  const first = bytes[at];
  if (size === 4) {
    return first !== 0 && first !== 127 && first < 224;
  }
  if (first === 0xff || (first === 0xfe && (bytes[at + 1] & 0xc0) === 0x80)) return false;
  let zero = true;
  for (let i = 0; i < 15; i++) zero &&= bytes[at + i] === 0;
  return !zero; // :: and ::1
}

/** ICMP types that report an error about a packet, which quote it. */
function isIcmpError(type: number, family: 4 | 6): boolean {
  return family === 4
    ? type === 3 || type === 11 || type === 12
    : type < 128 && type >= 1 && type <= 4;
}

/**
 * Gives the packets pushed to `list` from `from` on their virtio-net
 * header: the packet read (`ip`, maybe shortened) keeps the one it came
 * with, in place before it in `read`; any other, built or cut by the NAT,
 * gets a plain one in a new array.
 */
function withHeaders(list: Uint8Array[], from: number, ip: Uint8Array, read: Uint8Array): void {
  for (let i = from; i < list.length; i++) {
    const packet = list[i];
    if (packet.buffer === ip.buffer && packet.byteOffset === ip.byteOffset) {
      list[i] = read.subarray(0, VIRTIO_NET_HDR_SIZE + packet.length);
    } else {
      const framed = new Uint8Array(VIRTIO_NET_HDR_SIZE + packet.length);
      framed.set(packet, VIRTIO_NET_HDR_SIZE);
      list[i] = framed;
    }
  }
}
