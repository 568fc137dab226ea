#!/usr/bin/env bash
# Builds the multi-arch FROM scratch image (Dockerfile.scratch) as one OCI image
# index and saves it as an OCI archive, then holds every layer to its budget.
#
#   scripts/build-image.sh [ARCH...]      default: x86_64 aarch64 armv7
#
#   ARCH      platform        binary (scripts/build-static.sh)
#   x86_64    linux/amd64     target/dist/opsctrl-daemon-x86_64
#   aarch64   linux/arm64     target/dist/opsctrl-daemon-aarch64
#   armv7     linux/arm/v7    target/dist/opsctrl-daemon-armv7
#
# Steps:
#   1. scripts/build-static.sh ARCH... (static check, runs under qemu, scan);
#   2. `buildah build --platform` once per platform, each into one manifest
#      list (`buildah manifest create`/`--manifest`). FROM scratch has no RUN
#      step, so no emulation is needed to build foreign platforms. Labels: OCI
#      version (Cargo.toml), revision (git HEAD), source (Cargo.toml's
#      repository URL, never a local path);
#   3. `buildah manifest push --all` into target/image/opsctrl-daemon-<version>.oci.tar,
#      named <image>:<version> (Cargo.toml, scripts/release-info.sh);
#   4. removes the manifest list and the per-platform images, and fails if it
#      left a dangling image behind;
#   5. `skopeo inspect --raw` of the archive: the index must list exactly the
#      platforms built; then, from the archive's blobs, every platform's layer
#      must be under 2 MB compressed (the whole image under 5 MiB), its config
#      must name its platform, and the OCI labels must be there.
# PUSH=docker://REGISTRY/NAME:TAG pushes the same index there (the release
# pipeline; needs `buildah login` first), and DIGESTFILE=PATH gets its digest
# (what cosign signs).
# If buildah's default storage fails (e.g. no overlay support in a sandbox),
# it retries with the vfs storage driver and chroot isolation.
set -euo pipefail
cd "$(dirname "$0")/.."

LAYER_LIMIT=2000000  # 2 MB per compressed layer
TOTAL_LIMIT=5242880  # 5 MiB per platform
ARCHES=("${@:-x86_64}")
[ $# -eq 0 ] && ARCHES=(x86_64 aarch64 armv7)

platform() {
  case "$1" in
    x86_64) echo linux/amd64 ;;
    aarch64) echo linux/arm64 ;;
    armv7) echo linux/arm/v7 ;;
    *) echo "usage: $0 [x86_64|aarch64|armv7]..." >&2; exit 2 ;;
  esac
}
for a in "${ARCHES[@]}"; do platform "$a" >/dev/null; done

scripts/build-static.sh "${ARCHES[@]}"

eval "$(scripts/release-info.sh)"
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then REVISION="$REVISION-dirty"; fi
OUT_DIR=target/image
ARCHIVE=$OUT_DIR/opsctrl-daemon-$VERSION.oci.tar
mkdir -p "$OUT_DIR"
rm -f "$ARCHIVE"

for c in buildah skopeo; do
  command -v "$c" >/dev/null 2>&1 || {
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y buildah skopeo
  }
done

BUILDAH=(buildah)
if ! buildah images >/dev/null 2>&1; then
  echo "buildah's default storage does not work here; using the vfs storage driver" >&2
  BUILDAH=(buildah --storage-driver vfs)
fi
LIST=localhost/opsctrl-daemon-build-$$
TAGS=()
cleanup() {
  "${BUILDAH[@]}" manifest rm "$LIST" >/dev/null 2>&1 || true
  for t in "${TAGS[@]}"; do "${BUILDAH[@]}" rmi "$t" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
dangling_before=$("${BUILDAH[@]}" images --filter dangling=true -q | sort)

"${BUILDAH[@]}" manifest create "$LIST" >/dev/null
for a in "${ARCHES[@]}"; do
  p=$(platform "$a")
  tag="$LIST-$a"
  TAGS+=("$tag")
  echo "== building $p from target/dist/opsctrl-daemon-$a"
  args=(--platform "$p" -f Dockerfile.scratch --layers=false --tag "$tag" --manifest "$LIST"
    --build-arg "BINARY=target/dist/opsctrl-daemon-$a"
    --build-arg "OCI_VERSION=$VERSION" --build-arg "OCI_REVISION=$REVISION" --build-arg "OCI_SOURCE=$SOURCE")
  if ! "${BUILDAH[@]}" build --quiet "${args[@]}" . >/dev/null; then
    echo "buildah build failed; retrying with --isolation chroot" >&2
    "${BUILDAH[@]}" build --quiet --isolation chroot "${args[@]}" . >/dev/null
  fi
done
"${BUILDAH[@]}" manifest push --quiet --all --format oci "$LIST" "oci-archive:$ARCHIVE:$IMAGE_REF"
if [ -n "${PUSH:-}" ]; then
  echo "== pushing $PUSH"
  "${BUILDAH[@]}" manifest push --all --format oci ${DIGESTFILE:+--digestfile "$DIGESTFILE"} "$LIST" "$PUSH"
fi
cleanup
TAGS=()
dangling_after=$("${BUILDAH[@]}" images --filter dangling=true -q | sort)
new_dangling=$(comm -13 <(echo "$dangling_before") <(echo "$dangling_after") | grep . || true)
if [ -n "$new_dangling" ]; then
  echo "error: the build left dangling images: $new_dangling" >&2
  exit 1
fi
echo "no images left behind (manifest list and per-platform images removed)"

echo "== $ARCHIVE ($IMAGE_REF)"
skopeo inspect --raw "oci-archive:$ARCHIVE" >"$OUT_DIR/index.json"
python3 - "$ARCHIVE" "$OUT_DIR/index.json" "$LAYER_LIMIT" "$TOTAL_LIMIT" "$SOURCE" "$VERSION" "${ARCHES[@]}" <<'PY'
import json, sys, tarfile
archive, index_path, layer_limit, total_limit, source, version, *arches = sys.argv[1:]
layer_limit, total_limit = int(layer_limit), int(total_limit)
want = {"x86_64": ("amd64", None), "aarch64": ("arm64", None), "armv7": ("arm", "v7")}
index = json.load(open(index_path))
problems = []
seen = sorted((m["platform"]["architecture"], m["platform"].get("variant")) for m in index["manifests"])
expected = sorted(want[a] for a in arches)
if seen != expected:
    problems.append(f"index platforms {seen}, expected {expected}")
print(f"index {index['mediaType']}: {len(index['manifests'])} platforms")
# The per-platform manifests and configs, read from the archive (an OCI layout).
tar = tarfile.open(archive)
blob = lambda digest: json.load(tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1]))
for m in index["manifests"]:
    arch, variant = m["platform"]["architecture"], m["platform"].get("variant")
    plat = f"linux/{arch}" + (f"/{variant}" if variant else "")
    manifest = blob(m["digest"])
    config = blob(manifest["config"]["digest"])
    total = 0
    for layer in manifest["layers"]:
        d, size = layer["digest"], layer["size"]
        total += size
        print(f"  {plat:<13} layer {d[7:19]} {size:>9} bytes compressed ({size / 1048576:.2f} MiB, {layer['mediaType'].rsplit('.', 1)[-1]})")
        if size >= layer_limit:
            problems.append(f"{plat}: layer {d} is {size} bytes, not under {layer_limit}")
    if total > total_limit:
        problems.append(f"{plat}: {total} bytes of layers, over {total_limit}")
    if config.get("architecture") != arch or config.get("variant") != variant:
        problems.append(f"{plat}: the config says {config.get('architecture')}/{config.get('variant')}")
    labels = config.get("config", {}).get("Labels") or {}
    if labels.get("org.opencontainers.image.source") != source or labels.get("org.opencontainers.image.version") != version \
            or not labels.get("org.opencontainers.image.revision"):
        problems.append(f"{plat}: OCI labels {labels}")
    print(f"  {plat:<13} user {config['config'].get('User')}, labels version={labels.get('org.opencontainers.image.version')}"
          f" revision={labels.get('org.opencontainers.image.revision', '')[:12]} source={labels.get('org.opencontainers.image.source')}")
for p in problems:
    print("FAIL", p)
sys.exit(1 if problems else 0)
PY
echo "image $IMAGE_REF: $ARCHIVE ($(stat -c %s "$ARCHIVE") bytes)"
