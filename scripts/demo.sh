#!/usr/bin/env bash
# The main job: set up the machine, build, start the sync server on its embedded SQLite, seed a
# demo world, run a simulated fleet against it, and leave the server running for the dashboard.
# Ctrl-C stops the server. Data lives in ./data/demo (recreated on every run).
#
# DEMO_DATABASE=postgres runs the same demo on a private PostgreSQL cluster (port
# DEMO_PG_PORT, default 55432) with DEMO_REPLICAS (default 3) server replicas on consecutive
# ports from DOORSTEP_LISTEN, sharing one blob directory; the simulated couriers are spread
# over the replicas. Ctrl-C stops the replicas and the cluster.
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
MODE="${DEMO_DATABASE:-sqlite}"
REPLICAS=1
case "$MODE" in
sqlite) ;;
postgres) REPLICAS="${DEMO_REPLICAS:-3}" ;;
*) echo "DEMO_DATABASE must be sqlite or postgres, not $MODE" >&2; exit 2 ;;
esac

echo "==> building the dispatcher dashboard"
npm run build --prefix ui -w dashboard

echo "==> building (release)"
cargo build --release --locked -p doorstep-server -p doorstep-sim
BIN=target/release

[ -f "$DATA/pg/data/postmaster.pid" ] && scripts/postgres.sh stop "$DATA/pg"
rm -rf "$DATA"
mkdir -p "$DATA"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "$MODE" = postgres ]; then scripts/postgres.sh stop "$DATA/pg" || true; fi
}
trap cleanup EXIT INT TERM
if [ "$MODE" = postgres ]; then
    echo "==> starting a private PostgreSQL cluster on port ${DEMO_PG_PORT:-55432}"
    DB="$(scripts/postgres.sh start "$DATA/pg" "${DEMO_PG_PORT:-55432}")"
else
    DB="sqlite://$DATA/doorstep.db"
fi
export DOORSTEP_BLOB_DIR="$DATA/blobs"
echo "==> seeding $COURIERS couriers x $STOPS stops"
"$BIN/doorstep-server" demo-seed --database "$DB" --couriers "$COURIERS" --stops "$STOPS" >"$DATA/seed.json"

HOST="${LISTEN%:*}"
FIRST_PORT="${LISTEN##*:}"
URLS=()
for i in $(seq 0 $((REPLICAS - 1))); do
    addr="$HOST:$((FIRST_PORT + i))"
    echo "==> starting sync server replica $((i + 1))/$REPLICAS on $addr ($MODE)"
    "$BIN/doorstep-server" serve --listen "$addr" --database "$DB" >"$DATA/server-$i.out" 2>"$DATA/server-$i.log" &
    PIDS+=($!)
    # The server prints its address once it is bound; wait for that line, not for a fixed time.
    for _ in $(seq 1 100); do
        grep -q "listening on" "$DATA/server-$i.out" 2>/dev/null && break
        kill -0 "${PIDS[$i]}" 2>/dev/null || { cat "$DATA/server-$i.log"; echo "server exited" >&2; exit 1; }
        sleep 0.1
    done
    URLS+=("http://$addr")
done
URL="${URLS[0]}"
SERVERS="$(IFS=,; echo "${URLS[*]}")"
TOKEN="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dispatcher_token"])' "$DATA/seed.json")"

echo "==> simulating a delivery day: $COURIERS couriers, 30 % offline for 2+ hours, 10 % loss"
echo "    watch it live on the dashboard: $URL/ (dispatcher token in $DATA/seed.json)"
# The fleet's outcome is reported, not fatal: the server stays up for the dashboard either way.
SIM_STATUS=0
"$BIN/doorstep-sim" run --server "$SERVERS" --seed-file "$DATA/seed.json" --couriers "$COURIERS" \
    --speedup "$SPEEDUP" --offline-share 0.3 --offline-hours 2 --loss 0.1 --kill-share 0.1 \
    --data-dir "$DATA/devices" --report "$DATA/sim-report.json" || SIM_STATUS=$?
if [ "$SIM_STATUS" -ne 0 ]; then
    echo "!! the simulated fleet reported a problem (exit $SIM_STATUS); see $DATA/sim-report.json" >&2
fi

cat <<TXT

Doorstep is running.
  Dashboard:        $URL/   (replicas: ${URLS[*]})
  Dispatcher API:   $URL/v1/dispatch/couriers   (Authorization: Bearer <token below>)
  Metrics:          $URL/metrics
  Dispatcher token: $TOKEN
  Enrollment codes: $DATA/seed.json
  Server logs:      $DATA/server-*.log
  Fleet report:     $DATA/sim-report.json   (device outboxes in $DATA/devices)

Press Ctrl-C to stop.
TXT
wait "${PIDS[0]}"
