#!/usr/bin/env bash
# The main job: set up the machine, build, start the sync server on its embedded SQLite, seed a
# demo world, run a simulated fleet against it, and leave the server running for the dashboard.
# Ctrl-C stops the server. Data lives in ./data/demo (recreated on every run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

LISTEN="${DOORSTEP_LISTEN:-127.0.0.1:8080}"
COURIERS="${DEMO_COURIERS:-12}"
STOPS="${DEMO_STOPS:-20}"
# Simulated time per wall-clock time: 480 runs the 8-hour day in about a minute.
SPEEDUP="${DEMO_SPEEDUP:-480}"
DATA=data/demo
DB="sqlite://$DATA/doorstep.db"

echo "==> building the dispatcher dashboard"
npm run build --prefix ui -w dashboard

echo "==> building (release)"
cargo build --release --locked -p doorstep-server -p doorstep-sim
BIN=target/release

rm -rf "$DATA"
mkdir -p "$DATA"
echo "==> seeding $COURIERS couriers x $STOPS stops"
"$BIN/doorstep-server" demo-seed --database "$DB" --couriers "$COURIERS" --stops "$STOPS" >"$DATA/seed.json"

echo "==> starting the sync server on $LISTEN"
"$BIN/doorstep-server" serve --listen "$LISTEN" --database "$DB" >"$DATA/server.out" 2>"$DATA/server.log" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT INT TERM
# The server prints its address once it is bound; wait for that line, not for a fixed time.
for _ in $(seq 1 100); do
    grep -q "listening on" "$DATA/server.out" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$DATA/server.log"; echo "server exited" >&2; exit 1; }
    sleep 0.1
done
URL="http://$LISTEN"
TOKEN="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dispatcher_token"])' "$DATA/seed.json")"

echo "==> simulating a delivery day: $COURIERS couriers, 30 % offline for 2+ hours, 10 % loss"
echo "    watch it live on the dashboard: $URL/ (dispatcher token in $DATA/seed.json)"
# The fleet's outcome is reported, not fatal: the server stays up for the dashboard either way.
SIM_STATUS=0
"$BIN/doorstep-sim" run --server "$URL" --seed-file "$DATA/seed.json" --couriers "$COURIERS" \
    --speedup "$SPEEDUP" --offline-share 0.3 --offline-hours 2 --loss 0.1 --kill-share 0.1 \
    --data-dir "$DATA/devices" --report "$DATA/sim-report.json" || SIM_STATUS=$?
if [ "$SIM_STATUS" -ne 0 ]; then
    echo "!! the simulated fleet reported a problem (exit $SIM_STATUS); see $DATA/sim-report.json" >&2
fi

cat <<TXT

Doorstep is running.
  Dashboard:        $URL/
  Dispatcher API:   $URL/v1/dispatch/couriers   (Authorization: Bearer <token below>)
  Metrics:          $URL/metrics
  Dispatcher token: $TOKEN
  Enrollment codes: $DATA/seed.json
  Server log:       $DATA/server.log
  Fleet report:     $DATA/sim-report.json   (device outboxes in $DATA/devices)

Press Ctrl-C to stop.
TXT
wait "$SERVER_PID"
