#!/usr/bin/env bash
# Building images (chapter 11): a 10-step Dockerfile on the same context, built
# cold (no cache) and rebuilt fully cached, by ferry and by buildah (Debian's
# package, the OCI builder podman uses), measured with hyperfine in one run:
#
#   ferry-cold      ferry build --no-cache
#   buildah-cold    buildah bud --no-cache --layers
#   ferry-cached    ferry build            (every step CACHED)
#   buildah-cached  buildah bud --layers   (every step "Using cache")
#
#   sudo benches/build.sh                  # needs: hyperfine, buildah
#   sudo RUNS=10 benches/build.sh
#
# Both start from the same busybox image (target/demo/rootfs imported into
# each), run their RUN steps on their default networks, and store with
# overlay (buildah's vfs driver would copy every layer: it is told overlay).
# Report ratios, not absolute times.
#
# 2026-12-02, 2 cores, Debian 12, buildah 1.28 with runc, RUNS=5:
#   cold:   ferry 0.85 s ± 0.03, buildah 2.68 s ± 0.05  -> ferry 3.2x faster
#   cached: ferry 11 ms ± 2,     buildah 756 ms ± 68   -> ferry ~70x faster
# (buildah re-reads each cached layer's image and commits the final one; ferry
# hashes the context, follows the cache keys and writes one name.)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine buildah; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (builds run containers): sudo $0" >&2; exit 1; }

cargo build --quiet --release -p ferry
cargo xtask demo >/dev/null   # builds target/demo/rootfs (static busybox)

work=$(mktemp -d /tmp/ferry-bench-XXXXXX)
ferry="target/release/ferry --root $work/state"
buildah=(buildah --root "$work/buildah" --runroot "$work/buildah-run" --storage-driver overlay)
trap '"${buildah[@]}" rm --all >/dev/null 2>&1 || true; "${buildah[@]}" rmi --all --force >/dev/null 2>&1 || true; umount -R "$work/buildah" 2>/dev/null || true; rm -rf "$work"; rmdir /sys/fs/cgroup/*/ferry-bench 2>/dev/null || true' EXIT

tar -C target/demo/rootfs -cf "$work/rootfs.tar" .
$ferry import "$work/rootfs.tar" localhost/bench-busybox:1 >/dev/null
# buildah gets the very same image: ferry saves it as an OCI archive.
$ferry save -o "$work/busybox-oci.tar" localhost/bench-busybox:1
"${buildah[@]}" pull -q "oci-archive:$work/busybox-oci.tar" >/dev/null
"${buildah[@]}" tag "$("${buildah[@]}" images -q | head -n1)" localhost/bench-busybox:1

ctx="$work/context"
mkdir -p "$ctx/src"
for i in $(seq 1 50); do head -c 20000 /dev/urandom | base64 > "$ctx/src/file$i.txt"; done
cat > "$ctx/Dockerfile" <<'EOF'
FROM localhost/bench-busybox:1
ARG VERSION=1
ENV APP=/app
WORKDIR /app
COPY src/ ./src/
RUN cat src/*.txt | wc -c > size
RUN mkdir -p /data && for i in 1 2 3 4 5; do cp -r src /data/copy$i; done
LABEL org.example.version=$VERSION
EXPOSE 8080
CMD ["cat", "/app/size"]
EOF

echo "10 steps: $(grep -c . "$ctx/Dockerfile") lines; context $(du -sh "$ctx" | cut -f1)"
hyperfine --warmup 1 --runs "${RUNS:-10}" --export-markdown "$work/result.md" \
  -n ferry-cold "$ferry build -q --no-cache --cgroup-parent /ferry-bench -t bench:1 $ctx" \
  -n buildah-cold "${buildah[*]} bud --runtime /usr/sbin/runc -q --no-cache --layers -t bench:1 $ctx" \
  -n ferry-cached "$ferry build -q --cgroup-parent /ferry-bench -t bench:1 $ctx" \
  -n buildah-cached "${buildah[*]} bud --runtime /usr/sbin/runc -q --layers -t bench:1 $ctx"
cat "$work/result.md"
