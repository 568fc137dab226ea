#!/usr/bin/env bash
# Builds the fully static (musl) release binary of opsctrl-daemon, the one the
# FROM scratch image (Dockerfile.scratch) ships: a scratch image has no libc and
# no dynamic loader, so the binary must have no NEEDED libraries and no INTERP.
#
#   scripts/build-static.sh [x86_64|aarch64|all]     default: x86_64
#
# It installs what it lacks (run as root): the rustup target, musl-tools
# (musl-gcc, for C code such as ring's) and `file`. After each build it FAILS
# unless `file` says "statically linked"/"static-pie linked" and `readelf`
# shows neither a NEEDED entry nor an INTERP header, then prints the path and
# size of the binary.
#
# aarch64 (aarch64-unknown-linux-musl), cross-built from x86_64 Debian:
#   - Debian has no aarch64 musl-gcc, so ring's C/asm is compiled with
#     gcc-aarch64-linux-gnu (CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc)
#     and the same gcc is the linker
#     (CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc).
#     That works because rustc's musl targets link "self-contained": rustc
#     passes its own musl crt1.o/crti.o and libc.a from the rust-std component,
#     so the glibc cross toolchain only assembles/links, never supplies a libc.
#   - RUSTFLAGS="-C target-feature=+crt-static" is the musl default already,
#     set explicitly so an outer RUSTFLAGS cannot turn it off.
#   - The result is checked like x86_64, then run under qemu-user-static
#     (`qemu-aarch64-static <bin> --version`) to prove it actually executes.
#   - Tried on Debian 12 x86_64 (2026-11-25): builds, passes the static check
#     and prints its version under qemu-aarch64-static.
#   - Not needed, so not tried: if gcc linking ever breaks, the alternative is
#     rust-lld (`-C linker=rust-lld -C linker-flavor=ld.lld`), keeping the
#     aarch64-linux-gnu-gcc CC for ring's C code.
# If any aarch64 step fails, the script says which step and why and exits
# non-zero; with `all`, the x86_64 result is still built and reported.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=${1:-x86_64}
case "$ARCH" in
  x86_64 | aarch64) ARCHES=("$ARCH") ;;
  all) ARCHES=(x86_64 aarch64) ;;
  *)
    echo "usage: $0 [x86_64|aarch64|all]" >&2
    exit 2
    ;;
esac

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# need_cmd COMMAND DEBIAN_PACKAGE
need_cmd() {
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
  command -v "$1" >/dev/null 2>&1 || {
    echo "error: $1 still missing after installing $2" >&2
    return 1
  }
}

need_rust_target() {
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

# check_static BIN: fail unless BIN is a static (or static-pie) executable.
check_static() {
  local bin=$1 desc
  desc=$(file -b "$bin")
  echo "file: $desc"
  case "$desc" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *)
      echo "error: $bin is not statically linked (file: $desc)" >&2
      return 1
      ;;
  esac
  if readelf -d "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
    echo "error: $bin needs shared libraries:" >&2
    readelf -d "$bin" | grep '(NEEDED)' >&2
    return 1
  fi
  if readelf -lW "$bin" | grep -q 'INTERP'; then
    echo "error: $bin has a program interpreter:" >&2
    readelf -lW "$bin" | grep -A1 'INTERP' >&2
    return 1
  fi
  echo "static: no NEEDED entries, no INTERP header"
}

report() {
  local bin=$1 size
  size=$(stat -c %s "$bin")
  echo "binary: $bin ($size bytes, $(awk -v b="$size" 'BEGIN { printf "%.2f", b / 1048576 }') MiB)"
}

build_x86_64() {
  local triple=x86_64-unknown-linux-musl
  local bin="target/$triple/release/opsctrl-daemon"
  # Explicit returns: this runs under `if !`, where set -e does not apply.
  need_rust_target "$triple" || return 1
  need_cmd musl-gcc musl-tools || return 1
  echo "== building $triple"
  # musl-gcc is cc's default for this target and crt-static the target's
  # default, so the plain command the README gives builds the same artefact
  # (and shares its cache).
  cargo build --release --locked --target "$triple" --bin opsctrl-daemon || return 1
  check_static "$bin" || return 1
  "$bin" --version || return 1
  report "$bin"
}

# aarch64 failures name the step that failed; see the header for the approach.
build_aarch64() {
  local triple=aarch64-unknown-linux-musl
  local bin="target/$triple/release/opsctrl-daemon"
  need_rust_target "$triple" || { echo "aarch64: FAILED at 'rustup target add $triple'" >&2; return 1; }
  need_cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu ||
    { echo "aarch64: FAILED installing gcc-aarch64-linux-gnu (cross C compiler for ring)" >&2; return 1; }
  echo "== building $triple"
  if ! CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
    AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc \
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --target "$triple" --bin opsctrl-daemon; then
    echo "aarch64: FAILED at 'cargo build --target $triple' (compiler/linker error above)" >&2
    return 1
  fi
  check_static "$bin" || { echo "aarch64: FAILED the static-linking check" >&2; return 1; }
  need_cmd qemu-aarch64-static qemu-user-static ||
    { echo "aarch64: built, but FAILED installing qemu-user-static to run it" >&2; return 1; }
  local out
  if ! out=$(qemu-aarch64-static "$bin" --version 2>&1); then
    echo "aarch64: built, but FAILED to run under qemu-aarch64-static: $out" >&2
    return 1
  fi
  echo "qemu-aarch64-static: $out"
  report "$bin"
}

need_cmd file file
need_cmd readelf binutils

failed=()
for a in "${ARCHES[@]}"; do
  if ! "build_$a"; then
    failed+=("$a")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "error: static build failed for: ${failed[*]}" >&2
  exit 1
fi
