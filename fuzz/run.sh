#!/usr/bin/env bash
# Fuzzes Adit's parsers of untrusted input with cargo-fuzz (libFuzzer, nightly Rust).
#
#   fuzz/run.sh [seconds] [target...]
#
# seconds  time per target (default 60, libFuzzer's -max_total_time)
# target   any of: ingress_config tunnel_token data_hello (default: all three)
#
# Installs cargo-fuzz into fuzz/.tools when it is not on PATH, builds every target, runs
# each one on a working corpus (fuzz/corpus/<target>, git-ignored) seeded from the
# committed fuzz/seeds/<target>, and prints a summary. Exits non-zero if any target
# crashed, hung (-timeout, 10 s per input) or ran out of memory; the input that did it is
# left in fuzz/artifacts/<target>/ and the log in fuzz/artifacts/<target>.log.
#
# Environment: FUZZ_SANITIZER (default address; none runs ~2x faster),
# FUZZ_TOOLCHAIN (default nightly).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

all_targets=(ingress_config tunnel_token data_hello)
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: fuzz/run.sh [seconds] [target...]   (seconds must be a positive integer)" >&2
    exit 2
fi
shift $(( $# > 0 ? 1 : 0 ))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all_targets[@]}")
fi
for t in "${targets[@]}"; do
    if [[ ! " ${all_targets[*]} " =~ " $t " ]]; then
        echo "unknown target $t (known: ${all_targets[*]})" >&2
        exit 2
    fi
done

toolchain="${FUZZ_TOOLCHAIN:-nightly}"
sanitizer="${FUZZ_SANITIZER:-address}"

# cargo-fuzz: PATH first, then the local install, else install it there.
if cargo fuzz --version >/dev/null 2>&1; then
    fuzz=(cargo fuzz)
else
    export PATH="$here/.tools/bin:$PATH"
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        echo "==> installing cargo-fuzz into fuzz/.tools"
        cargo install cargo-fuzz --locked --root "$here/.tools"
    fi
    fuzz=(cargo fuzz)
fi
echo "==> $("${fuzz[@]}" --version), toolchain $toolchain, sanitizer $sanitizer"

# Own target directory, so a CARGO_TARGET_DIR meant for the workspace is left alone.
common=(--sanitizer "$sanitizer" --target-dir "$here/target")

echo "==> building ${targets[*]}"
for t in "${targets[@]}"; do
    cargo "+$toolchain" fuzz build "${common[@]}" "$t"
done

mkdir -p "$here/artifacts"
declare -A result runs secs rate
failed=0
for t in "${targets[@]}"; do
    corpus="$here/corpus/$t"
    mkdir -p "$corpus" "$here/artifacts/$t"
    cp -n "$here/seeds/$t/"* "$corpus/" 2>/dev/null || true
    log="$here/artifacts/$t.log"
    echo "==> fuzzing $t for ${seconds}s (corpus $(ls "$corpus" | wc -l) inputs, log fuzz/artifacts/$t.log)"
    started=$(date +%s)
    if cargo "+$toolchain" fuzz run "${common[@]}" "$t" "$corpus" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1; then
        result[$t]=ok
    else
        result[$t]=FAILED
        failed=1
        tail -n 40 "$log" >&2
    fi
    secs[$t]=$(( $(date +%s) - started ))
    runs[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate[$t]=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
done

echo
echo "==> summary (${seconds}s per target, sanitizer $sanitizer)"
printf '%-16s %-7s %14s %10s %9s %8s\n' target result executions exec/s wall_s corpus
for t in "${targets[@]}"; do
    printf '%-16s %-7s %14s %10s %9s %8s\n' "$t" "${result[$t]}" "${runs[$t]:-?}" \
        "${rate[$t]:-?}" "${secs[$t]}" "$(ls "$here/corpus/$t" | wc -l)"
done
if [ "$failed" -ne 0 ]; then
    echo "==> a target failed; replay what it found with:" >&2
    for t in "${targets[@]}"; do
        [ "${result[$t]}" = FAILED ] || continue
        for input in "$here/artifacts/$t"/*; do
            [ -f "$input" ] || continue
            echo "    cargo +$toolchain fuzz run --sanitizer $sanitizer $t ${input#"$root/"}" >&2
        done
    done
    exit 1
fi
echo "==> no crashes"
