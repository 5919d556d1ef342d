#!/usr/bin/env bash
# Everything a fresh Debian/Ubuntu machine needs to build and test Doorstep. Idempotent: on a
# machine that already has it all, it only checks and prints what it found.
set -euo pipefail

# The Debian packages the build needs today. rusqlite bundles SQLite, and zstd-sys and ring
# compile C with `cc`, hence the compiler toolchain. Later issues add their packages to this
# list (e.g. libwebkit2gtk-4.1-dev, libdbus-1-dev, xvfb, xauth, webkit2gtk-driver, chromium)
# and their non-apt setup (e.g. the onnxruntime wheel) as its own clearly named step below.
APT_PACKAGES=(
    build-essential
    pkg-config
    ca-certificates
    curl
    git
    python3
    chromium
    # courier app (Tauri v2 on WebKitGTK): build, then run and drive it under Xvfb
    libssl-dev
    libwebkit2gtk-4.1-dev
    libdbus-1-dev
    xvfb
    xauth
    webkit2gtk-driver
    # rerouting model: a project venv holding onnxruntime (its libonnxruntime.so is the runtime)
    python3-venv
    # BLE: btleplug against a fake BlueZ on a private bus (courier-core tests/ble_bluez.rs);
    # `dbus` ships dbus-daemon; the fake runs on /usr/bin/python3, where these modules install
    dbus
    python3-dbus
    python3-gi
    # PostgreSQL backend tests: crates/test-postgres runs initdb/pg_ctl from
    # /usr/lib/postgresql/*/bin to start a private throw-away cluster on a free port. The package
    # may also create and start a system cluster on 5432; the tests never use it.
    postgresql
)

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, through sudo when it exists.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# The workspace's declared minimum Rust, so this check cannot drift from Cargo.toml.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
min_rust="$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$repo_root/Cargo.toml" | head -n1)"
min_rust="${min_rust:-1.85}"

# --- apt packages --------------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    log "apt: all ${#APT_PACKAGES[@]} packages already installed, skipped apt"
else
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script supports Debian/Ubuntu"
    log "apt: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# --- Rust toolchain ------------------------------------------------------------------------
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
# rustup installs into ~/.cargo/bin, which a fresh shell may not have on PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$cargo_bin/cargo" ]; then
    export PATH="$cargo_bin:$PATH"
fi

install_rustup() {
    log "rust: installing the stable toolchain with rustup's official installer"
    if ! curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --default-toolchain stable --component rustfmt,clippy; then
        die "rustup installation failed; install Rust >= $min_rust from https://rustup.rs and rerun"
    fi
    export PATH="$cargo_bin:$PATH"
}

# "cargo 1.95.0 (f2d3ce0bd 2026-03-21)" -> "1.95"
cargo_version() { cargo --version 2>/dev/null | sed -n 's/^cargo \([0-9]*\.[0-9]*\).*/\1/p'; }
version_ok() { [ "$(printf '%s\n%s\n' "$min_rust" "$1" | sort -V | head -n1)" = "$min_rust" ]; }

if ! command -v cargo >/dev/null 2>&1; then
    install_rustup
fi
have="$(cargo_version)"
if ! version_ok "${have:-0}"; then
    if command -v rustup >/dev/null 2>&1; then
        log "rust: cargo $have is older than $min_rust, updating the stable toolchain"
        rustup toolchain install stable --profile minimal --component rustfmt,clippy
        rustup default stable
    else
        log "rust: cargo $have (not from rustup) is older than $min_rust"
        install_rustup
    fi
    have="$(cargo_version)"
    version_ok "${have:-0}" || die "cargo $have is still older than $min_rust (edition 2024 needs >= 1.85)"
fi
log "rust: cargo $have found (workspace needs >= $min_rust)"

# fmt and clippy are part of the test command.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || die "cargo fmt/clippy missing and no rustup to add them"
    log "rust: adding the rustfmt and clippy components"
    rustup component add rustfmt clippy
fi
# --- tauri-driver (drives the real courier app in end-to-end tests) ----------------------
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$cargo_bin/tauri-driver" ]; then
    log "courier app: cargo install tauri-driver"
    cargo install tauri-driver --version '^2' --locked
else
    log "courier app: tauri-driver found"
fi
# --- dashboard (npm workspace in ui/) -----------------------------------------------------
# Node.js and npm come with the machine; the browser tests use Debian's chromium (above)
# through playwright-core, which downloads no browser. `npm ci` only when the lockfile changed.
if command -v npm >/dev/null 2>&1; then
    stamp="$repo_root/ui/node_modules/.package-lock.json"
    if [ ! -f "$stamp" ] || [ "$repo_root/ui/package-lock.json" -nt "$stamp" ]; then
        log "ui: npm ci"
        npm ci --prefix "$repo_root/ui" --no-audit --no-fund
    else
        log "ui: node_modules up to date, skipped npm ci"
    fi
else
    die "npm not found: install Node.js >= 20 with npm to build and test the dashboard"
fi
# --- models venv (ONNX Runtime for rerouting, training pipeline) --------------------------
# `ort` loads libonnxruntime.so.1.31.1 from the onnxruntime wheel at run time; tests and the
# reroute bench find it in .venv (or at $ORT_DYLIB_PATH). Reinstalls only when the pins change.
venv="$repo_root/.venv"
venv_stamp="$venv/.requirements.sha256"
want="$(sha256sum "$repo_root/models/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv_stamp" 2>/dev/null)" != "$want" ]; then
    log "models: creating $venv with models/requirements.txt"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$repo_root/models/requirements.txt"
    printf '%s\n' "$want" >"$venv_stamp"
else
    log "models: .venv up to date, skipped pip"
fi
ort_lib="$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1 2>/dev/null | head -n1)"
[ -n "$ort_lib" ] || die "models: libonnxruntime.so.1.31.1 not found in $venv after pip install"
log "models: ONNX Runtime at $ort_lib (export ORT_DYLIB_PATH to override)"
log "done"
