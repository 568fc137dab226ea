# Shared by scripts/check-manifests.sh (kustomize) and scripts/check-chart.sh
# (Helm): the pinned Python tools and the checks every rendered manifest must
# pass. Source it, call manifest_tools, then the checks on a directory of
# rendered *.yaml files (one render per file, named as scripts/manifest-rules.py
# expects).
#
# The tools are installed, pinned, into a virtualenv under
# ${MANIFEST_TOOLS:-~/.cache/opsctrl-manifest-tools}.

MANIFEST_KUBE_VERSIONS=(1.30.0 1.37.0)
MANIFEST_TOOLS=${MANIFEST_TOOLS:-${HOME:-/root}/.cache/opsctrl-manifest-tools}
MANIFEST_PINS=(kubernetes-validate==1.37.0 checkov==3.3.30)
MANIFEST_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# manifest_tools: install the pinned tools unless they are there already.
manifest_tools() {
  local t=$MANIFEST_TOOLS
  if [ ! -x "$t/bin/checkov" ] || [ ! -x "$t/bin/kubernetes-validate" ] ||
    ! "$t/bin/pip" freeze 2>/dev/null | grep -qx "${MANIFEST_PINS[1]}"; then
    echo "== installing ${MANIFEST_PINS[*]} into $t"
    python3 -m venv "$t"
    "$t/bin/pip" install --quiet --disable-pip-version-check "${MANIFEST_PINS[@]}"
  fi
}

# manifest_python ARGS...: the virtualenv's python (it has PyYAML).
manifest_python() {
  "$MANIFEST_TOOLS/bin/python" "$@"
}

# manifest_validate DIR: every object against the Kubernetes schemas, strictly
# (unknown fields are errors), for the oldest and newest versions that k3s
# still ships and kubernetes-validate bundles (offline).
manifest_validate() {
  local v
  echo "== schema validation (kubernetes-validate --strict)"
  for v in "${MANIFEST_KUBE_VERSIONS[@]}"; do
    "$MANIFEST_TOOLS/bin/kubernetes-validate" --strict --quiet -k "$v" "$1"/*.yaml
    echo "all objects valid for Kubernetes $v"
  done
}

# manifest_rules DIR: the project's own rules (scripts/manifest-rules.py).
manifest_rules() {
  echo "== project rules"
  manifest_python "$MANIFEST_SCRIPTS/manifest-rules.py" "$1"
}

# manifest_checkov DIR: checkov's Kubernetes policies. Without a Prisma Cloud
# account checkov reports no severities, so every failed check counts: fix it,
# or skip it on the object with a `checkov.io/skipN` annotation that says why.
manifest_checkov() {
  echo "== security lint (checkov, kubernetes policies)"
  # --skip-download: no network (no severities, no guideline links); --quiet: failures only.
  "$MANIFEST_TOOLS/bin/checkov" -d "$1" --framework kubernetes --compact --quiet --skip-download
}

# manifest_dry_run KUBECONFIG DIR: `kubectl apply --dry-run=server` of every
# render against a real API server, which runs admission, defaulting and
# validation as an install would, without persisting anything. The namespaces
# the renders put objects in are created first (for real: dry-run objects
# cannot live in a dry-run namespace), so point this at a test server only.
manifest_dry_run() {
  local kc=$1 dir=$2 f ns
  echo "== server-side dry run against $(KUBECONFIG=$kc kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
  for ns in $(manifest_python - "$dir" <<'PY'
import glob, os, sys, yaml
found = set()
for p in glob.glob(os.path.join(sys.argv[1], "*.yaml")):
    for d in yaml.safe_load_all(open(p)):
        if d and d["metadata"].get("namespace"):
            found.add(d["metadata"]["namespace"])
print(" ".join(sorted(found)))
PY
  ); do
    KUBECONFIG=$kc kubectl create namespace "$ns" --dry-run=client -o yaml | KUBECONFIG=$kc kubectl apply -f - >/dev/null
  done
  for f in "$dir"/*.yaml; do
    KUBECONFIG=$kc kubectl apply --dry-run=server -f "$f" >/dev/null
    echo "accepted by the API server (dry run): $(basename "$f" .yaml)"
  done
}
