#!/usr/bin/env bash
# Chapter 7 side by side, in one run: pull time (hyperfine) and peak RSS (GNU time)
# of a 3-layer image of ~SIZE_MB from a loopback registry (Debian's docker-registry,
# CNCF distribution) with `ferry pull`, `podman pull` and `skopeo copy`.
#
#   sudo benches/pull.sh     # needs: hyperfine umoci skopeo podman docker-registry
#                            #        busybox-static time (apt-get install ...)
#   sudo SIZE_MB=200 RUNS=10 benches/pull.sh
#
# ferry and podman both verify every digest and unpack the layers into their
# store; skopeo copy to an OCI layout only downloads and stores the blobs (and
# checks them): it is the download floor. Every run is a full pull into an empty
# store. podman gets a private --root/--runroot/--tmpdir under the work dir, and the
# whole run happens in a mount namespace of its own with /var/lib/containers hidden
# behind a scratch directory (skopeo's blob-info cache lives there), so the host's
# podman storage is left alone. Report ratios, not absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine umoci skopeo podman docker-registry:docker-registry \
            busybox:busybox-static /usr/bin/time:time python3; do
  command -v "${tool%%:*}" >/dev/null \
    || { echo "missing ${tool%%:*}: apt-get install ${tool##*:}" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (podman's store, ferry's unpack): sudo $0" >&2; exit 1; }
if [ -z "${FERRY_BENCH_INNER:-}" ]; then
  exec unshare --mount --propagation private env FERRY_BENCH_INNER=1 "$0" "$@"
fi

cargo build --quiet --release -p ferry
ferry=$PWD/target/release/ferry
work=$(mktemp -d /tmp/ferry-bench-pull-XXXXXX)
registry_pid=
trap '[ -z "$registry_pid" ] || kill "$registry_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -d /var/lib/containers ]; then
  mkdir "$work/var-lib-containers"
  mount --bind "$work/var-lib-containers" /var/lib/containers
fi

# The registry, on a free loopback port, its storage in the work dir.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done
(echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
  || { echo "docker-registry did not start:" >&2; cat "$work/registry.log" >&2; exit 1; }

# Three layers made by umoci: static busybox, then two of ~SIZE_MB/2 each, half
# random (incompressible) and half repetitive content, so gzip has real work.
layout=$work/layout
umoci init --layout "$layout"
umoci new --image "$layout:big"
umoci unpack --image "$layout:big" "$work/make"
rootfs=$work/make/rootfs
mkdir -p "$rootfs/bin"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do ln -sf busybox "$rootfs/bin/$applet"; done
umoci repack --refresh-bundle --image "$layout:big" "$work/make"
mb=${SIZE_MB:-100}
for layer in a b; do
  mkdir -p "$rootfs/data-$layer"
  for i in $(seq 1 $((mb / 4))); do
    head -c 1048576 /dev/urandom > "$rootfs/data-$layer/random-$i"
    head -c 1048576 < <(yes "ferry layer $layer line $i") > "$rootfs/data-$layer/text-$i"
  done
  umoci repack --refresh-bundle --image "$layout:big" "$work/make"
done
umoci config --image "$layout:big" --config.cmd true
image=127.0.0.1:$port/bench/big:v1
skopeo copy -q --dest-tls-verify=false "oci:$layout:big" "docker://$image"
echo "image $image: $(du -sh "$work/make/rootfs" | cut -f1) unpacked," \
     "layer blobs $(du -shc "$work"/registry/docker/registry/v2/blobs/sha256/*/*/data \
                    | tail -1 | cut -f1) (gzip, config included)"

# podman's driver: overlay when it works here, else vfs.
pod=(podman --root "$work/proot" --runroot "$work/prun" --tmpdir "$work/ptmp")
driver=overlay
"${pod[@]}" --storage-driver overlay info >/dev/null 2>&1 || driver=vfs
rm -rf "$work/proot" "$work/prun" "$work/ptmp"
echo "podman storage driver: $driver"
pod+=(--storage-driver "$driver")
podman_clear="rm -rf $work/proot $work/prun $work/ptmp"

cmd_ferry="$ferry --root $work/state pull -q $image"
cmd_podman="${pod[*]} pull -q --tls-verify=false $image"
cmd_skopeo="skopeo copy -q --src-tls-verify=false docker://$image oci:$work/out:v1"
hyperfine --warmup 1 --runs "${RUNS:-5}" \
  --export-markdown "$work/pull.md" --export-json "$work/pull.json" \
  -n "ferry pull" --prepare "rm -rf $work/state" "$cmd_ferry" \
  -n "podman pull ($driver)" --prepare "$podman_clear" "$cmd_podman" \
  -n "skopeo copy (blobs only)" --prepare "rm -rf $work/out" "$cmd_skopeo"

# Peak RSS: each once more, into an empty store, under GNU time.
rm -rf "$work/state" "$work/out" "$work/proot" "$work/prun" "$work/ptmp"
for name in ferry podman skopeo; do
  cmd=cmd_$name
  /usr/bin/time -f '%M' -o "$work/rss-$name" ${!cmd} >/dev/null
done

echo
cat "$work/pull.md"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
r = {x["command"].split()[0]: x for x in json.load(open(f"{work}/pull.json"))["results"]}
ferry = r["ferry"]["mean"]
print()
print(f"mean time  ferry/podman: {ferry / r['podman']['mean']:.2f}x"
      f"   ferry/skopeo: {ferry / r['skopeo']['mean']:.2f}x")
print()
print("| tool | peak RSS (MiB) |\n|:---|---:|")
rss = {t: int(open(f"{work}/rss-{t}").read().split()[-1]) / 1024 for t in ("ferry", "podman", "skopeo")}
for t, m in rss.items():
    print(f"| {t} | {m:.1f} |")
print(f"\npeak RSS   ferry/podman: {rss['ferry'] / rss['podman']:.2f}x"
      f"   ferry/skopeo: {rss['ferry'] / rss['skopeo']:.2f}x")
PY
