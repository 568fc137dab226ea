#!/usr/bin/env bash
# Checks the Kubernetes manifests (manifests/) the way a cluster would see them:
#
#   1. renders every supported combination with `kubectl kustomize`: the default
#      install, each overlay, each optional component on the default install, and
#      everything together on both the cluster-wide and the namespaced variant;
#   2. validates every rendered object against the Kubernetes OpenAPI schemas with
#      kubernetes-validate --strict (unknown fields are errors), for the oldest and
#      newest Kubernetes versions it bundles that k3s still ships (offline: the
#      schemas come with the package);
#   3. checks the project's own rules: namespaced objects carry a namespace, RBAC
#      never names Secrets or wildcards, the default ClusterRole only reads, the
#      ConfigMap holds no credentials, only the daemon's pod mounts a token;
#   4. runs checkov's Kubernetes policies on every render. checkov without a
#      Prisma Cloud account reports no severities, so every failed check counts:
#      fix it, or skip it on the object with a `checkov.io/skipN` annotation that
#      says why (see manifests/core/deployment.yaml).
#
#   5. with DRY_RUN_KUBECONFIG set (a test API server, never a cluster you care
#      about: the namespaces are created for real), `kubectl apply --dry-run=server`
#      of every render.
#
#   scripts/check-manifests.sh           exits non-zero on the first failing step
#
# The checks live in scripts/lib/manifest-checks.sh (shared with
# scripts/check-chart.sh; the rules are scripts/manifest-rules.py). Needs kubectl
# (for kustomize) and python3 with venv; the Python tools are installed, pinned,
# into a virtualenv under ${MANIFEST_TOOLS:-~/.cache/opsctrl-manifest-tools}.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/manifest-checks.sh
. scripts/lib/manifest-checks.sh

command -v kubectl >/dev/null || {
  echo "error: kubectl is needed (kubectl kustomize renders the manifests)" >&2
  exit 1
}
manifest_tools

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT="$WORK/rendered"
mkdir -p "$OUT"
ROOT=$(pwd)/manifests

# render NAME BASE [COMPONENT...]: kustomize BASE (relative to manifests/) with the
# components added, the way a user's own kustomization would.
render() {
  local name=$1 base=$2
  shift 2
  local dir="$WORK/k-$name" rel
  mkdir -p "$dir"
  rel=$(realpath --relative-to="$dir" "$ROOT")
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources:"
    echo "  - $rel/$base"
    if [ $# -gt 0 ]; then
      echo "components:"
      for c in "$@"; do echo "  - $rel/components/$c"; done
    fi
  } >"$dir/kustomization.yaml"
  kubectl kustomize "$dir" >"$OUT/$name.yaml"
  echo "rendered $name: $(grep -c '^kind:' "$OUT/$name.yaml") objects"
}

echo "== rendering"
# The shipped entry points, exactly as the README applies them.
kubectl kustomize manifests >"$OUT/default.yaml"
kubectl kustomize manifests/overlays/namespaced >"$OUT/namespaced.yaml"
kubectl kustomize manifests/overlays/ha >"$OUT/ha.yaml"
# And the components, alone and together, on both variants.
render no-logs . no-logs
render namespaced-no-logs overlays/namespaced no-logs
render k8s-events . k8s-events
render all . k8s-events ha
render namespaced-all overlays/namespaced k8s-events ha

manifest_validate "$OUT"
manifest_rules "$OUT"
manifest_checkov "$OUT"
if [ -n "${DRY_RUN_KUBECONFIG:-}" ]; then
  manifest_dry_run "$DRY_RUN_KUBECONFIG" "$OUT"
fi
echo "manifests OK"
