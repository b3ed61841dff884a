#!/usr/bin/env bash
# The cost of lazyfs: client throughput of raftkv and etcd with their data directories on lazyfs vs on the
# plain filesystem (issue 10, "the cost").
#
#   scripts/lazyfs-bench.sh
#
# For each DB and each mode, one run at a time:
#   plain:  faultline run --db DB --nodes 3 --nemesis none --time-limit T
#   lazyfs: faultline run --db DB --nodes 3 --nemesis lose-unsynced --nemesis-interval 100000 --time-limit T
# The lazyfs run mounts lazyfs over every data directory but draws no power cut (the first gap is at least a
# quarter of the interval, far beyond the run). Prints a Markdown table: ok operations per second (ok count /
# T; the median of REPEAT runs, plain and lazyfs alternating so load on the machine hits both alike) and the
# ratio lazyfs/plain.
#
# Settings (environment): FAULTLINE (default target/release/faultline; its folder goes first on PATH so the
# raftkv beside it is used), DBS (default "raftkv etcd"), TIME_LIMIT (default 20), STORE (default
# /tmp/lazyfs-bench-store), REPEAT (default 3), EXTRA_ARGS (word-split, default empty). Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
FAULTLINE=${FAULTLINE:-target/release/faultline}
export PATH="$(cd "$(dirname "$FAULTLINE")" && pwd):$PATH"
DBS=${DBS:-raftkv etcd}
T=${TIME_LIMIT:-20}
STORE=${STORE:-/tmp/lazyfs-bench-store}
REPEAT=${REPEAT:-3}

ok_per_s() { # db mode
  local args=(run --db "dbs/$1.toml" --nodes 3 --time-limit "$T" --store "$STORE" --name "bench-$1-$2")
  if [[ $2 == lazyfs ]]; then
    args+=(--nemesis lose-unsynced --nemesis-interval 100000)
  else
    args+=(--nemesis none)
  fi
  # shellcheck disable=SC2086
  local line
  line=$("$FAULTLINE" "${args[@]}" ${EXTRA_ARGS:-} 2>/dev/null | grep -E '^(VALID|INVALID|UNKNOWN)' | head -1)
  local ok=${line#*: }
  ok=${ok%% ok*}
  awk -v ok="$ok" -v t="$T" 'BEGIN { printf "%.0f", ok / t }'
}

echo "| system | plain fs (ok/s) | lazyfs (ok/s) | lazyfs / plain |"
echo "| --- | --- | --- | --- |"
median() { tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for db in $DBS; do
  ps=() ls=()
  for _ in $(seq "$REPEAT"); do
    ps+=("$(ok_per_s "$db" plain)")
    ls+=("$(ok_per_s "$db" lazyfs)")
  done
  echo "$db: plain ${ps[*]}, lazyfs ${ls[*]}" >&2
  plain=$(echo "${ps[*]}" | median)
  lazy=$(echo "${ls[*]}" | median)
  ratio=$(awk -v a="$lazy" -v b="$plain" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  echo "| $db | $plain | $lazy | $ratio |"
done
