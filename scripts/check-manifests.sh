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
#   scripts/check-manifests.sh           exits non-zero on the first failing step
#
# Needs kubectl (for kustomize) and python3 with venv; the Python tools are installed,
# pinned, into a virtualenv under ${MANIFEST_TOOLS:-~/.cache/opsctrl-manifest-tools}.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSIONS=(1.30.0 1.37.0)
TOOLS=${MANIFEST_TOOLS:-${HOME:-/root}/.cache/opsctrl-manifest-tools}
PINS=(kubernetes-validate==1.37.0 checkov==3.3.30)

command -v kubectl >/dev/null || {
  echo "error: kubectl is needed (kubectl kustomize renders the manifests)" >&2
  exit 1
}
if [ ! -x "$TOOLS/bin/checkov" ] || [ ! -x "$TOOLS/bin/kubernetes-validate" ] ||
  ! "$TOOLS/bin/pip" freeze 2>/dev/null | grep -qx "${PINS[1]}"; then
  echo "== installing ${PINS[*]} into $TOOLS"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi

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
render logs . logs
render k8s-events . k8s-events
render all . logs k8s-events ha
render namespaced-all overlays/namespaced logs k8s-events ha

echo "== schema validation (kubernetes-validate --strict)"
for v in "${KUBE_VERSIONS[@]}"; do
  "$TOOLS/bin/kubernetes-validate" --strict --quiet -k "$v" "$OUT"/*.yaml
  echo "all objects valid for Kubernetes $v"
done

echo "== project rules"
"$TOOLS/bin/python" - "$OUT" <<'PY'
import glob, os, sys
import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
READ = {"get", "list", "watch"}
CREDENTIAL_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "WEBHOOK_URL", "AUTH_HEADER")
problems = []

for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.yaml"))):
    name = os.path.basename(path)[:-5]
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    def bad(obj, why):
        problems.append(f"{name}: {obj['kind']}/{obj['metadata'].get('name')}: {why}")
    for d in docs:
        kind, meta = d["kind"], d["metadata"]
        if kind not in CLUSTER_SCOPED and not meta.get("namespace"):
            bad(d, "namespaced object without a namespace (it would land in the kubectl context's)")
        if kind in ("Role", "ClusterRole"):
            for r in d.get("rules", []):
                for field in ("apiGroups", "resources", "verbs"):
                    if "*" in r.get(field, []):
                        bad(d, f"wildcard in {field}")
                if any(res.split("/")[0] == "secrets" for res in r.get("resources", [])):
                    bad(d, "grants access to Secrets")
        if kind == "ClusterRole" and name == "default":
            for r in d["rules"]:
                if not set(r["verbs"]) <= READ:
                    bad(d, f"the default install must only read, found {r['verbs']} on {r['resources']}")
        if kind == "ConfigMap":
            for k in d.get("data", {}):
                if any(w in k for w in CREDENTIAL_WORDS):
                    bad(d, f"credential {k} in a ConfigMap (it belongs in the Secret)")
        if kind == "ServiceAccount" and d.get("automountServiceAccountToken") is not False:
            bad(d, "the ServiceAccount must not automount its token")
        if kind == "Deployment":
            spec = d["spec"]["template"]["spec"]
            if spec.get("automountServiceAccountToken") is not True:
                bad(d, "the daemon's pod must opt in to the token")
            for c in spec["containers"]:
                sc = c.get("securityContext", {})
                if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                        and sc.get("capabilities", {}).get("drop") == ["ALL"]):
                    bad(d, f"container {c['name']} is not hardened")
    kinds = [d["kind"] for d in docs]
    if name.startswith("namespaced") and ("ClusterRole" in kinds or "ClusterRoleBinding" in kinds):
        problems.append(f"{name}: the namespaced variant must not create cluster-wide roles")
    if "all" in name:
        rules = [r for d in docs if d["kind"] in ("Role", "ClusterRole") and d["metadata"]["name"] == "opsctrl-daemon"
                 for r in d["rules"]]
        for want in (("pods/log", "get"), ("events", "create")):
            if not any(want[0] in r["resources"] and want[1] in r["verbs"] for r in rules):
                problems.append(f"{name}: the components did not add {want[1]} on {want[0]}")
for p in problems:
    print("FAIL", p)
if problems:
    sys.exit(1)
print("all project rules hold")
PY

echo "== security lint (checkov, kubernetes policies)"
# --skip-download: no network (no severities, no guideline links); --quiet: failures only.
"$TOOLS/bin/checkov" -d "$OUT" --framework kubernetes --compact --quiet --skip-download
echo "manifests OK"
