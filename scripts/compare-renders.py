#!/usr/bin/env python3
"""The Helm chart's default render must be the kustomize default install.

    compare-renders.py KUSTOMIZE.yaml HELM.yaml

Objects are matched by kind, namespace and name and compared field by field
after removing what only Helm adds: its labels (helm.sh/chart and the
app.kubernetes.io instance, managed-by and version labels, wherever labels or
selectors appear) and the checksum/* pod annotations that restart pods on a
changed setting. The one object allowed on one side only is the Namespace:
`helm install --create-namespace` makes it (README, Install). Exit 1 with
every difference listed.
"""
import sys

import yaml

HELM_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
}
ONLY_IN_KUSTOMIZE = {("Namespace", None, "opsctrl")}


def normalize(value):
    if isinstance(value, dict):
        return {
            k: normalize(v)
            for k, v in value.items()
            if k not in HELM_LABELS and not (isinstance(k, str) and k.startswith("checksum/"))
        }
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def load(path):
    objects = {}
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if not doc:
                continue
            meta = doc["metadata"]
            key = (doc["kind"], meta.get("namespace"), meta["name"])
            if key in objects:
                sys.exit(f"{path}: {key} appears twice")
            objects[key] = normalize(doc)
    return objects


def diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            p = f"{path}.{k}"
            if k not in a:
                yield f"{p}: only in the chart: {b[k]!r}"
            elif k not in b:
                yield f"{p}: only in kustomize: {a[k]!r}"
            else:
                yield from diff(a[k], b[k], p)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from diff(x, y, f"{path}[{i}]")
    elif a != b:
        yield f"{path}: kustomize {a!r}, chart {b!r}"


def name(key):
    kind, ns, n = key
    return f"{kind}/{ns}/{n}" if ns else f"{kind}/{n}"


def main():
    kust, helm = load(sys.argv[1]), load(sys.argv[2])
    problems = []
    for key in sorted(set(kust) - set(helm), key=str):
        if key not in ONLY_IN_KUSTOMIZE:
            problems.append(f"{name(key)}: only in kustomize")
    for key in sorted(set(helm) - set(kust), key=str):
        problems.append(f"{name(key)}: only in the chart")
    for key in sorted(set(kust) & set(helm), key=str):
        problems += [f"{name(key)}{d}" for d in diff(kust[key], helm[key])]
    for p in problems:
        print("DIFF", p)
    if problems:
        sys.exit(1)
    print(f"the chart's default render is the kustomize default ({len(set(kust) & set(helm))} objects; "
          f"Helm's labels aside, Namespace left to --create-namespace)")


if __name__ == "__main__":
    main()
