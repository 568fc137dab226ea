#!/usr/bin/env bash
# Everything a GitHub release attaches, into target/release-assets/ (run after
# scripts/build-static.sh all):
#
#   opsctrl-daemon-<version>-linux-<arch>     the static binaries (x86_64, aarch64, armv7)
#   kubectl-opsctrl-<version>-linux-<arch>.tar.gz
#                                             the same binary as `kubectl-opsctrl` plus
#                                             LICENSE, for krew
#   opsctrl.yaml                              the krew plugin manifest (its URLs and
#                                             sha256s point at the archives above)
#   install.yaml                              the one-file install (scripts/render-install.sh)
#   opsctrl-daemon-<version>.tgz              the Helm chart (helm package)
#   opsctrl-daemon-<version>.cdx.json         a CycloneDX SBOM of the crates in the binary
#                                             (cargo-cyclonedx, installed with cargo if missing)
#   SHA256SUMS                                of every file above
#
#   scripts/release-assets.sh [ARCH...]      default: x86_64 aarch64 armv7
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHES=("$@")
[ $# -eq 0 ] && ARCHES=(x86_64 aarch64 armv7)
eval "$(scripts/release-info.sh)"
OUT=target/release-assets
CYCLONEDX_VERSION=0.5.9
rm -rf "$OUT"
mkdir -p "$OUT"

krew_platform() {
  case "$1" in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    armv7) echo arm ;;
  esac
}

platforms=""
for a in "${ARCHES[@]}"; do
  bin=target/dist/opsctrl-daemon-$a
  [ -x "$bin" ] || { echo "error: $bin missing: run scripts/build-static.sh $a first" >&2; exit 1; }
  cp "$bin" "$OUT/opsctrl-daemon-$VERSION-linux-$a"
  stage=$(mktemp -d)
  cp "$bin" "$stage/kubectl-opsctrl"
  cp LICENSE "$stage/LICENSE"
  archive=kubectl-opsctrl-$VERSION-linux-$a.tar.gz
  # Reproducible: fixed owner, mode order and mtime.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$stage" -cf - kubectl-opsctrl LICENSE |
    gzip -n >"$OUT/$archive"
  rm -rf "$stage"
  sha=$(sha256sum "$OUT/$archive" | cut -d' ' -f1)
  platforms+="  - selector:
      matchLabels:
        os: linux
        arch: $(krew_platform "$a")
    uri: $RELEASE_URL/$archive
    sha256: $sha
    bin: kubectl-opsctrl
    files:
      - from: kubectl-opsctrl
        to: .
      - from: LICENSE
        to: .
"
done

cat >"$OUT/opsctrl.yaml" <<EOK
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: opsctrl
spec:
  version: v$VERSION
  homepage: $SOURCE
  shortDescription: Find failing pods and say why, with the fix
  description: |
    kubectl opsctrl scan lists every failing workload of the current context
    with its cause and the kubectl commands that fix it; kubectl opsctrl check
    tells whether your identity may watch the cluster. The same static binary
    as the opsctrl-daemon pod-failure daemon.
  platforms:
$platforms
EOK

scripts/render-install.sh >/dev/null
cp manifests/install.yaml "$OUT/install.yaml"

HELM=$(scripts/install-helm.sh)
"$HELM" package manifests/helm/opsctrl-daemon --destination "$OUT" >/dev/null

if ! cargo cyclonedx --version 2>/dev/null | grep -q "$CYCLONEDX_VERSION"; then
  cargo install --locked cargo-cyclonedx --version "$CYCLONEDX_VERSION"
fi
# Only what ships: normal dependencies of the binary, for the release's target.
cargo cyclonedx --format json --spec-version 1.5 --no-build-deps --target x86_64-unknown-linux-musl \
  --override-filename "opsctrl-daemon-$VERSION.cdx" >/dev/null
mv "opsctrl-daemon-$VERSION.cdx.json" "$OUT/"

(cd "$OUT" && sha256sum -- * >SHA256SUMS)
echo "== $OUT"
(cd "$OUT" && ls -l --time-style=+ | awk 'NR > 1 { printf "%10d  %s\n", $5, $NF }')
