#!/usr/bin/env bash
# Every copy of the release's version and image agrees with Cargo.toml
# (scripts/release-info.sh): the kustomize images entry, the Helm chart's
# version, appVersion and image.repository, and manifests/install.yaml. Each
# disagreement is listed with the file to change. The release pipeline also
# refuses a tag that is not v<Cargo.toml version> (scripts/check-versions.sh vX.Y.Z).
#
#   scripts/check-versions.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/manifest-checks.sh
. scripts/lib/manifest-checks.sh
manifest_tools >/dev/null
eval "$(scripts/release-info.sh)"
VERSION=$VERSION IMAGE=$IMAGE IMAGE_REF=$IMAGE_REF TAG=${1:-} manifest_python - <<'PY'
import os, sys, yaml
version, image, ref, tag = (os.environ[k] for k in ("VERSION", "IMAGE", "IMAGE_REF", "TAG"))
problems = []
def want(where, what, got, expected):
    if got != expected:
        problems.append(f"{where}: {what} is {got!r}, Cargo.toml says {expected!r}")
k = yaml.safe_load(open("manifests/core/kustomization.yaml"))
entry = [i for i in k["images"] if i["name"] == "opsctrl-daemon"]
want("manifests/core/kustomization.yaml", "images[opsctrl-daemon].newName", entry[0].get("newName") if entry else None, image)
want("manifests/core/kustomization.yaml", "images[opsctrl-daemon].newTag", entry[0].get("newTag") if entry else None, version)
chart = yaml.safe_load(open("manifests/helm/opsctrl-daemon/Chart.yaml"))
want("manifests/helm/opsctrl-daemon/Chart.yaml", "version", str(chart["version"]), version)
want("manifests/helm/opsctrl-daemon/Chart.yaml", "appVersion", str(chart["appVersion"]), version)
values = yaml.safe_load(open("manifests/helm/opsctrl-daemon/values.yaml"))
want("manifests/helm/opsctrl-daemon/values.yaml", "image.repository", values["image"]["repository"], image)
deps = [d for d in yaml.safe_load_all(open("manifests/install.yaml")) if d and d["kind"] == "Deployment"]
want("manifests/install.yaml", "the Deployment's image", deps[0]["spec"]["template"]["spec"]["containers"][0]["image"] if deps else None, ref)
if tag:
    want("the git tag", "name", tag, f"v{version}")
for p in problems:
    print("MISMATCH", p)
if problems:
    sys.exit(1)
print(f"version {version} and image {ref} agree everywhere")
PY
