/*
 * The C side of the tunnel case of bench/tunnel.ts: the point-to-point
 * tunnel of examples/udp_tunnel.ts (one IP packet per UDP datagram, plain
 * encapsulation, no crypto) written the way a C program without offloads
 * would write it.
 *
 *   udp_tunnel DEV MTU LOCAL_IP LOCAL_PORT REMOTE_IP REMOTE_PORT
 *
 * It creates (or attaches to) the TUN device DEV (IFF_TUN | IFF_NO_PI, no
 * virtio-net header, offloads off), sets its MTU and brings it up, binds a
 * UDP socket to LOCAL_IP:LOCAL_PORT and connects it to REMOTE_IP:REMOTE_PORT
 * (IPv4 or IPv6), prints "ready" and runs two threads until killed:
 *
 *   TUN to UDP: read() packets until EAGAIN (at most BATCH), one sendmmsg()
 *   for the batch, poll() when the device is empty;
 *   UDP to TUN: recvmmsg() up to BATCH datagrams, one write() each, poll()
 *   when the socket is empty.
 *
 * On SIGTERM or SIGINT it prints its counters and exits 0.
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
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define BUFFER_SIZE 65536

static int tun_fd, udp_fd;
static atomic_ulong sent, received, dropped;

static void die(const char *what) {
  fprintf(stderr, "udp_tunnel: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int number(const char *text, const char *what, long least, long most) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno || *end || end == text || value < least || value > most) {
    fprintf(stderr, "udp_tunnel: bad %s \"%s\"\n", what, text);
    exit(2);
  }
  return (int)value;
}

/* An IPv4 or IPv6 socket address; returns its length. */
static socklen_t address(const char *ip, int port, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return sizeof *v4;
  }
  if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return sizeof *v6;
  }
  fprintf(stderr, "udp_tunnel: bad address \"%s\"\n", ip);
  exit(2);
}

static void wait_for(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, -1) < 0 && errno != EINTR) die("poll");
}

static void *tun_to_udp(void *unused) {
  (void)unused;
  static unsigned char buffers[BATCH][BUFFER_SIZE];
  struct iovec iov[BATCH];
  struct mmsghdr messages[BATCH];
  memset(messages, 0, sizeof messages);
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = buffers[i];
    messages[i].msg_hdr.msg_iov = &iov[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  for (;;) {
    int count = 0;
    while (count < BATCH) {
      ssize_t n = read(tun_fd, buffers[count], BUFFER_SIZE);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        die("read");
      }
      iov[count++].iov_len = (size_t)n;
    }
    if (count == 0) {
      wait_for(tun_fd);
      continue;
    }
    for (int done = 0; done < count;) {
      int n = sendmmsg(udp_fd, messages + done, count - done, 0);
      if (n < 0) {
        /* No listener yet on the other side (ICMP port unreachable), or a
         * full socket buffer: the packets are lost, as on a wire. */
        if (errno == ECONNREFUSED || errno == EAGAIN || errno == ENOBUFS) {
          atomic_fetch_add(&dropped, count - done);
          if (errno == EAGAIN) {
            struct pollfd p = {.fd = udp_fd, .events = POLLOUT};
            poll(&p, 1, 100);
          }
          break;
        }
        if (errno == EINTR) continue;
        die("sendmmsg");
      }
      done += n;
      atomic_fetch_add(&sent, n);
    }
  }
  return NULL;
}

static void *udp_to_tun(void *unused) {
  (void)unused;
  static unsigned char buffers[BATCH][BUFFER_SIZE];
  struct iovec iov[BATCH];
  struct mmsghdr messages[BATCH];
  for (;;) {
    memset(messages, 0, sizeof messages);
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = buffers[i];
      iov[i].iov_len = BUFFER_SIZE;
      messages[i].msg_hdr.msg_iov = &iov[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(udp_fd, messages, BATCH, 0, NULL);
    if (n < 0) {
      if (errno == EAGAIN) {
        wait_for(udp_fd);
        continue;
      }
      if (errno == EINTR || errno == ECONNREFUSED) continue;
      die("recvmmsg");
    }
    for (int i = 0; i < n; i++) {
      if (write(tun_fd, buffers[i], messages[i].msg_len) < 0) {
        if (errno != EIO && errno != EINVAL) die("write");
        atomic_fetch_add(&dropped, 1);
      }
    }
    atomic_fetch_add(&received, n);
  }
  return NULL;
}

static void run(const char *what, const char *command) {
  if (system(command) != 0) {
    fprintf(stderr, "udp_tunnel: %s failed: %s\n", what, command);
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: udp_tunnel DEV MTU LOCAL_IP LOCAL_PORT REMOTE_IP REMOTE_PORT\n");
    return 2;
  }
  const char *name = argv[1];
  int mtu = number(argv[2], "MTU", 576, 65535);
  struct sockaddr_storage local, remote;
  socklen_t local_length = address(argv[3], number(argv[4], "port", 1, 65535), &local);
  socklen_t remote_length = address(argv[5], number(argv[6], "port", 1, 65535), &remote);

  tun_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (tun_fd < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(tun_fd, TUNSETIFF, &ifr) < 0) die("ioctl(TUNSETIFF)");
  if (ioctl(tun_fd, TUNSETOFFLOAD, 0) < 0) die("ioctl(TUNSETOFFLOAD)");
  char command[128];
  snprintf(command, sizeof command, "ip link set dev %s mtu %d up", name, mtu);
  run("setting the MTU", command);

  udp_fd = socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (udp_fd < 0) die("socket");
  /* The same buffers as the library's tunnel asks for: the default 208 KB
   * overflows at gigabit rates (UdpRcvbufErrors). */
  int size = 4 << 20;
  setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  setsockopt(udp_fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
  if (bind(udp_fd, (struct sockaddr *)&local, local_length) < 0) die("bind");
  if (connect(udp_fd, (struct sockaddr *)&remote, remote_length) < 0) die("connect");

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  /* The threads inherit the mask, so the signals wait for sigwait() below. */
  pthread_sigmask(SIG_BLOCK, &signals, NULL);
  pthread_t threads[2];
  pthread_create(&threads[0], NULL, tun_to_udp, NULL);
  pthread_create(&threads[1], NULL, udp_to_tun, NULL);
  printf("ready\n");
  fflush(stdout);
  int signal;
  sigwait(&signals, &signal);
  printf("sent %lu received %lu dropped %lu\n", atomic_load(&sent), atomic_load(&received),
         atomic_load(&dropped));
  return 0;
}
