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

# One package selection and one feature set for every cargo step, so one build serves them all:
# clippy lints the same code the tests run, the TypeScript-binding checks are ordinary tests gated
# on the `ts` features (so `cargo test --workspace` runs them), and the binaries the browser and
# window tests drive come out of the same build. Any change of features or packages between steps
# makes cargo compile again whatever it changes (`-p` alone drops tokio's dev-only `test-util`,
# which rebuilds the whole HTTP stack and both binaries).
FEATURES="doorstep-shared/ts,courier-core/ts,courier-app/ts"

step "cargo clippy --workspace --all-targets --features $FEATURES --locked -- -D warnings"
cargo clippy --workspace --all-targets --features "$FEATURES" --locked -- -D warnings

# This step also runs the suites that are on PostgreSQL whatever DOORSTEP_TEST_DATABASE says,
# each on private clusters it starts and stops: postgres_store, replicas, and failover (a
# primary with a synchronous standby; the primary is killed mid-stream and the standby promoted).
step "cargo test --workspace --features $FEATURES --locked (TypeScript bindings are current: the ts_bindings / ts_export tests)"
cargo test --workspace --features "$FEATURES" --locked

step "the black-box server tests again, on PostgreSQL (a private cluster each test process starts and stops; same build)"
# The test executables the step above built, run again: asking cargo for a subset of tests would
# resolve other features for it and compile again.
PG_SUITES="push_semantics crash_recovery office bad_input proof_at_push refusals orders"
cargo test --workspace --features "$FEATURES" --locked --no-run --message-format=json |
    python3 -c '
import json, sys
wanted = set(sys.argv[1].split())
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["name"] in wanted and "test" in m["target"]["kind"]:
        print(m["target"]["name"], m["executable"])
' "$PG_SUITES" >target/pg-suites.txt
[ "$(wc -l <target/pg-suites.txt)" -eq "$(echo "$PG_SUITES" | wc -w)" ] ||
    { echo "expected one executable per suite in: $PG_SUITES" >&2; cat target/pg-suites.txt >&2; exit 1; }
while read -r suite exe; do
    echo "--- $suite on PostgreSQL"
    (cd sync-server && DOORSTEP_TEST_DATABASE=postgres "$exe")
done <target/pg-suites.txt

step "binaries for the browser and window tests (same selection and features: only the binaries cargo test did not link)"
# --tests keeps the dev-dependency features of the test build; without it tokio would rebuild.
cargo build --workspace --bins --tests --features "$FEATURES" --locked

step "dashboard: typecheck, build, browser tests against the real server (npm test --prefix ui)"
DOORSTEP_SERVER_BIN="$PWD/target/debug/doorstep-server" npm test --prefix ui

step "courier app: end-to-end in its real window (Xvfb, tauri-driver, WebKitWebDriver) + benchmark"
# -noreset: by default Xvfb resets when its last client leaves, and an app launched during the
# reset (the cold-start loop closes one window and opens the next) fails to initialise GTK.
DOORSTEP_SERVER_BIN="$PWD/target/debug/doorstep-server" COURIER_APP_BIN="$PWD/target/debug/courier-app" \
    xvfb-run -a -s "-screen 0 1280x1024x24 -noreset" npm run e2e --prefix ui -w courier

step "all checks passed"
