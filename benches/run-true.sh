#!/usr/bin/env bash
# How long does `run /bin/true` take? ferry (the reference, release build) side by
# side with runc on the same busybox rootfs, measured with hyperfine.
#
#   sudo benches/run-true.sh            # needs: hyperfine, runc (apt-get install hyperfine runc)
#
# ferry runs with its full chapter 0-4 setup (namespaces, cgroup with a pids limit,
# capabilities, seccomp); runc with the default `runc spec` bundle (namespaces,
# capabilities, masked paths, no seccomp) plus the same pids limit. Report ratios,
# not absolute times: machines differ, the ratio is what the comparison means.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine runc; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (containers need it): sudo $0" >&2; exit 1; }

cargo build --quiet --release -p ferry
cargo xtask demo >/dev/null   # builds target/demo/rootfs (static busybox)

work=$(mktemp -d /tmp/ferry-bench-XXXXXX)
trap 'rm -rf "$work"; rmdir /sys/fs/cgroup/*/ferry-bench 2>/dev/null || true' EXIT
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

hyperfine --warmup 5 --runs "${RUNS:-50}" --export-markdown "$work/result.md" \
  -n ferry "target/release/ferry --root $work/state run --rootfs $bundle/rootfs --cgroup-parent /ferry-bench --pids-limit 100 /bin/true" \
  -n runc "runc --root $work/runc run --bundle $bundle bench-\$RANDOM"
cat "$work/result.md"
