#!/usr/bin/env bash
# Builds the fully static release binaries of opsctrl-daemon, the ones the
# FROM scratch image (Dockerfile.scratch) and the GitHub release ship: a scratch
# image has no libc and no dynamic loader, so a binary must have no NEEDED
# libraries and no INTERP header.
#
#   scripts/build-static.sh [x86_64|aarch64|armv7|all]...     default: x86_64
#
#   arch      Rust target                      C compiler and linker (Debian)
#   x86_64    x86_64-unknown-linux-musl        musl-gcc (musl-tools)
#   aarch64   aarch64-unknown-linux-musl       aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu)
#   armv7     armv7-unknown-linux-musleabihf   arm-linux-gnueabihf-gcc (gcc-arm-linux-gnueabihf),
#                                              or zig (PyPI) when std is built from source
#
# It installs what it lacks (run as root): the rustup target, the cross
# compiler, qemu-user-static, `file` and binutils. Each binary must then pass
# three checks or the script FAILS for that arch:
#   1. static: `file` says "statically linked"/"static-pie linked" and readelf
#      shows neither a NEEDED entry nor an INTERP header;
#   2. it runs: `--version` prints this version (ARM under qemu-aarch64-static /
#      qemu-arm-static);
#   3. it works: `scan -f tests/fixtures/scan-sample.json` exits 1 (the sample
#      has failing pods) and, for the ARM binaries, prints exactly what the
#      x86_64 one prints.
# Then its size is printed and it is copied to target/dist/opsctrl-daemon-<arch>
# (the release assets).
#
# Cross-building (aarch64, armv7) from x86_64 Debian: Debian has no ARM musl-gcc,
# so ring's C/asm is compiled with Debian's glibc cross gcc, and the same gcc is
# the linker. That works because rustc's musl targets link "self-contained":
# rustc passes its own musl crt1.o/crti.o and libc.a from the rust-std
# component, so the glibc cross toolchain only assembles and links, never
# supplies a libc. RUSTFLAGS="-C target-feature=+crt-static" is the musl default
# already, set explicitly so an outer RUSTFLAGS cannot turn it off.
#
# armv7 when the rustup mirror has no prebuilt std for armv7-unknown-linux-musleabihf
# (it answers 404 on some mirrors): std is built from the rust-src component
# (`-Z build-std`, allowed on stable by RUSTC_BOOTSTRAP=1 for this one command)
# with zig as the C compiler and linker, through cargo-zigbuild: zig ships
# musl's crt objects and libc.a for arm-linux-musleabihf, which the missing
# rust-std component would have supplied (hence link-self-contained=no). Both
# come pinned from PyPI into a virtualenv under
# ${BUILD_TOOLS:-~/.cache/opsctrl-build-tools}. The result is the same target,
# fully static, and passes the same three checks. OPSCTRL_ARMV7_PREBUILT_ONLY=1
# makes a missing prebuilt std a failure instead.
ZIG_PINS=(ziglang==0.17.1 cargo-zigbuild==0.24.1)
set -euo pipefail
cd "$(dirname "$0")/.."

ARCHES=()
for a in "${@:-x86_64}"; do
  case "$a" in
    x86_64 | aarch64 | armv7) ARCHES+=("$a") ;;
    all) ARCHES+=(x86_64 aarch64 armv7) ;;
    *)
      echo "usage: $0 [x86_64|aarch64|armv7|all]..." >&2
      exit 2
      ;;
  esac
done
VERSION=$(scripts/release-info.sh VERSION)
SAMPLE=tests/fixtures/scan-sample.json
DIST=target/dist
mkdir -p "$DIST"
rm -f "$DIST"/scan-*.txt

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

# have_rust_target TRIPLE: installed, or added now (rustup's error in one line).
have_rust_target() {
  local err
  rustup target list --installed | grep -qx "$1" && return 0
  err=$(RUST_BACKTRACE=0 rustup target add "$1" 2>&1) && return 0
  echo "rustup target add $1: $(echo "$err" | grep -m1 -E '^error|status code' || echo "$err" | tail -1)" >&2
  return 1
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

# prove ARCH BIN [RUNNER]: --version and a scan of the sample, under RUNNER (qemu).
prove() {
  local arch=$1 bin=$2 runner=${3:-} out rc=0
  out=$($runner "$bin" --version 2>&1) || {
    echo "$arch: FAILED to run${runner:+ under $runner}: $out" >&2
    return 1
  }
  [ "$out" = "opsctrl-daemon $VERSION" ] || {
    echo "$arch: --version printed '$out', not 'opsctrl-daemon $VERSION'" >&2
    return 1
  }
  echo "${runner:-native}: $out"
  $runner "$bin" scan -f "$SAMPLE" >"$DIST/scan-$arch.txt" 2>&1 || rc=$?
  if [ "$rc" != 1 ]; then
    echo "$arch: scan -f $SAMPLE exited $rc, not 1 (the sample has failing pods):" >&2
    cat "$DIST/scan-$arch.txt" >&2
    return 1
  fi
  if [ "$arch" != x86_64 ] && [ -f "$DIST/scan-x86_64.txt" ]; then
    cmp -s "$DIST/scan-x86_64.txt" "$DIST/scan-$arch.txt" || {
      echo "$arch: scan output differs from x86_64's:" >&2
      diff "$DIST/scan-x86_64.txt" "$DIST/scan-$arch.txt" >&2 || true
      return 1
    }
    echo "scan -f $SAMPLE: exit 1, $(grep -c '^shop ' "$DIST/scan-$arch.txt") incidents, the same output as x86_64"
  else
    echo "scan -f $SAMPLE: exit 1, $(grep -c '^shop ' "$DIST/scan-$arch.txt") incidents"
  fi
}

# build ARCH TRIPLE [CC]: cargo build for TRIPLE, cross-compiling with CC.
build() {
  local arch=$1 triple=$2 cc=${3:-} upper
  echo "== building $arch ($triple)"
  if [ -n "$cc" ]; then
    upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
    env "CC_${triple//-/_}=$cc" "AR_${triple//-/_}=${cc%gcc}ar" \
      "CARGO_TARGET_${upper}_LINKER=$cc" \
      RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
      cargo build --release --locked --target "$triple" --bin opsctrl-daemon
  else
    # musl-gcc is cc's default for this target and crt-static the target's
    # default, so the plain command builds the same artefact (and shares its cache).
    cargo build --release --locked --target "$triple" --bin opsctrl-daemon
  fi
}

report() {
  local arch=$1 bin=$2 triple=$3 size
  size=$(stat -c %s "$bin")
  cp "$bin" "$DIST/opsctrl-daemon-$arch"
  echo "$triple" >"$DIST/opsctrl-daemon-$arch.target"
  echo "binary $arch: $bin ($triple, $size bytes, $(awk -v b="$size" 'BEGIN { printf "%.2f", b / 1048576 }') MiB) -> $DIST/opsctrl-daemon-$arch"
}

# Explicit returns below: these run under `if !`, where set -e does not apply.
build_x86_64() {
  local triple=x86_64-unknown-linux-musl
  local bin="target/$triple/release/opsctrl-daemon"
  have_rust_target "$triple" || { echo "x86_64: FAILED at 'rustup target add $triple'" >&2; return 1; }
  need_cmd musl-gcc musl-tools || return 1
  build x86_64 "$triple" || { echo "x86_64: FAILED at 'cargo build --target $triple'" >&2; return 1; }
  check_static "$bin" || return 1
  prove x86_64 "$bin" || return 1
  report x86_64 "$bin" "$triple"
}

build_aarch64() {
  local triple=aarch64-unknown-linux-musl
  local bin="target/$triple/release/opsctrl-daemon"
  have_rust_target "$triple" || { echo "aarch64: FAILED at 'rustup target add $triple'" >&2; return 1; }
  need_cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu ||
    { echo "aarch64: FAILED installing gcc-aarch64-linux-gnu (cross C compiler for ring)" >&2; return 1; }
  build aarch64 "$triple" aarch64-linux-gnu-gcc ||
    { echo "aarch64: FAILED at 'cargo build --target $triple' (compiler/linker error above)" >&2; return 1; }
  check_static "$bin" || { echo "aarch64: FAILED the static-linking check" >&2; return 1; }
  need_cmd qemu-aarch64-static qemu-user-static ||
    { echo "aarch64: built, but FAILED installing qemu-user-static to run it" >&2; return 1; }
  prove aarch64 "$bin" qemu-aarch64-static || return 1
  report aarch64 "$bin" "$triple"
}

build_armv7() {
  local triple=armv7-unknown-linux-musleabihf
  local bin="target/$triple/release/opsctrl-daemon"
  need_cmd qemu-arm-static qemu-user-static ||
    { echo "armv7: FAILED installing qemu-user-static to run it" >&2; return 1; }
  if have_rust_target "$triple"; then
    need_cmd arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf ||
      { echo "armv7: FAILED installing gcc-arm-linux-gnueabihf (cross C compiler for ring)" >&2; return 1; }
    build armv7 "$triple" arm-linux-gnueabihf-gcc ||
      { echo "armv7: FAILED at 'cargo build --target $triple' (compiler/linker error above)" >&2; return 1; }
  else
    if [ "${OPSCTRL_ARMV7_PREBUILT_ONLY:-0}" = 1 ]; then
      echo "armv7: BLOCKED: the rustup mirror has no prebuilt std for $triple (see the rustup line above)" >&2
      return 1
    fi
    echo "armv7: no prebuilt std for $triple on this rustup mirror (see the rustup line above):" \
      "building std from rust-src, with zig (cargo-zigbuild) as C compiler and linker"
    build_armv7_from_source "$triple" || return 1
  fi
  check_static "$bin" || { echo "armv7: FAILED the static-linking check" >&2; return 1; }
  prove armv7 "$bin" qemu-arm-static || return 1
  report armv7 "$bin" "$triple"
}

# build_armv7_from_source TRIPLE: std from rust-src, zig for C and linking.
build_armv7_from_source() {
  local triple=$1 tools=${BUILD_TOOLS:-${HOME:-/root}/.cache/opsctrl-build-tools}
  rustup component add rust-src ||
    { echo "armv7: FAILED at 'rustup component add rust-src'" >&2; return 1; }
  if [ ! -x "$tools/bin/cargo-zigbuild" ]; then
    python3 -m venv "$tools" &&
      "$tools/bin/pip" install --quiet --disable-pip-version-check "${ZIG_PINS[@]}" ||
      { echo "armv7: FAILED installing ${ZIG_PINS[*]} from PyPI" >&2; return 1; }
  fi
  echo "== building armv7 ($triple, std from source: $("$tools/bin/pip" freeze | grep -iE '^(ziglang|cargo-zigbuild)=' | tr '\n' ' '))"
  PATH="$tools/bin:$PATH" RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="${RUSTFLAGS:-} -C link-self-contained=no -C target-feature=+crt-static" \
    cargo zigbuild --release --locked --target "$triple" --bin opsctrl-daemon \
    -Z build-std=std,panic_abort ||
    { echo "armv7: FAILED at 'cargo zigbuild -Z build-std --target $triple' (error above)" >&2; return 1; }
}

need_cmd file file
need_cmd readelf binutils

failed=()
for a in "${ARCHES[@]}"; do
  if ! "build_$a"; then
    failed+=("$a")
  fi
done
echo "== sizes"
for a in "${ARCHES[@]}"; do
  [ -f "$DIST/opsctrl-daemon-$a" ] && printf '%-8s %-32s %9d bytes\n' "$a" "$(cat "$DIST/opsctrl-daemon-$a.target")" "$(stat -c %s "$DIST/opsctrl-daemon-$a")"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "error: static build failed for: ${failed[*]}" >&2
  exit 1
fi
