#!/usr/bin/env python3
"""The project's own rules for rendered manifests (every *.yaml in DIR).

    manifest-rules.py DIR

Each file is one render, named for what it holds: `default` (the default
install), `namespaced*` (no cluster-wide roles), `*all*` (every option on).
Renders of the Helm chart carry a `chart-` prefix and are held to the same
rules. Exit 1 with every broken rule listed.
"""
import glob, os, sys
import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
READ = {"get", "list", "watch"}
CREDENTIAL_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "WEBHOOK_URL", "AUTH_HEADER")
problems = []

for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.yaml"))):
    label = os.path.basename(path)[:-5]
    # chart-default is held to what default is, and so on.
    name = label.removeprefix("chart-")
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    def bad(obj, why):
        problems.append(f"{label}: {obj['kind']}/{obj['metadata'].get('name')}: {why}")
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
    # Logs are on by default (the crashed run's last lines name the cause):
    # every render grants get on pods/log and sets INCLUDE_LOGS=true, except
    # the no-logs ones, which do neither.
    pod_rules = [r for d in docs if d["kind"] in ("Role", "ClusterRole") and d["metadata"]["name"] == "opsctrl-daemon"
                 for r in d["rules"]]
    grants_logs = any("pods/log" in r["resources"] and "get" in r["verbs"] for r in pod_rules)
    include = [d.get("data", {}).get("INCLUDE_LOGS") for d in docs if d["kind"] == "ConfigMap"
               and d["metadata"]["name"] == "opsctrl-daemon"]
    want_logs = "no-logs" not in name
    if pod_rules and grants_logs != want_logs:
        problems.append(f"{label}: get on pods/log should be {'granted' if want_logs else 'absent'}")
    if include and include != ["true" if want_logs else "false"]:
        problems.append(f"{label}: INCLUDE_LOGS is {include}, expected {'true' if want_logs else 'false'}")
    kinds = [d["kind"] for d in docs]
    if name.startswith("namespaced") and ("ClusterRole" in kinds or "ClusterRoleBinding" in kinds):
        problems.append(f"{label}: the namespaced variant must not create cluster-wide roles")
    if "all" in name:
        rules = [r for d in docs if d["kind"] in ("Role", "ClusterRole") and d["metadata"]["name"] == "opsctrl-daemon"
                 for r in d["rules"]]
        for want in (("pods/log", "get"), ("events", "create")):
            if not any(want[0] in r["resources"] and want[1] in r["verbs"] for r in rules):
                problems.append(f"{label}: the components did not add {want[1]} on {want[0]}")
for p in problems:
    print("FAIL", p)
if problems:
    sys.exit(1)
print("all project rules hold")
