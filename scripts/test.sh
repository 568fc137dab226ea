#!/usr/bin/env bash
# The project's checks, as the README shows them: formatting, lints, then every
# unit and integration test (the integration tests drive the real binary
# against a fake Kubernetes API server on loopback, and against a real kube-apiserver
# the tests start themselves when KUBEBUILDER_ASSETS names one: README, Tests).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test
