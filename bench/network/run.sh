#!/usr/bin/env bash
# The egress network's benchmark (bench_network.cpp): container start with
# egress vs none, one 1 GiB download (host vs egress through the recording
# proxy vs egress direct), and a pinned fetch served from the content store
# vs the origin; the same download over HTTPS (host vs a CONNECT tunnel vs
# egress.inspect). Everything happens in two network namespaces made here
# ("host" runs the benchmark, "world" runs nginx); nothing leaves the machine.
# Then the same as an ordinary user (docs/rootless.md: the fabric in the
# helper's namespace, out through slirp4netns), as a user made here with a
# subordinate range and removed at the end; ROOTLESS=0 leaves that out.
# Usage: bench/network/run.sh [BUILD_DIR] [RUNS] [SIZE]   (as root; SIZE: 1G)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
runs=${2:-50}
size=${3:-1G}
[ "$(id -u)" = 0 ] || { echo "run.sh: error: run as root" >&2; exit 2; }
cmake --build "$build" --target bench_network >/dev/null
bench="$build/bench/network/bench_network"

work=$(mktemp -d /tmp/lockstep-bench-network.XXXXXX)
h=lsbench-h$$
w=lsbench-w$$
user="lsbnet$$"
created_user=0
cleanup() {
  [ "$created_user" = 1 ] && userdel -f "$user" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  ip netns del "$h" 2>/dev/null || true
  ip netns del "$w" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$h"
ip netns add "$w"
ip -n "$h" link set lo up
ip -n "$w" link set lo up
ip -n "$h" link add up0 type veth peer name wan0 netns "$w"
ip -n "$h" addr add 203.0.113.2/24 dev up0
ip -n "$w" addr add 203.0.113.1/24 dev wan0
ip -n "$w" addr add 198.51.100.10/32 dev lo
ip -n "$h" link set up0 up
ip -n "$w" link set wan0 up
ip -n "$h" route add default via 203.0.113.1

mkdir -p "$work/www"
truncate -s "$size" "$work/www/big"
cat > "$work/nginx.conf" <<CONF
daemon on;
worker_processes 1;
user root;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fcgi;
  sendfile on;
  server { listen 198.51.100.10:80; root $work/www; }
  server {
    listen 198.51.100.10:443 ssl;
    ssl_certificate $work/srv.pem;
    ssl_certificate_key $work/srv.key;
    root $work/www;
  }
}
CONF
# The origin's own CA and a certificate for its address.
(cd "$work" &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
    -out ca.pem -days 2 -subj /CN=bench-ca 2>/dev/null &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key \
    -out srv.csr -subj /CN=198.51.100.10 2>/dev/null &&
  printf 'subjectAltName=IP:198.51.100.10\n' > ext &&
  openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 \
    -extfile ext 2>/dev/null)
ip netns exec "$w" /usr/sbin/nginx -p "$work/" -c "$work/nginx.conf"
bash "$here/tests/support/nettools-rootfs.sh" "$work/rootfs"
# nsenter, not "ip netns exec": only the network namespace changes (ip netns
# exec mounts a new /sys, which hides the cgroup hierarchies). The resolver is
# never asked (the URL is an address).
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) cores)"
nsenter --net=/run/netns/"$h" "$bench" --rootfs "$work/rootfs" --state "$work/state" \
  --url http://198.51.100.10/big --runs "$runs" \
  --https-url https://198.51.100.10/big --ca "$work/ca.pem"

[ "${ROOTLESS:-1}" = 1 ] || exit 0
# An ordinary user with a subordinate range; in a mount namespace of its own
# it gets a /dev/net/tun it may open (Debian's udev makes the device 0666, a
# host without udev leaves it 0600; the host's node is not touched).
useradd -M -d "$work" -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
created_user=1
first=$((3000000 + ($$ % 1000) * 65536))
usermod --add-subuids "$first-$((first + 65535))" --add-subgids "$first-$((first + 65535))" "$user"
chmod 755 "$work"
mknod -m 0666 "$work/tun" c 10 200
mkdir "$work/state-user"
chown "$(id -u "$user"):$(id -g "$user")" "$work/state-user"
echo
echo "without root:"
nsenter --net=/run/netns/"$h" unshare --mount --propagation slave \
  sh -c 'mount --bind "$0" /dev/net/tun && exec "$@"' "$work/tun" \
  setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --clear-groups -- \
  env HOME="$work" "$bench" --rootfs "$work/rootfs" --state "$work/state-user" \
  --url http://198.51.100.10/big --runs "$runs"
