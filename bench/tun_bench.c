/*
 * The C baseline for bench/main.ts: the same work as bench/ts_bench.ts, with
 * nothing between the loop and the system calls. Like the library, the fd
 * is O_NONBLOCK and the program waits in poll() only after EAGAIN, so the
 * two sides differ in the language and the library, not in the I/O model.
 *
 *   tun_bench write DEV COUNT WARMUP SECONDS HEX
 *   tun_bench read DEV           then lines "COUNT SECONDS" on stdin
 *   tun_bench gen DST_IP PORT SECONDS SIZE COUNT
 *
 * write prints one JSON line {"packets":N,"ns":T} where T covers only the
 * packets after WARMUP. read prints "ready" once attached, then for each
 * stdin line reads COUNT packets (fewer if SECONDS pass first) and prints
 * {"packets":N,"ns":T,"bytes":B}: main.ts fills the queue, then says how
 * many to read, so the clock runs only while there is something to read.
 * gen sends exactly COUNT UDP datagrams of SIZE bytes (IP header included)
 * as fast as it can, giving up after SECONDS, and prints {"sent":N,"ns":T}.
 *
 * The library's batch calls (readBatch, writeBatch) are measured against
 * the same read() and write() loops: a TUN fd has no batch system call
 * (readv/writev still move one packet per call), so a loop of single calls
 * is what C does too.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The same granularity as the TypeScript side: a clock read per packet
 * would cost C relatively more than it costs TypeScript. */
#define CLOCK_EVERY 1024
#define GEN_BATCH 64

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "tun_bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static long number(const char *text, const char *what) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno || *end || value < 0) {
    fprintf(stderr, "tun_bench: bad %s \"%s\"\n", what, text);
    exit(2);
  }
  return value;
}

static int attach(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("ioctl(TUNSETIFF)");
  /* The library clears offloads on attach; do the same so the device is
   * in the same state for both sides. */
  if (ioctl(fd, TUNSETOFFLOAD, 0UL) < 0) die("ioctl(TUNSETOFFLOAD)");
  return fd;
}

/* Returns 0 once the deadline has passed without the fd becoming ready. */
static int wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ns();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int timeout = (int)(left / 1000000) + 1;
    int n = poll(&p, 1, timeout);
    if (n > 0) return 1;
    if (n < 0 && errno != EINTR) die("poll");
  }
}

static size_t unhex(const char *hex, unsigned char *out, size_t room) {
  size_t length = strlen(hex);
  if (length % 2 || length / 2 > room || length == 0) {
    fprintf(stderr, "tun_bench: bad packet hex\n");
    exit(2);
  }
  for (size_t i = 0; i < length / 2; i++) {
    unsigned int byte;
    if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
      fprintf(stderr, "tun_bench: bad packet hex\n");
      exit(2);
    }
    out[i] = (unsigned char)byte;
  }
  return length / 2;
}

/* One packet written; returns 0 when the deadline passed while the device
 * had no room. */
static int write_one(int fd, const unsigned char *packet, size_t size, int64_t deadline) {
  for (;;) {
    ssize_t n = write(fd, packet, size);
    if (n >= 0) return 1;
    if (errno != EAGAIN && errno != EINTR) die("write");
    if (!wait_for(fd, POLLOUT, deadline)) return 0;
  }
}

static int run_write(int argc, char **argv) {
  if (argc != 7) return -1;
  long count = number(argv[3], "count");
  long warmup = number(argv[4], "warmup");
  long seconds = number(argv[5], "seconds");
  static unsigned char packet[65536];
  size_t size = unhex(argv[6], packet, sizeof packet);
  int fd = attach(argv[2]);

  int64_t deadline = now_ns() + seconds * 1000000000LL;
  for (long i = 0; i < warmup; i++) {
    if (!write_one(fd, packet, size, deadline)) break;
  }
  int64_t start = now_ns();
  deadline = start + seconds * 1000000000LL;
  long done = 0;
  while (done < count) {
    if (!write_one(fd, packet, size, deadline)) break;
    done++;
    if (done % CLOCK_EVERY == 0 && now_ns() >= deadline) break;
  }
  int64_t elapsed = now_ns() - start;
  printf("{\"packets\":%ld,\"ns\":%lld}\n", done, (long long)elapsed);
  close(fd);
  return 0;
}

/* Returns the packet's length, or -1 when the deadline passed first. */
static ssize_t read_one(int fd, unsigned char *buffer, size_t room, int64_t deadline) {
  for (;;) {
    ssize_t n = read(fd, buffer, room);
    if (n >= 0) return n;
    if (errno != EAGAIN && errno != EINTR) die("read");
    if (!wait_for(fd, POLLIN, deadline)) return -1;
  }
}

static int run_read(int argc, char **argv) {
  if (argc != 3) return -1;
  /* The library's buffer size, so that read() is asked for the same. */
  static unsigned char buffer[65536 + 64];
  int fd = attach(argv[2]);
  printf("ready\n");
  fflush(stdout);

  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    long count;
    double seconds;
    if (sscanf(line, "%ld %lf", &count, &seconds) != 2) break;
    int64_t start = now_ns();
    int64_t deadline = start + (int64_t)(seconds * 1e9);
    long done = 0;
    long long bytes = 0;
    while (done < count) {
      ssize_t n = read_one(fd, buffer, sizeof buffer, deadline);
      if (n < 0) break;
      done++;
      bytes += n;
      if (done % CLOCK_EVERY == 0 && now_ns() >= deadline) break;
    }
    int64_t elapsed = now_ns() - start;
    printf("{\"packets\":%ld,\"ns\":%lld,\"bytes\":%lld}\n", done, (long long)elapsed, bytes);
    fflush(stdout);
  }
  close(fd);
  return 0;
}

static int run_gen(int argc, char **argv) {
  if (argc != 7) return -1;
  struct sockaddr_in to = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, argv[2], &to.sin_addr) != 1) {
    fprintf(stderr, "tun_bench: bad address \"%s\"\n", argv[2]);
    return 2;
  }
  to.sin_port = htons((uint16_t)number(argv[3], "port"));
  long seconds = number(argv[4], "seconds");
  long size = number(argv[5], "size");
  long long count = number(argv[6], "count");
  if (size < 28 || size > 65535) {
    fprintf(stderr, "tun_bench: size must be 28 to 65535\n");
    return 2;
  }

  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) die("socket");
  if (connect(sock, (struct sockaddr *)&to, sizeof to) < 0) die("connect");
  static unsigned char payload[65536];
  struct iovec iov = {.iov_base = payload, .iov_len = (size_t)size - 28};
  struct mmsghdr messages[GEN_BATCH];
  memset(messages, 0, sizeof messages);
  for (int i = 0; i < GEN_BATCH; i++) {
    messages[i].msg_hdr.msg_iov = &iov;
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  int64_t start = now_ns();
  int64_t deadline = start + seconds * 1000000000LL;
  long long sent = 0;
  while (sent < count && now_ns() < deadline) {
    long long left = count - sent;
    int n = sendmmsg(sock, messages, left < GEN_BATCH ? (unsigned)left : GEN_BATCH, 0);
    if (n > 0) {
      sent += n;
    } else if (n < 0 && errno != ENOBUFS && errno != EINTR && errno != EAGAIN) {
      die("sendmmsg");
    }
  }
  int64_t elapsed = now_ns() - start;
  printf("{\"sent\":%lld,\"ns\":%lld}\n", sent, (long long)elapsed);
  close(sock);
  return 0;
}

int main(int argc, char **argv) {
  int status = -1;
  if (argc >= 2 && strcmp(argv[1], "write") == 0) status = run_write(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "read") == 0) status = run_read(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "gen") == 0) status = run_gen(argc, argv);
  if (status < 0) {
    fprintf(stderr,
            "usage: tun_bench write DEV COUNT WARMUP SECONDS HEX\n"
            "       tun_bench read DEV\n"
            "       tun_bench gen DST_IP PORT SECONDS SIZE COUNT\n");
    return 2;
  }
  return status;
}
