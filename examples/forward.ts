// Joins two TUN devices back to back: whatever the kernel routes into one comes out of
// the other, crossing TypeScript on the way, one summary line per packet:
//   sudo deno run --allow-ffi examples/forward.ts [A B] [--count N] [--timeout SECONDS]
//                 [--quiet] [--offload] [--queues N] [--busy-poll MICROSECONDS]
// It prints "ready A B" (default fwd0 fwd1). One process cannot be in two network
// namespaces, so give each device its own (the fd keeps working when a device moves):
//   sudo ip netns add left && sudo ip netns add right
//   sudo ip link set fwd0 netns left && sudo ip link set fwd1 netns right
//   sudo ip -n left addr add 198.51.100.1/24 dev fwd0 && sudo ip -n left link set fwd0 up
//   sudo ip -n right addr add 198.51.100.2/24 dev fwd1 && sudo ip -n right link set fwd1 up
//   sudo ip netns exec left ping 198.51.100.2
// A packet for a device that is down (as a device is right after it moves) is dropped.
// Stops on Ctrl-C, SIGTERM, after N packets forwarded or after the timeout.
//
// Packets move in batches: readBatch() fills buffers allocated once, and one writeBatch()
// hands views of them to the other device, so no buffer is allocated per packet.
//   --quiet    no line per packet: the forwarding alone, as fast as it goes
//   --offload  a virtio-net header on every packet and checksum, TSO and USO offload: TCP
//              and UDP cross as super-packets of up to 64 KB, passed on unchanged
//   --queues N multi-queue devices, N queues each, and one Worker per queue, each opening
//              its own queue by name; the kernel spreads the flows over the queues, and
//              each line names the queue. The Workers load this file: add --allow-read.
//   --busy-poll retry reads for this many microseconds before waiting in poll(): less
//              latency and fewer wake-ups under load, for a busier core
import { parseArgs } from "node:util";
import { TunError, TunInterface } from "../mod.ts";
import { summarize } from "../packet/mod.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    count: { type: "string", default: "0" },
    timeout: { type: "string", default: "0" },
    quiet: { type: "boolean", default: false },
    offload: { type: "boolean", default: false },
    queues: { type: "string" },
    "busy-poll": { type: "string", default: "0" },
  },
});
const queues = values.queues === undefined ? 0 : Number(values.queues);
const limit = Number(values.count);
const BATCH = 64;
// With --offload every packet starts with the 10-byte struct virtio_net_hdr.
const header = values.offload ? 10 : 0;
// Room for the largest IP packet, not just tun.readBufferSize: the devices get their MTU
// after they move to their namespaces, and the MTU may grow after the buffers are made.
const BUFFER_SIZE = 65535 + header;

/** One queue of each device (the devices are created if missing). */
function openPair(names: string[]): [TunInterface, TunInterface] {
  const options = {
    multiQueue: queues > 0,
    busyPoll: Number(values["busy-poll"]),
    vnetHeader: values.offload,
    offload: values.offload
      ? { checksum: true, tso4: true, tso6: true, uso4: true, uso6: true }
      : undefined,
  };
  const a = TunInterface.open({ name: names[0], ...options });
  try {
    return [a, TunInterface.open({ name: names[1], ...options })];
  } catch (error) {
    a.close();
    throw error;
  }
}

/** Where the packets a queue moves are counted, and what to call when --count is reached. */
interface Tally {
  /** Packets written, summed over every Worker (a SharedArrayBuffer). */
  forwarded: Int32Array;
  onLimit: () => void;
}

/** Relays both ways between one queue of each device until `stop()` or either closes. */
function relayBoth(a: TunInterface, b: TunInterface, tally: Tally, queue?: number) {
  let stopping = false;
  // Closing the devices ends both directions, wherever they are waiting.
  const stop = () => {
    stopping = true;
    a.close();
    b.close();
  };

  async function relay(from: TunInterface, to: TunInterface): Promise<void> {
    const route = `${from.name} > ${to.name}${queue === undefined ? "" : ` queue ${queue}`}`;
    const buffers = Array.from({ length: BATCH }, () => new Uint8Array(BUFFER_SIZE));
    const sizes = new Uint32Array(BATCH);
    const batch: Uint8Array[] = [];
    let count: number | null;
    while ((count = await from.readBatch(buffers, sizes)) !== null) {
      if (limit > 0) count = Math.min(count, limit - Atomics.load(tally.forwarded, 0));
      batch.length = 0;
      for (let i = 0; i < count; i++) batch.push(buffers[i].subarray(0, sizes[i]));
      // A packet for a device whose link is down is dropped, as a wire to a port that is
      // off would drop it, and the rest of the batch goes on.
      for (let start = 0; start < batch.length;) {
        const packets = start === 0 ? batch : batch.slice(start);
        let written = packets.length;
        try {
          await to.writeBatch(packets);
        } catch (error) {
          if (!(error instanceof TunError && error.code === "EIO")) throw error;
          written = error.written ?? 0;
        }
        if (!values.quiet) {
          for (let i = 0; i < written; i++) console.log(`${route}  ${summary(packets[i])}`);
          if (written < packets.length) {
            console.log(`${route}  dropped, link down: ${summary(packets[written])}`);
          }
        }
        const total = Atomics.add(tally.forwarded, 0, written) + written;
        if (limit > 0 && total >= limit) tally.onLimit();
        start += written + 1;
      }
    }
  }

  const guard = (direction: Promise<void>) =>
    direction
      // A packet caught between the two devices closing is lost, not an error.
      .catch((error) => {
        if (!stopping) throw error;
      })
      .finally(stop);
  return { stop, done: Promise.all([guard(relay(a, b)), guard(relay(b, a))]) };
}

function summary(packet: Uint8Array): string {
  return summarize(packet.subarray(header), "ip");
}

/** What the main thread tells each Worker: which devices, which queue, where to count. */
interface Job {
  names: string[];
  queue: number;
  forwarded: Int32Array;
}

// Inside a Worker, `self` is the main thread's end of the channel: a queue of each device.
if ("WorkerGlobalScope" in globalThis) {
  const main = self as unknown as Worker;
  main.onmessage = ({ data: job }: MessageEvent<Job>) => {
    const [a, b] = openPair(job.names);
    const onLimit = () => main.postMessage("limit");
    const { stop, done } = relayBoth(a, b, { forwarded: job.forwarded, onLimit }, job.queue);
    main.onmessage = stop;
    main.postMessage([a.name, b.name]);
    done.then(() => main.postMessage("done"));
  };
} else {
  const forwarded = new Int32Array(new SharedArrayBuffer(4));
  let names = [positionals[0] ?? "fwd0", positionals[1] ?? "fwd1"];
  let stop: () => void;
  let done: Promise<unknown>;
  if (queues === 0) {
    const [a, b] = openPair(names);
    ({ stop, done } = relayBoth(a, b, { forwarded, onLimit: () => stop() }));
    names = [a.name, b.name];
  } else {
    // The first Worker creates the devices; the others attach to them by their names.
    const workers: Worker[] = [];
    const finished: Promise<void>[] = [];
    stop = () => workers.forEach((worker) => worker.postMessage("stop"));
    for (let queue = 0; queue < queues; queue++) {
      const worker = new Worker(import.meta.url, { type: "module" });
      workers.push(worker);
      const ready = Promise.withResolvers<string[]>();
      const finish = Promise.withResolvers<void>();
      worker.onmessage = ({ data }) => {
        if (data === "limit") stop();
        else if (data === "done") finish.resolve(worker.terminate());
        else ready.resolve(data);
      };
      finished.push(finish.promise);
      worker.postMessage({ names, queue, forwarded } satisfies Job);
      names = await ready.promise;
    }
    done = Promise.all(finished);
  }
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  const seconds = Number(values.timeout);
  const timer = seconds > 0 ? setTimeout(stop, seconds * 1000) : 0;
  console.log(`ready ${names.join(" ")}`);
  await done;
  clearTimeout(timer);
  console.log(`forwarded ${Atomics.load(forwarded, 0)} packets`);
}
