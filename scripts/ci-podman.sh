#!/usr/bin/env bash
# Make the Docker-runtime tests runnable on a fresh Debian machine (CI), as root: Debian's podman
# with what its Docker-compatible API service needs, debootstrap, and the test image that
# tests/runtime/build_test_image.sh builds (no registry is reachable from CI, so it is built locally).
#
#   bash scripts/ci-podman.sh            (idempotent: a second run installs and builds nothing)
#
# Why these packages: podman runs containers through conmon + crun, `--init` needs catatonit,
# published ports need netavark (+ aardvark-dns) and slirp4netns, uidmap gives newuidmap for user
# namespaces, fuse-overlayfs is the storage fallback where the kernel's overlay cannot nest.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="localhost/podium-python:test"  # tests/podman.py IMAGE
PACKAGES=(podman conmon crun catatonit uidmap slirp4netns netavark aardvark-dns fuse-overlayfs debootstrap curl)
t0=$(date +%s)

if [ "$(id -u)" -ne 0 ]; then
  echo "ci-podman: run as root (apt-get install, podman import)" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci-podman: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
t_install=$(date +%s)

if podman image exists "$IMAGE"; then
  echo "ci-podman: image $IMAGE already present"
else
  echo "ci-podman: building $IMAGE (debootstrap, ~90 s)"
  sh tests/runtime/build_test_image.sh "$IMAGE" >/dev/null
fi
t_image=$(date +%s)

# Sandboxed machines of this project's kind need two host fixes before crun can start anything:
# 1. Without CAP_SYS_RESOURCE, crun cannot raise RLIMIT_NOFILE/NPROC to podman's defaults (1048576):
#    default to the limits this machine grants (podman caps its own nproc at kernel.pid_max).
capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
if [ $(( (0x$capeff >> 24) & 1 )) -eq 0 ]; then
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  pid_max=$(cat /proc/sys/kernel/pid_max)
  [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ] && nproc=$pid_max
  [ "$nofile" = unlimited ] && nofile=1048576
  mkdir -p /etc/containers/containers.conf.d
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
    "$nofile" "$nofile" "$nproc" "$nproc" >/etc/containers/containers.conf.d/podium-ci.conf
fi
# 2. cgroup "hybrid" mode (v1 hierarchies plus a v2 mount that still holds controllers): crun refuses
#    it ("drop all controllers from cgroupv2"). Mount each such controller as a v1 hierarchy instead.
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then
  for ctl in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
    mkdir -p "/sys/fs/cgroup/$ctl"
    mountpoint -q "/sys/fs/cgroup/$ctl" || mount -t cgroup -o "$ctl" cgroup "/sys/fs/cgroup/$ctl"
  done
fi
if ! out=$(podman run --rm "$IMAGE" python3 -c 'print("ok")' 2>&1) || [ "$out" != ok ]; then
  echo "ci-podman: podman cannot run a container here: $out" >&2
  exit 1
fi

# Prove the Docker API answers: a private service socket, one /_ping, then stop it.
sock_dir=$(mktemp -d)
podman system service --time=0 "unix://$sock_dir/engine.sock" &
svc=$!
trap 'kill "$svc" 2>/dev/null || true; wait "$svc" 2>/dev/null || true; rm -rf "$sock_dir"' EXIT
for _ in $(seq 150); do
  [ -S "$sock_dir/engine.sock" ] && break
  sleep 0.1
done
pong=$(curl -sf --unix-socket "$sock_dir/engine.sock" http://engine/_ping || true)
if [ "$pong" != "OK" ]; then
  echo "ci-podman: podman's Docker API did not answer /_ping (got: ${pong:-nothing})" >&2
  exit 1
fi

echo "ci-podman: ready in $((t_image - t0)) s (packages $((t_install - t0)) s, image $((t_image - t_install)) s)"
