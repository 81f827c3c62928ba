#!/usr/bin/env bash
# ferry as podman's OCI runtime (chapter 12): `podman run --rm IMAGE true`
# with ferry, runc and crun underneath, measured with hyperfine in one run:
#
#   podman+ferry   podman --runtime ferry-runtime (a symlink to target/release/ferry)
#   podman+runc    podman --runtime /usr/sbin/runc
#   podman+crun    podman --runtime /usr/bin/crun
#
#   sudo benches/runtime-podman.sh          # needs: hyperfine, podman, runc, crun
#   sudo RUNS=30 benches/runtime-podman.sh
#
# Debian's crun 1.8 refuses these machines' hybrid cgroup layout, so all three
# run in a private mount namespace where /sys/fs/cgroup/unified is unmounted
# (cgroup v1 only): the same conditions for each. podman keeps its own storage
# in a temp dir; the image is a static busybox (target/demo/rootfs). The flags
# are the lab machines' (no systemd, no CAP_SYS_RESOURCE). Report ratios: most
# of each run is podman's and conmon's own work, the same for all three.
#
# 2026-12-03, 2 cores, Debian 12, podman 4.3.1, conmon 2.1.6, runc 1.1.5,
# crun 1.8.1, ferry debug=false (release), RUNS=20, one hyperfine run:
#   podman+ferry 181.5 ms ± 23.4, podman+runc 201.2 ms ± 15.2,
#   podman+crun  173.6 ms ± 15.1
#   -> crun 1.05 ± 0.16x faster than ferry; ferry 1.11x faster than runc.
# (Without podman, `run` of /bin/true: crun ~14 ms, runc ~43 ms, ferry: see
# benches/run-true.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine podman runc crun; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }

if [ "${FERRY_BENCH_INSIDE:-}" != 1 ]; then
  cargo build --quiet --release -p ferry
  cargo xtask demo >/dev/null   # builds target/demo/rootfs (static busybox)
  exec env FERRY_BENCH_INSIDE=1 unshare -m --propagation private "$0" "$@"
fi
umount /sys/fs/cgroup/unified 2>/dev/null || true

work=$(mktemp -d /tmp/ferry-bench-XXXXXX)
ln -s "$PWD/target/release/ferry" "$work/ferry-runtime"
podman=(podman --root "$work/root" --runroot "$work/runroot" --tmpdir "$work/tmp"
  --storage-driver overlay --cgroup-manager=cgroupfs --events-backend=file)
run=(run --rm --network=none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
  --cgroup-parent /ferry-bench localhost/bench-busybox true)
trap '"${podman[@]}" system reset -f >/dev/null 2>&1 || true; umount -R "$work/root" 2>/dev/null || true; rm -rf "$work"; rmdir /sys/fs/cgroup/*/ferry-bench/* /sys/fs/cgroup/*/ferry-bench 2>/dev/null || true' EXIT

tar -C target/demo/rootfs -cf "$work/rootfs.tar" .
"${podman[@]}" import -q "$work/rootfs.tar" localhost/bench-busybox >/dev/null
for runtime in "$work/ferry-runtime" /usr/sbin/runc /usr/bin/crun; do
  "${podman[@]}" --runtime "$runtime" "${run[@]}"   # each works before it is timed
done

hyperfine --warmup 3 --runs "${RUNS:-20}" --export-markdown "$work/result.md" \
  -n podman+ferry "${podman[*]} --runtime $work/ferry-runtime ${run[*]}" \
  -n podman+runc "${podman[*]} --runtime /usr/sbin/runc ${run[*]}" \
  -n podman+crun "${podman[*]} --runtime /usr/bin/crun ${run[*]}"
cat "$work/result.md"
