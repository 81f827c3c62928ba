#!/usr/bin/env bash
# How long does `run /bin/true` take? ferry (the reference, release build) side by
# side with runc and crun on the same busybox rootfs, measured with hyperfine in one
# run. With FERRY_BEFORE=/path/to/an/older/ferry, that build is measured too (the
# "before" of a change).
#
#   sudo benches/run-true.sh                       # needs: hyperfine, runc, crun
#   sudo FERRY_BEFORE=../old/target/release/ferry RUNS=100 benches/run-true.sh
#
# ferry runs with its full chapter 0-4 setup (namespaces, cgroup with a pids limit,
# capabilities, seccomp, the hardening of issue 6, and since the engine/runtime
# seam a config.json and state.json written per container); runc and crun with
# the default `runc spec` bundle (namespaces, capabilities, masked paths, no
# seccomp) plus the same pids limit. Report ratios, not absolute times: machines
# differ, the ratio is what the comparison means.
#
# crun 1.8 refuses a hybrid cgroup layout (v1 plus cgroup2 at
# /sys/fs/cgroup/unified): then the whole measurement runs in a mount namespace of
# its own with cgroup2 unmounted there, for every contender alike.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine runc crun; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (containers need it): sudo $0" >&2; exit 1; }

if [ -z "${FERRY_BENCH_INNER:-}" ] && mountpoint -q /sys/fs/cgroup/unified 2>/dev/null \
   && [ -n "$(ls /sys/fs/cgroup/memory 2>/dev/null)" ]; then
  exec unshare --mount --propagation private env FERRY_BENCH_INNER=1 "$0" "$@"
fi
if [ -n "${FERRY_BENCH_INNER:-}" ]; then
  umount /sys/fs/cgroup/unified
fi

cargo build --quiet --release -p ferry
cargo xtask demo >/dev/null   # builds target/demo/rootfs (static busybox)

work=$(mktemp -d /tmp/ferry-bench-XXXXXX)
trap 'rm -rf "$work"; rmdir /sys/fs/cgroup/*/ferry-bench /sys/fs/cgroup/*/ferry-bench-before 2>/dev/null || true' EXIT
bundle="$work/bundle"
mkdir -p "$bundle"
cp -a target/demo/rootfs "$bundle/rootfs"
(cd "$bundle" && runc spec)
# A non-interactive /bin/true with the same pids limit as ferry's run below.
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = ["/bin/true"]
spec["linux"].setdefault("resources", {})["pids"] = {"limit": 100}
json.dump(spec, open(path, "w"), indent=2)
PY

contenders=(
  -n ferry "target/release/ferry --root $work/state run --rootfs $bundle/rootfs --cgroup-parent /ferry-bench --pids-limit 100 /bin/true"
)
if [ -n "${FERRY_BEFORE:-}" ]; then
  contenders+=(-n ferry-before "$FERRY_BEFORE --root $work/state-before run --rootfs $bundle/rootfs --cgroup-parent /ferry-bench-before --pids-limit 100 /bin/true")
fi
contenders+=(
  -n runc "runc --root $work/runc run --bundle $bundle bench-\$RANDOM"
  -n crun "crun --root $work/crun run --bundle $bundle bench-\$RANDOM"
)
hyperfine --warmup 5 --runs "${RUNS:-50}" --export-markdown "$work/result.md" "${contenders[@]}"
cat "$work/result.md"
