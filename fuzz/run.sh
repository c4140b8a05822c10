#!/usr/bin/env bash
# Builds the fuzz targets once, then fuzzes each for SECONDS.
#
#   fuzz/run.sh SECONDS [TARGET...]     (from any directory; all targets when none named)
#
# Each target runs under `nice -n 10` with a per-input timeout, an RSS limit and a maximum
# input length fitted to what it decodes. Inputs libFuzzer finds interesting go to
# fuzz/grown/TARGET/ (git-ignored, kept between runs so coverage accumulates; override
# with FUZZ_GROWN_DIR); the seed corpus fuzz/corpus/TARGET/ is only read. Crashes,
# timeouts and OOMs are written to fuzz/artifacts/TARGET/ (where `cargo fuzz tmin` looks)
# and libFuzzer's output to fuzz/logs/TARGET.log.
#
# Exits non-zero when any target crashed, timed out or ran out of memory. The stable
# toolchain is enough: RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz passes.
#
# Environment: FUZZ_TIMEOUT (seconds per input, 5), FUZZ_RSS_MB (2048),
# FUZZ_GROWN_DIR, CARGO_TARGET_DIR, FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail

FUZZ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$FUZZ_DIR")
export RUSTC_BOOTSTRAP=1
# What `cargo fuzz run` sets: Rust's allocator symbols look like ODR violations to ASan.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    echo "targets: $(all_targets | tr '\n' ' ')" >&2
    exit 2
}

all_targets() {
    local f
    for f in "$FUZZ_DIR"/fuzz_targets/*.rs; do
        basename "$f" .rs
    done
}

[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
SECONDS_EACH=$1
shift
if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
    for t in "${TARGETS[@]}"; do
        [[ -f $FUZZ_DIR/fuzz_targets/$t.rs ]] || { echo "unknown target: $t" >&2; usage; }
    done
else
    mapfile -t TARGETS < <(all_targets)
fi

PER_INPUT_TIMEOUT=${FUZZ_TIMEOUT:-5}
RSS_MB=${FUZZ_RSS_MB:-2048}
GROWN=${FUZZ_GROWN_DIR:-$FUZZ_DIR/grown}
TARGET_DIR=${CARGO_TARGET_DIR:-$FUZZ_DIR/target}
HOST=$(rustc -vV | sed -n 's/^host: //p')
BIN_DIR=$TARGET_DIR/$HOST/release
read -r -a EXTRA_ARGS <<<"${FUZZ_ARGS:-}"

# Longest input per target: identity headers are capped at 16 KiB (a bit more is tried, to
# cross the cap), several headers together get more; PEM uploads are capped at 50 KiB; the
# verify body at 64 KiB.
max_len() {
    case $1 in
        headers_combined) echo 40000 ;;
        certificate_pem | csr) echo 52000 ;;
        verify_body) echo 66000 ;;
        *) echo 20000 ;;
    esac
}

dict() {
    case $1 in
        header_* | headers_*) echo "$FUZZ_DIR/dict/headers.dict" ;;
        verify_body) echo "$FUZZ_DIR/dict/json.dict" ;;
        *) echo "$FUZZ_DIR/dict/pem.dict" ;;
    esac
}

# libFuzzer's -print_final_stats value NAME from LOG.
final_stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -n 1; }

# Only ever the fuzzer this script started, by its pid.
CHILD=""
stop_child() {
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    CHILD=""
}
trap 'stop_child' EXIT
trap 'stop_child; exit 130' INT TERM

# ---------------------------------------------------------------- build once
cd "$ROOT"
# cargo-fuzz has no --locked: check the lock file first, so a stale one fails here
# instead of being rewritten by the build.
cargo fetch --locked --manifest-path "$FUZZ_DIR/Cargo.toml" --quiet
build_started=$SECONDS
if [[ $# -eq 0 ]]; then
    nice -n 10 cargo fuzz build --fuzz-dir "$FUZZ_DIR" --target "$HOST" --target-dir "$TARGET_DIR"
else
    for t in "${TARGETS[@]}"; do
        nice -n 10 cargo fuzz build --fuzz-dir "$FUZZ_DIR" --target "$HOST" --target-dir "$TARGET_DIR" "$t"
    done
fi
echo "built in $((SECONDS - build_started))s"

# ---------------------------------------------------------------- run
mkdir -p "$FUZZ_DIR/logs"
declare -A STATUS EXECS RATE NEW PEAK
failed=0
for t in "${TARGETS[@]}"; do
    bin=$BIN_DIR/$t
    [[ -x $bin ]] || { echo "missing binary $bin" >&2; exit 1; }
    mkdir -p "$GROWN/$t" "$FUZZ_DIR/artifacts/$t"
    log=$FUZZ_DIR/logs/$t.log
    echo "==> $t: ${SECONDS_EACH}s (max_len $(max_len "$t"), log $log)"
    rc=0
    # The outer timeout only guards against a fuzzer that ignores -max_total_time.
    timeout --kill-after=10 $((SECONDS_EACH + 120)) \
        nice -n 10 "$bin" \
        -max_total_time="$SECONDS_EACH" \
        -timeout="$PER_INPUT_TIMEOUT" \
        -rss_limit_mb="$RSS_MB" \
        -max_len="$(max_len "$t")" \
        -dict="$(dict "$t")" \
        -print_final_stats=1 \
        -artifact_prefix="$FUZZ_DIR/artifacts/$t/" \
        "${EXTRA_ARGS[@]}" \
        "$GROWN/$t" "$FUZZ_DIR/corpus/$t" >"$log" 2>&1 &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=""

    EXECS[$t]=$(final_stat "$log" number_of_executed_units)
    RATE[$t]=$(final_stat "$log" average_exec_per_sec)
    NEW[$t]=$(final_stat "$log" new_units_added)
    PEAK[$t]=$(final_stat "$log" peak_rss_mb)
    if [[ -z ${EXECS[$t]} ]]; then
        # No final stats (killed): the last status line says how far it got.
        EXECS[$t]=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
    fi
    if [[ $rc -eq 0 ]] && ! grep -qE '^==[0-9]+== ?ERROR: libFuzzer|^SUMMARY: libFuzzer' "$log"; then
        STATUS[$t]=ok
    else
        failed=1
        if grep -q 'ERROR: libFuzzer: timeout' "$log"; then
            STATUS[$t]="TIMEOUT"
        elif grep -qE 'ERROR: libFuzzer: (out-of-memory|malloc)' "$log"; then
            STATUS[$t]="OOM"
        elif [[ $rc -eq 124 || $rc -eq 137 ]]; then
            STATUS[$t]="HUNG (rc $rc)"
        else
            STATUS[$t]="CRASH (rc $rc)"
        fi
        echo "!!! $t: ${STATUS[$t]}"
        grep -E 'panicked at|^SUMMARY|Test unit written to' "$log" | head -n 5 | sed 's/^/    /'
    fi
done

echo
printf '%-20s %-14s %12s %9s %6s %8s\n' target status executions exec/s new rss_mb
for t in "${TARGETS[@]}"; do
    printf '%-20s %-14s %12s %9s %6s %8s\n' "$t" "${STATUS[$t]}" "${EXECS[$t]:-?}" \
        "${RATE[$t]:-?}" "${NEW[$t]:-?}" "${PEAK[$t]:-?}"
done
exit "$failed"
