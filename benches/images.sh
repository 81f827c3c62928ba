#!/usr/bin/env bash
# Chapter 6 side by side, in one run, with hyperfine:
#  1. unpacking a ~100 MB gzip layer: `ferry load` (stores the blob, verifies both
#     digests while it streams, applies the layer through safe_path) next to
#     `umoci unpack` of the same image (unpacks only);
#  2. `ferry run IMAGE true` next to `crun run` of a bundle of the same rootfs.
#
#   sudo benches/images.sh          # needs: hyperfine umoci crun (apt-get install ...)
#   sudo SIZE_MB=200 RUNS=10 benches/images.sh
#
# Report ratios, not absolute times. crun 1.8 refuses the hybrid cgroup layout of
# these CI machines, so the whole run happens in a mount namespace of its own with
# cgroup2 unmounted there, for every contender alike (see benches/run-true.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine umoci crun; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
if [ -z "${FERRY_BENCH_INNER:-}" ] && mountpoint -q /sys/fs/cgroup/unified 2>/dev/null \
   && [ -n "$(ls /sys/fs/cgroup/memory 2>/dev/null)" ]; then
  exec unshare --mount --propagation private env FERRY_BENCH_INNER=1 "$0" "$@"
fi
[ -n "${FERRY_BENCH_INNER:-}" ] && umount /sys/fs/cgroup/unified

cargo build --quiet --release -p ferry
cargo xtask demo >/dev/null   # target/demo/rootfs: static busybox
ferry=$PWD/target/release/ferry
work=$(mktemp -d /tmp/ferry-bench-images-XXXXXX)
trap 'rm -rf "$work"; rmdir /sys/fs/cgroup/*/ferry-bench 2>/dev/null || true' EXIT

# An image of ~SIZE_MB: the demo rootfs plus files of random (incompressible) and
# repetitive content, made by umoci as an OCI layout with one gzip layer.
layout=$work/layout
umoci init --layout "$layout"
umoci new --image "$layout:big"
umoci unpack --image "$layout:big" "$work/make"
cp -a target/demo/rootfs/. "$work/make/rootfs/"
mkdir -p "$work/make/rootfs/data"
mb=${SIZE_MB:-100}
for i in $(seq 1 $((mb / 2))); do
  head -c 1048576 /dev/urandom > "$work/make/rootfs/data/random-$i"
  head -c 1048576 < <(yes "ferry layer line $i") > "$work/make/rootfs/data/text-$i"
done
umoci repack --image "$layout:big" "$work/make"
umoci config --image "$layout:big" --config.cmd true
tar -C "$layout" -cf "$work/big.tar" .
echo "layer blobs: $(du -sh "$layout/blobs" | cut -f1)"

hyperfine --warmup 1 --runs "${RUNS:-5}" --export-markdown "$work/unpack.md" \
  --prepare "rm -rf $work/state $work/bundle" \
  -n "ferry load" "$ferry --root $work/state load -q -i $work/big.tar" \
  -n "umoci unpack" "umoci unpack --image $layout:big $work/bundle"

# The same image as a runnable: ferry from its store, crun from umoci's bundle.
rm -rf "$work/state" "$work/bundle"
"$ferry" --root "$work/state" load -q -i "$work/big.tar"
# umoci names the image by its tag only, so it loads without a name: run it by id.
id=$("$ferry" --root "$work/state" images -q)
umoci unpack --image "$layout:big" "$work/bundle"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = ["/bin/true"]
json.dump(spec, open(path, "w"), indent=2)
PY
hyperfine --warmup 3 --runs "${RUNS_RUN:-30}" --export-markdown "$work/run.md" \
  -n "ferry run IMAGE true" "$ferry --root $work/state run --cgroup-parent /ferry-bench $id /bin/true" \
  -n "crun run" "crun --root $work/crun run --bundle $work/bundle bench-\$RANDOM"
cat "$work/unpack.md" "$work/run.md"
