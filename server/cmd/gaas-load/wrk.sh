#!/bin/bash
# usage: wrk.sh GAASD GAAS-LOAD LABEL GPUTYPES ALLOCS
# (the binaries of gaasd and gaas-load, a label for the output, the GPU types
# of the catalogue (0: open mode) and the allocations of each user).
# A fresh database, 32 load users prepared by gaas-load (with GPUTYPES catalogue
# types and ALLOCS allocations each), then wrk -t2 -c32 -d10s on POST /jobs with
# a script rotating the 32 users' tokens (and the GPU types, if any).
set -u
BIN=$1; LOAD=$2; LABEL=$3; TYPES=$4; ALLOCS=$5
PORT=${PORT:-18190}
D=${TMPDIR:-/tmp}/gaas-wrk-$LABEL-$$
mkdir -p $D
export GAAS_ADMIN_USERNAME=root GAAS_ADMIN_PASSWORD=root-password-123
$BIN -addr 127.0.0.1:$PORT -db $D/load.db -login-per-address 0 -login-per-user 0 -pbkdf2-iterations 1000 >$D/gaasd.log 2>&1 &
PID=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
ARGS="-gpu-types $TYPES -allocations $ALLOCS"
[ "$TYPES" = 0 ] && [ "$ALLOCS" = 1 ] && ARGS=""
$LOAD -url http://127.0.0.1:$PORT -users 32 -concurrency 4 -duration 200ms $ARGS >$D/prep.log 2>&1 || { echo prep failed; cat $D/prep.log; }
{
echo 'tokens = {'
for i in $(seq 0 31); do
  tok=$(curl -s -X POST -H 'Content-Type: application/json' -d "{\"username\":\"load-$i\",\"password\":\"load-password-$i\"}" http://127.0.0.1:$PORT/login | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  echo "\"$tok\","
done
echo '}'
if [ "$TYPES" = 0 ]; then echo 'types = {"NVIDIA A100"}'; else echo 'types = {"A100", "H100", "L40S", "B200"}'; fi
cat <<'LUA'
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  wrk.headers["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1]
  wrk.body = '{"command": "python train.py --epochs 10", "gpu_type": "' .. types[(n % #types) + 1] .. '", "estimated_hours": 0.001}'
  return wrk.format()
end
local bad = 0
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50)/1000, latency:percentile(90)/1000,
    latency:percentile(99)/1000, latency.max/1000, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
} > $D/wrk.lua
wrk -t2 -c32 -d${DUR:-10s} --latency -s $D/wrk.lua http://127.0.0.1:$PORT/jobs > $D/wrk.out 2>&1
echo "$LABEL $(grep RESULT $D/wrk.out) load=$(cut -d' ' -f1 /proc/loadavg)"
kill $PID; wait $PID 2>/dev/null
[ -z "${KEEP:-}" ] && rm -rf $D
