#!/usr/bin/env bash
# Builds the FROM scratch container image (Dockerfile.scratch) and holds it to
# its size budget: the image is just the static binary, so it should stay small,
# and this script FAILS if the compressed image grows past 5 MiB.
#
#   scripts/build-image.sh [TAG]       default: opsctrl-daemon:<version>
#
# Steps:
#   1. scripts/build-static.sh x86_64 (release musl build + static-link check);
#   2. builds the image with docker if a Docker engine answers (`docker info`),
#      else podman, else buildah; installs podman (or buildah) with apt-get if
#      none is present. Only building is needed, never running a container.
#      If the default podman/buildah build fails (e.g. no overlay support in a
#      sandbox), it retries with chroot isolation and the vfs storage driver;
#   3. saves the image as a docker-archive (uncompressed layers, as
#      `docker save` writes), gzips it and prints the compressed size: roughly
#      what a registry stores and a pull costs.
# Last line: `image <tag>: <bytes> bytes compressed (<MiB> MiB), binary <bytes> bytes`.
set -euo pipefail
cd "$(dirname "$0")/.."

LIMIT=5242880 # 5 MiB
BIN=target/x86_64-unknown-linux-musl/release/opsctrl-daemon

scripts/build-static.sh x86_64

VERSION=$("$BIN" --version | awk '{ print $2 }')
TAG=${1:-opsctrl-daemon:${VERSION}}
# Userinfo (a token in an https remote) must never end up in an image label.
SOURCE=$(git remote get-url origin 2>/dev/null | sed -E 's#://[^/@]*@#://#' || true)
BUILD_ARGS=()
[ -n "$SOURCE" ] && BUILD_ARGS+=(--build-arg "OCI_SOURCE=$SOURCE")

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ARCHIVE="$WORK/image.tar"

apt_install() {
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  ENGINE=docker
elif command -v podman >/dev/null 2>&1; then
  ENGINE=podman
elif command -v buildah >/dev/null 2>&1; then
  ENGINE=buildah
else
  apt_install podman || apt_install buildah || true
  if command -v podman >/dev/null 2>&1; then
    ENGINE=podman
  elif command -v buildah >/dev/null 2>&1; then
    ENGINE=buildah
  else
    echo "error: no docker engine answers and neither podman nor buildah could be installed" >&2
    exit 1
  fi
fi
echo "== building $TAG with $ENGINE"

case "$ENGINE" in
  docker)
    docker build -f Dockerfile.scratch "${BUILD_ARGS[@]}" -t "$TAG" .
    docker save -o "$ARCHIVE" "$TAG"
    ;;
  podman)
    PODMAN=(podman)
    if ! podman build -f Dockerfile.scratch "${BUILD_ARGS[@]}" -t "$TAG" .; then
      echo "podman build failed; retrying with --isolation chroot and the vfs storage driver" >&2
      PODMAN=(podman --storage-driver vfs)
      "${PODMAN[@]}" build --isolation chroot -f Dockerfile.scratch "${BUILD_ARGS[@]}" -t "$TAG" .
    fi
    "${PODMAN[@]}" save --format docker-archive -o "$ARCHIVE" "$TAG"
    ;;
  buildah)
    BUILDAH=(buildah)
    if ! buildah bud -f Dockerfile.scratch "${BUILD_ARGS[@]}" -t "$TAG" .; then
      echo "buildah bud failed; retrying with --isolation chroot and the vfs storage driver" >&2
      BUILDAH=(buildah --storage-driver vfs)
      "${BUILDAH[@]}" bud --isolation chroot -f Dockerfile.scratch "${BUILD_ARGS[@]}" -t "$TAG" .
    fi
    "${BUILDAH[@]}" push --disable-compression "$TAG" "docker-archive:$ARCHIVE:$TAG"
    ;;
esac

gzip -c "$ARCHIVE" >"$ARCHIVE.gz"
BYTES=$(stat -c %s "$ARCHIVE.gz")
MIB=$(awk -v b="$BYTES" 'BEGIN { printf "%.2f", b / 1048576 }')
BIN_BYTES=$(stat -c %s "$BIN")
echo "saved archive (uncompressed layers): $(stat -c %s "$ARCHIVE") bytes"
if [ "$BYTES" -gt "$LIMIT" ]; then
  echo "error: image $TAG is $BYTES bytes compressed ($MIB MiB), over the $LIMIT-byte (5 MiB) budget" >&2
  exit 1
fi
echo "image $TAG: $BYTES bytes compressed ($MIB MiB), binary $BIN_BYTES bytes"
