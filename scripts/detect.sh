#!/usr/bin/env bash
# Measures faultline's detection power on raftkv's switchable bugs (issue 5, "What it must show").
#
#   scripts/detect.sh OUT.md
#
# For each bug (and correct raftkv, shown as "none") and each seed, runs one at a time
#   faultline run --db dbs/raftkv.toml --nodes 5 --node-arg=--bug=NAME --nemesis partition,kill,pause \
#                 --time-limit 60 --seed S --store $STORE --name detect-NAME-S
# and writes a Markdown table (bug, seed, exit code, verdict, which checker caught it, seconds into the run of
# the first anomaly, operations) to stdout and to OUT.md. The first anomaly is the invocation time of the
# counterexample's failing operation (the earliest over the invalid keys) when linearizability caught the run,
# or, when only availability did, the start of the first stall (a gap without ok while a live, connected
# majority existed), else the final heal that was not recovered from.
#
# Settings (environment):
#   FAULTLINE   the faultline binary (default: $CARGO_TARGET_DIR/release/faultline, else target/release/faultline,
#               else faultline on PATH). Its folder is put first on PATH, so the raftkv built beside it is the
#               one the spec starts.
#   BUGS        default "stale-leader-read early-ack accept-stale-term fixed-election-timeout none"
#   SEEDS       default "1 2 3 4 5"
#   TIME_LIMIT  default 60
#   NEMESIS     default partition,kill,pause
#   STORE       default /tmp/detect-store
#   EXTRA_ARGS  more arguments for faultline run (word-split), default empty
#   DB          the DB spec (default dbs/raftkv.toml); with another system use BUGS=none
#
# Needs root (netns backend), jq. Runs are sequential: never two clusters at once.
set -euo pipefail

if [[ $# -ne 1 || $1 == -* ]]; then
    echo "usage: $0 OUT.md   (settings through BUGS, SEEDS, TIME_LIMIT, NEMESIS, STORE, FAULTLINE, EXTRA_ARGS)" >&2
    exit 2
fi
out=$1
root=$(cd "$(dirname "$0")/.." && pwd)
command -v jq >/dev/null || { echo "$0: jq is needed to read results.json" >&2; exit 2; }

if [[ -z ${FAULTLINE:-} ]]; then
    for c in "${CARGO_TARGET_DIR:-/nonexistent}/release/faultline" "$root/target/release/faultline"; do
        if [[ -x $c ]]; then FAULTLINE=$c; break; fi
    done
fi
FAULTLINE=${FAULTLINE:-$(command -v faultline || true)}
[[ -x ${FAULTLINE:-} ]] || { echo "$0: no faultline binary: build with cargo build --release -p faultline -p raftkv, or set FAULTLINE" >&2; exit 2; }
bindir=$(cd "$(dirname "$FAULTLINE")" && pwd)
[[ -x $bindir/raftkv ]] || { echo "$0: $bindir/raftkv missing: build with cargo build --release -p raftkv" >&2; exit 2; }
export PATH="$bindir:$PATH"

BUGS=${BUGS:-"stale-leader-read early-ack accept-stale-term fixed-election-timeout none"}
SEEDS=${SEEDS:-"1 2 3 4 5"}
TIME_LIMIT=${TIME_LIMIT:-60}
NEMESIS=${NEMESIS:-partition,kill,pause}
STORE=${STORE:-/tmp/detect-store}
DB=${DB:-$root/dbs/raftkv.toml}
logs="$STORE/detect-logs"
mkdir -p "$logs"

rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    echo "Detection matrix: $(basename "$DB" .toml), 5 nodes, nemesis $NEMESIS, time limit ${TIME_LIMIT}s, workload cas-register;"
    echo "source $rev, binaries in $bindir, store $STORE, started $(date -u +%FT%TZ)."
    echo
    echo "| bug | seed | exit | verdict | caught by | first anomaly (s) | ops (ok/fail/info) | wall (s) | run |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} | tee "$out"

# Prints "verdict|caught by|first anomaly seconds|ops" from a results.json.
summarize() {
    jq -r '
      def secs: (. / 1e9 * 10 | round / 10 | tostring);
      .linearizability as $l | .availability as $a |
      ([$l.keys[]? | select(.verdict == "invalid")]) as $bad |
      ([$bad[] | .counterexample.op.call // empty] | min) as $first |
      (if ($bad | length) > 0 then "linearizability (" + ($bad | map(.key) | .[0:3] | join(", "))
            + (if ($bad | length) > 3 then ", ..." else "" end) + ")" else "" end) as $lin |
      (if $a.verdict == "invalid" then "availability" else "" end) as $av |
      ([$lin, $av] | map(select(. != "")) | join(" + ")) as $by |
      ([$a.recoveries[]? | .heal_time] | max) as $final_heal |
      ($a.stalls // [] | first) as $stall |
      [ .verdict,
        (if $by == "" then "-" else $by end),
        (if $first != null then ($first | secs)
         elif $stall != null then ($stall.start | secs) + " (stall to " + ($stall.end | secs) + " s, "
              + ($stall.majority_ns | secs) + " s with a live majority)"
         elif $a.verdict == "invalid" and $final_heal != null then ($final_heal | secs) + " (final heal; longest gap "
              + ($a.longest_gap_ns | secs) + " s from " + ($a.longest_gap_start | secs) + ")"
         else "-" end),
        ((.stats.ok // 0 | tostring) + "/" + (.stats.fail // 0 | tostring) + "/" + (.stats.info // 0 | tostring))
      ] | join("|")' "$1"
}

for bug in $BUGS; do
    for seed in $SEEDS; do
        name="detect-$bug-$seed"
        args=(run --db "$DB" --nodes 5 --nemesis "$NEMESIS" --time-limit "$TIME_LIMIT"
              --seed "$seed" --store "$STORE" --name "$name")
        [[ $bug != none ]] && args+=("--node-arg=--bug=$bug")
        # shellcheck disable=SC2206
        [[ -n ${EXTRA_ARGS:-} ]] && args+=($EXTRA_ARGS)
        log="$logs/$name.txt"
        start=$(date +%s)
        set +e
        "$FAULTLINE" "${args[@]}" >"$log" 2>&1
        rc=$?
        set -e
        wall=$(($(date +%s) - start))
        dir=$(sed -n 's/^  results: //p' "$log" | tail -n 1)
        if [[ -n $dir && -f $dir/results.json ]]; then
            IFS='|' read -r verdict by first ops < <(summarize "$dir/results.json")
        else
            verdict="run failed"
            by="-"
            first="-"
            ops="-"
            dir="(see $log: $(grep -m1 -i 'error' "$log" | cut -c1-120))"
        fi
        echo "| $bug | $seed | $rc | $verdict | $by | $first | $ops | $wall | $dir |" | tee -a "$out"
    done
done
