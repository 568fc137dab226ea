#!/usr/bin/env bash
# The project's checks, as the README shows them: formatting, lints, then every
# unit and integration test (the integration tests drive the real binary
# against a fake Kubernetes API server on loopback; no cluster needed).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test
