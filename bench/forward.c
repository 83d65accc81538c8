/*
 * The C side of bench/forward.ts: a forwarder between two TUN devices, and a
 * UDP ping-pong through one, doing the same work as examples/forward.ts and
 * bench/ts_pong.ts with nothing between the loop and the system calls.
 *
 *   forward forward A B QUEUES OFFLOAD   (OFFLOAD 0 or 1)
 *   forward pong DEV
 *   forward ping DST_IP PORT COUNT WARMUP
 *
 * forward attaches one queue of each plain device when QUEUES is 0, or QUEUES
 * queues of each multi-queue device (IFF_MULTI_QUEUE), as examples/forward.ts
 * does without and with --queues; prints "ready", and runs one thread per
 * queue pair until killed: each polls its two fds, reads from each in turn
 * (up to 64 packets, or until EAGAIN) and writes every packet unchanged to
 * the other device. With OFFLOAD 1 the fds carry the virtio-net header and
 * TUNSETOFFLOAD enables checksum, TSO and USO, so TCP arrives as 64 KB
 * super-packets that are written on whole (the kernel segments them if it
 * must).
 *
 * pong prints "ready" and answers every IPv4 UDP datagram read from DEV with
 * the same datagram, addresses and ports swapped (both checksums stay valid),
 * waiting in poll() only after EAGAIN, as the library does.
 *
 * ping sends one datagram at a time to DST_IP:PORT from a connected UDP
 * socket and waits for the answer, spinning; after WARMUP round trips it
 * times COUNT more with CLOCK_MONOTONIC and prints one JSON line
 * {"count":N,"lost":L,"median_ns":M,"p99_ns":P}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

/* 64 KB super-packets plus the virtio-net header, as the library's buffers. */
#define BUFFER_SIZE (65535 + 10)
/* Packets taken from one direction before the other gets its turn: the
 * library forwarder reads batches of the same size. */
#define BATCH 64
#define MAX_QUEUES 16
#define PING_PAYLOAD 36 /* a 64-byte IPv4 packet */

static void die(const char *what) {
  fprintf(stderr, "forward: %s: %s\n", what, strerror(errno));
  exit(1);
}

static long number(const char *text, const char *what) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno || *end || end == text) {
    fprintf(stderr, "forward: bad %s \"%s\"\n", what, text);
    exit(2);
  }
  return value;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int attach(const char *name, int multi_queue, int offload) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (multi_queue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (offload) ifr.ifr_flags |= IFF_VNET_HDR;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("ioctl(TUNSETIFF)");
  unsigned long features = 0;
  if (offload) {
    features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6;
  }
  /* Without offload the mask is cleared, as the library clears it. */
  if (ioctl(fd, TUNSETOFFLOAD, features) < 0) die("ioctl(TUNSETOFFLOAD)");
  return fd;
}

struct queue_pair {
  int a, b;
};

/* Moves up to BATCH packets from one fd to the other; returns how many. */
static int pump(int from, int to, unsigned char *buffer) {
  int moved = 0;
  while (moved < BATCH) {
    ssize_t n = read(from, buffer, BUFFER_SIZE);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      die("read");
    }
    /* A packet the other device cannot take (its link is down) is dropped,
     * as a wire to a port that is off would drop it. */
    if (write(to, buffer, (size_t)n) < 0 && errno != EIO && errno != EAGAIN) die("write");
    moved++;
  }
  return moved;
}

static void *forward_queue(void *argument) {
  struct queue_pair *pair = argument;
  unsigned char *buffer = malloc(BUFFER_SIZE);
  if (!buffer) die("malloc");
  struct pollfd fds[2] = {{.fd = pair->a, .events = POLLIN}, {.fd = pair->b, .events = POLLIN}};
  for (;;) {
    int moved = pump(pair->a, pair->b, buffer) + pump(pair->b, pair->a, buffer);
    if (moved == 0 && poll(fds, 2, -1) < 0 && errno != EINTR) die("poll");
  }
  return NULL;
}

static int run_forward(int argc, char **argv) {
  if (argc != 6) return -1;
  long queues = number(argv[4], "queue count");
  int offload = number(argv[5], "offload flag") != 0;
  int multi_queue = queues > 0;
  if (queues == 0) queues = 1;
  if (queues < 0 || queues > MAX_QUEUES) {
    fprintf(stderr, "forward: 0 to %d queues\n", MAX_QUEUES);
    return 2;
  }
  static struct queue_pair pairs[MAX_QUEUES];
  for (long i = 0; i < queues; i++) {
    pairs[i].a = attach(argv[2], multi_queue, offload);
    pairs[i].b = attach(argv[3], multi_queue, offload);
  }
  printf("ready\n");
  fflush(stdout);
  for (long i = 1; i < queues; i++) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, forward_queue, &pairs[i]) != 0) die("pthread_create");
  }
  forward_queue(&pairs[0]);
  return 0;
}

static int is_ipv4_udp(const unsigned char *packet, ssize_t length) {
  return length >= 28 && packet[0] >> 4 == 4 && packet[9] == 17 &&
         (ssize_t)((packet[0] & 0x0f) * 4 + 8) <= length;
}

/* Swapping both pairs leaves every one's-complement sum, so both checksums, as they were. */
static void swap_udp(unsigned char *packet) {
  unsigned char address[4], port[2];
  unsigned char *udp = packet + (packet[0] & 0x0f) * 4;
  memcpy(address, packet + 12, 4);
  memcpy(packet + 12, packet + 16, 4);
  memcpy(packet + 16, address, 4);
  memcpy(port, udp, 2);
  memcpy(udp, udp + 2, 2);
  memcpy(udp + 2, port, 2);
}

static int run_pong(int argc, char **argv) {
  if (argc != 3) return -1;
  static unsigned char buffer[BUFFER_SIZE];
  int fd = attach(argv[2], 0, 0);
  printf("ready\n");
  fflush(stdout);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) die("read");
      if (poll(&p, 1, -1) < 0 && errno != EINTR) die("poll");
      continue;
    }
    if (!is_ipv4_udp(buffer, n)) continue;
    swap_udp(buffer);
    if (write(fd, buffer, (size_t)n) < 0 && errno != EIO) die("write");
  }
}

static int compare_ns(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return (a > b) - (a < b);
}

/*
 * One round trip: its time, or -1 when no answer came within a second. The
 * pinger spins on recv() rather than sleeping in poll(), so that waking its
 * own (idle, on a VM possibly halted) CPU stays out of every measurement and
 * the numbers are the responder's.
 */
static int64_t round_trip(int sock, uint32_t sequence) {
  unsigned char payload[PING_PAYLOAD] = {0}, answer[PING_PAYLOAD + 64];
  memcpy(payload, &sequence, sizeof sequence);
  int64_t start = now_ns(), now = start;
  if (send(sock, payload, sizeof payload, 0) < 0) die("send");
  for (; now - start < 1000000000LL; now = now_ns()) {
    ssize_t n = recv(sock, answer, sizeof answer, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      die("recv");
    }
    /* A late answer to an earlier datagram is not this one's. */
    if (n == PING_PAYLOAD && memcmp(answer, &sequence, sizeof sequence) == 0) {
      return now_ns() - start;
    }
  }
  return -1;
}

static int run_ping(int argc, char **argv) {
  if (argc != 6) return -1;
  struct sockaddr_in to = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, argv[2], &to.sin_addr) != 1) {
    fprintf(stderr, "forward: bad address \"%s\"\n", argv[2]);
    return 2;
  }
  to.sin_port = htons((uint16_t)number(argv[3], "port"));
  long count = number(argv[4], "count");
  long warmup = number(argv[5], "warmup");
  if (count < 1) {
    fprintf(stderr, "forward: count must be at least 1\n");
    return 2;
  }
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (sock < 0) die("socket");
  if (connect(sock, (struct sockaddr *)&to, sizeof to) < 0) die("connect");
  int64_t *times = malloc(sizeof *times * (size_t)count);
  if (!times) die("malloc");
  long timed = 0, lost = 0;
  for (long i = 0; i < warmup + count; i++) {
    int64_t elapsed = round_trip(sock, (uint32_t)i);
    if (i < warmup) continue;
    if (elapsed < 0) lost++;
    else times[timed++] = elapsed;
  }
  if (timed == 0) {
    fprintf(stderr, "forward: no answer to any of %ld datagrams\n", count);
    return 1;
  }
  qsort(times, (size_t)timed, sizeof *times, compare_ns);
  long p99 = (timed * 99 + 99) / 100 - 1;
  printf("{\"count\":%ld,\"lost\":%ld,\"median_ns\":%lld,\"p99_ns\":%lld}\n", timed, lost,
         (long long)times[timed / 2], (long long)times[p99]);
  return 0;
}

int main(int argc, char **argv) {
  int status = -1;
  if (argc >= 2 && strcmp(argv[1], "forward") == 0) status = run_forward(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "pong") == 0) status = run_pong(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "ping") == 0) status = run_ping(argc, argv);
  if (status < 0) {
    fprintf(stderr,
            "usage: forward forward A B QUEUES OFFLOAD\n"
            "       forward pong DEV\n"
            "       forward ping DST_IP PORT COUNT WARMUP\n");
    return 2;
  }
  return status;
}
