#!/usr/bin/env bash
# Networking (chapter 10): what the default bridge costs and carries, measured in
# one run, inside a network namespace of its own (nothing touches the machine's
# network; all traffic is on its loopback and ferry's bridge):
#
#   start       ferry run --rm --network none ROOTFS true   vs   the same on the bridge
#               (hyperfine: the extra start latency of a veth, an address and the rules)
#   c2c         TCP throughput container → container through ferry0 (probe tcp-send → tcp-sink)
#   published   TCP throughput host loopback → published port → container (DNAT)
#   podman      the same two through podman's default network, when podman's
#               bridge (netavark) works here
#
#   sudo benches/network.sh                   # needs: hyperfine, nft
#   sudo MB=2048 RUNS=30 benches/network.sh
#
# Report ratios and MB/s side by side, not absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine nft; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install ${tool/nft/nftables}" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (containers need it): sudo $0" >&2; exit 1; }
if [ -z "${FERRY_BENCH_INNER:-}" ]; then
  exec unshare --net env FERRY_BENCH_INNER=1 "$0" "$@"
fi
ip link set lo up

cargo build --quiet --release -p ferry
cargo xtask demo >/dev/null   # builds target/demo/rootfs (static busybox)
cargo rustc --quiet --offline -p ferry-probe --release --target-dir target/probe -- -C target-feature=+crt-static
probe=$(find target/probe -path '*release/ferry-probe' -type f | head -1)

work=$(mktemp -d /tmp/ferry-bench-XXXXXX)
ferry="target/release/ferry --root $work/state"
trap '$ferry rm -f $($ferry ps -aq) >/dev/null 2>&1 || true; rm -rf "$work"; rmdir /sys/fs/cgroup/*/ferry-bench 2>/dev/null || true' EXIT
rootfs="$work/rootfs"
cp -a target/demo/rootfs "$rootfs"
cp "$probe" "$rootfs/probe"
run="$ferry run --cgroup-parent /ferry-bench --rootfs $rootfs"
MB=${MB:-1024}

echo "== start latency: --network none vs the default bridge"
hyperfine --warmup 3 --runs "${RUNS:-20}" --export-markdown "$work/start.md" \
  -n none "$run --rm --network none /bin/true" \
  -n bridge "$run --rm /bin/true"
cat "$work/start.md"

echo "== container → container through ferry0, $MB MiB"
$run -d --name sink /probe tcp-sink 5001 >/dev/null
sink=$($ferry inspect -f '{{.NetworkSettings.IPAddress}}' sink)
$run --rm /probe tcp-send "$sink" 5001 "$MB"
$ferry rm -f sink >/dev/null

echo "== host loopback → published port → container, $MB MiB"
$run -d --name sink -p 127.0.0.1:5002:5002 /probe tcp-sink 5002 >/dev/null
"$probe" tcp-send 127.0.0.1 5002 "$MB"
$ferry rm -f sink >/dev/null

if command -v podman >/dev/null; then
  podman=(podman --root "$work/podman" --runroot "$work/podman-run" --runtime runc --cgroup-manager cgroupfs
          --events-backend none)
  opts=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --rootfs "$rootfs")
  echo "== podman's default network (for comparison)"
  if "${podman[@]}" run -d --name psink "${opts[@]}" /probe tcp-sink 5001 >/dev/null 2>"$work/podman.err"; then
    psink=$("${podman[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' psink)
    "${podman[@]}" run --rm "${opts[@]}" /probe tcp-send "$psink" 5001 "$MB" || true
    "${podman[@]}" rm -f psink >/dev/null 2>&1 || true
    "${podman[@]}" run -d --name psink -p 127.0.0.1:5003:5003 "${opts[@]}" /probe tcp-sink 5003 >/dev/null
    "$probe" tcp-send 127.0.0.1 5003 "$MB" || true
    "${podman[@]}" rm -f psink >/dev/null 2>&1 || true
  else
    echo "podman's bridge does not run here: $(tail -1 "$work/podman.err")"
  fi
fi
