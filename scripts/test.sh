#!/usr/bin/env bash
# The whole check, as CI runs it: setup, formatting, lints, tests. Non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
# setup.sh may just have installed rustup into ~/.cargo/bin, which this shell cannot see yet.
if ! command -v cargo >/dev/null 2>&1; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

step() { printf '\n==> %s\n' "$*"; }

step "courier UI: typecheck and build (courier-app embeds ui/courier/dist when it compiles)"
npm run build --prefix ui -w courier

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets --locked -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "TypeScript bindings are current (cargo test -p doorstep-shared --features ts)"
cargo test -p doorstep-shared --features ts --locked --test ts_bindings
step "courier TypeScript bindings are current (cargo test -p courier-core --features ts)"
cargo test -p courier-core --features ts --locked --test ts_bindings
step "courier app TypeScript bindings are current (cargo test -p courier-app --features ts)"
cargo test -p courier-app --features ts --locked --lib ts_export

step "cargo test --workspace --locked"
cargo test --workspace --locked

step "dashboard: typecheck, build, browser tests against the real server (npm test --prefix ui)"
cargo build -p doorstep-server --locked
DOORSTEP_SERVER_BIN="$PWD/target/debug/doorstep-server" npm test --prefix ui

step "courier app: end-to-end in its real window (Xvfb, tauri-driver, WebKitWebDriver) + benchmark"
cargo build -p courier-app -p doorstep-server --locked
DOORSTEP_SERVER_BIN="$PWD/target/debug/doorstep-server" COURIER_APP_BIN="$PWD/target/debug/courier-app" \
    xvfb-run -a -s "-screen 0 1280x1024x24" npm run e2e --prefix ui -w courier

step "all checks passed"
