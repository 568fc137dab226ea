#!/usr/bin/env bash
# The release's names, from Cargo.toml alone (package.version, package.repository,
# package.metadata.opsctrl.image), as shell assignments:
#
#   scripts/release-info.sh            VERSION=0.1.0 IMAGE=ghcr.io/... IMAGE_REF=...:0.1.0 SOURCE=https://...
#   eval "$(scripts/release-info.sh)"  in the other scripts
#   scripts/release-info.sh IMAGE_REF  just that value
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - "$@" <<'PY'
import shlex, sys, tomllib
pkg = tomllib.load(open("Cargo.toml", "rb"))["package"]
info = {
    "VERSION": pkg["version"],
    "IMAGE": pkg["metadata"]["opsctrl"]["image"],
    "SOURCE": pkg["repository"],
}
info["IMAGE_REF"] = f"{info['IMAGE']}:{info['VERSION']}"
info["RELEASE_URL"] = f"{info['SOURCE']}/releases/download/v{info['VERSION']}"
if len(sys.argv) > 1:
    print(info[sys.argv[1]])
else:
    for k, v in info.items():
        print(f"{k}={shlex.quote(v)}")
PY
