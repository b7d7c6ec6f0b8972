/* escape_probe: one escape attempt per invocation, run inside a container by
 * the escape tests (and in a confined child by the confinement tests). Built
 * static so that it runs in a busybox rootfs.
 *
 * Usage: escape_probe ATTEMPT [ARG]
 * Prints one line and exits 0 when the attempt was refused ("refused: <why>"),
 * 1 when it succeeded ("ESCAPED: <what>"), 2 on a usage error. Every attempt
 * is chosen so that success would still be harmless to the host (it opens
 * for writing without writing, or writes back the value it read).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/reboot.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int refused(const char* what) {
  printf("refused: %s: %s\n", what, strerror(errno));
  return 0;
}
static int escaped(const char* what) {
  printf("ESCAPED: %s\n", what);
  return 1;
}
/* rc < 0 is a refusal, anything else an escape. */
static int check(long rc, const char* what) {
  return rc < 0 ? refused(what) : escaped(what);
}

static int open_for_write(const char* path) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return check(fd, path);
}

static int read_kcore(void) {
  int fd = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return refused("open /proc/kcore");
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n <= 0) {
    printf("refused: /proc/kcore reads as empty (%zd)\n", n);
    return 0;
  }
  return escaped("read /proc/kcore");
}

static int release_agent(void) {
  /* The classic escape: mount a v1 hierarchy and set its release_agent. */
  mkdir("/tmp/cg", 0755);
  if (mount("cgroup", "/tmp/cg", "cgroup", 0, "rdma") == 0) return escaped("mount cgroup v1");
  int result = 0;
  const char* roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/rdma",
                         "/sys/fs/cgroup/pids"};
  for (size_t i = 0; i < sizeof roots / sizeof roots[0]; ++i) {
    char path[256];
    snprintf(path, sizeof path, "%s/release_agent", roots[i]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      close(fd);
      result = escaped(path);
    }
  }
  return result ? 1 : refused("mount cgroup, open release_agent");
}

static int cgroup2_limit(void) {
  /* The v2 counterpart: mount the unified hierarchy (in the container's
   * cgroup namespace its root is the container's own cgroup) and open its
   * memory.max, which would lift the container's memory limit; or find the
   * host's hierarchy under /sys and open its control files. */
  mkdir("/tmp/cg2", 0755);
  if (mount("cgroup2", "/tmp/cg2", "cgroup2", 0, NULL) == 0) {
    int fd = open("/tmp/cg2/memory.max", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    return escaped(fd >= 0 ? "mount cgroup2, open memory.max" : "mount cgroup2");
  }
  const int mount_errno = errno;
  const char* files[] = {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cgroup.procs",
                         "/sys/fs/cgroup/cgroup.subtree_control"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; ++i) {
    int fd = open(files[i], O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      close(fd);
      return escaped(files[i]);
    }
  }
  errno = mount_errno;
  return refused("mount cgroup2");
}

static int connect_loopback(const char* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return refused("socket");
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = connect(fd, (struct sockaddr*)&a, sizeof a);
  close(fd);
  return check(rc, "connect to the host's loopback port");
}

/* CVE-2019-5736: a host binary reachable through /proc/<pid>/exe. Prints the
 * device and inode of every exe this process can open (the test compares
 * them with the runner's), and tries to open each for writing. */
static int proc_exe(void) {
  DIR* d = opendir("/proc");
  if (!d) return refused("opendir /proc");
  int result = 0;
  struct dirent* e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (atoi(e->d_name) == getpid()) continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) == 0)
      printf("exe %s %lu:%lu\n", e->d_name, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
    char again[64];
    snprintf(again, sizeof again, "/proc/self/fd/%d", fd);
    int w = open(again, O_WRONLY | O_CLOEXEC);
    if (w >= 0) {
      close(w);
      result = escaped(path);
    }
    close(fd);
  }
  closedir(d);
  return result ? 1 : refused("write to any /proc/<pid>/exe");
}

/* Lists every pid with its command line, for the test to check. */
static int list_processes(void) {
  DIR* d = opendir("/proc");
  if (!d) return refused("opendir /proc");
  struct dirent* e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], cmd[256] = {0};
    snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, cmd, sizeof cmd - 1) : 0;
    if (fd >= 0) close(fd);
    for (ssize_t i = 0; i < n; ++i)
      if (cmd[i] == 0) cmd[i] = ' ';
    printf("pid %s %s\n", e->d_name, cmd);
  }
  closedir(d);
  return 0;
}

static int shocker(void) {
  /* open_by_handle_at with a guessed handle for inode 2 (a root directory). */
  union {
    struct file_handle fh;
    unsigned char bytes[sizeof(struct file_handle) + 8];
  } h;
  memset(&h, 0, sizeof h);
  h.fh.handle_bytes = 8;
  h.fh.handle_type = 1;
  h.fh.f_handle[0] = 2;
  int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  long rc = syscall(SYS_open_by_handle_at, fd, &h.fh, O_RDONLY);
  if (rc >= 0) close((int)rc);
  return check(rc, "open_by_handle_at");
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* a = argv[1];
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!strcmp(a, "mount")) return check(mount("none", "/tmp", "tmpfs", 0, NULL), "mount tmpfs");
  if (!strcmp(a, "umount")) return check(umount2("/", MNT_DETACH), "umount /");
  if (!strcmp(a, "unshare")) return check(unshare(CLONE_NEWNS | CLONE_NEWUSER), "unshare");
  if (!strcmp(a, "setns")) {
    int fd = open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return refused("open /proc/1/ns/mnt");
    return check(setns(fd, 0), "setns into pid 1's mount namespace");
  }
  if (!strcmp(a, "ptrace") && argc > 2)
    return check(ptrace(PTRACE_ATTACH, atoi(argv[2]), 0, 0), "ptrace attach");
  if (!strcmp(a, "kexec_load"))
    return check(syscall(SYS_kexec_load, 0, 0, NULL, 0xffffffffUL), "kexec_load");
  if (!strcmp(a, "reboot"))
    return check(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                         LINUX_REBOOT_CMD_CAD_OFF, NULL),
                 "reboot(CAD_OFF)");
  if (!strcmp(a, "init_module"))
    return check(syscall(SYS_init_module, "\177ELF", 4, ""), "init_module");
  if (!strcmp(a, "finit_module")) return check(syscall(SYS_finit_module, 0, "", 0), "finit_module");
  if (!strcmp(a, "raw_socket"))
    return check(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP), "raw socket");
  if (!strcmp(a, "proc_sys")) return open_for_write("/proc/sys/kernel/core_pattern");
  if (!strcmp(a, "sys")) return open_for_write("/sys/kernel/mm/transparent_hugepage/enabled");
  if (!strcmp(a, "sysrq")) return open_for_write("/proc/sysrq-trigger");
  if (!strcmp(a, "kcore")) return read_kcore();
  if (!strcmp(a, "shocker")) return shocker();
  if (!strcmp(a, "keyctl"))
    return check(syscall(SYS_keyctl, 1 /* JOIN_SESSION_KEYRING */, NULL), "keyctl");
  if (!strcmp(a, "bpf")) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return check(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr), "bpf map create");
  }
  if (!strcmp(a, "euid")) {
    printf("euid %d\n", (int)geteuid());
    return geteuid() == 0 ? 1 : 0;
  }
  if (!strcmp(a, "release_agent")) return release_agent();
  if (!strcmp(a, "cgroup2_limit")) return cgroup2_limit();
  if (!strcmp(a, "connect") && argc > 2) return connect_loopback(argv[2]);
  if (!strcmp(a, "proc_exe")) return proc_exe();
  if (!strcmp(a, "ps")) return list_processes();
  return 2;
}
