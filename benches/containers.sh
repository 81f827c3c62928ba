#!/usr/bin/env bash
# Containers as objects (chapter 8): what keeping a container in the store and
# running it under a supervisor costs, next to crun and podman on the same
# busybox rootfs, measured with hyperfine in one run:
#
#   ferry-rm        ferry run --rm IMAGE true      (attached: create, run, remove)
#   ferry-d-rm      ferry run -d IMAGE true; ferry rm -f   (the supervisor path)
#   crun            crun run of a bundle of the same rootfs
#   podman-rm       podman --runtime crun run --rm --network none --rootfs DIR true
#
#   sudo benches/containers.sh                # needs: hyperfine, crun, podman
#   sudo RUNS=30 benches/containers.sh
#
# Report ratios, not absolute times. crun 1.8 refuses a hybrid cgroup layout, so
# (as benches/run-true.sh does) everything runs in a mount namespace of its own
# with cgroup2 unmounted there; podman is told --cgroup-manager cgroupfs and the
# ulimits this machine allows (see the project's machine notes).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine crun podman; do
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
ferry="target/release/ferry --root $work/state"
trap '$ferry rm -f $($ferry ps -aq) >/dev/null 2>&1 || true; rm -rf "$work"; rmdir /sys/fs/cgroup/*/ferry-bench 2>/dev/null || true' EXIT
bundle="$work/bundle"
mkdir -p "$bundle"
cp -a target/demo/rootfs "$bundle/rootfs"
(cd "$bundle" && crun spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = ["/bin/true"]
json.dump(spec, open(path, "w"), indent=2)
PY
tar -C "$bundle/rootfs" -cf "$work/rootfs.tar" .
$ferry import "$work/rootfs.tar" bench/busybox:1 >/dev/null

podman=(podman --root "$work/podman" --runroot "$work/podman-run" --runtime crun
        --cgroup-manager cgroupfs --events-backend none)
"${podman[@]}" info >/dev/null 2>&1 || true

hyperfine --warmup 3 --runs "${RUNS:-30}" --export-markdown "$work/result.md" \
  -n ferry-rm "$ferry run --rm --cgroup-parent /ferry-bench bench/busybox:1 /bin/true" \
  -n ferry-d-rm "$ferry rm -f \$($ferry run -d --cgroup-parent /ferry-bench bench/busybox:1 /bin/true)" \
  -n crun "crun --root $work/crun run --bundle $bundle bench-\$RANDOM" \
  -n podman-rm "${podman[*]} run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --rootfs $bundle/rootfs /bin/true"
cat "$work/result.md"
