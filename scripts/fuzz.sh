#!/usr/bin/env bash
# Fuzzes what strangers hand Backfill, with libFuzzer, one target after the other, each for
# SECONDS: scripts/fuzz.sh [SECONDS (60)] [TARGET...]. Targets: fuzz/fuzz_targets/, bodies in
# fuzz/src/lib.rs. Stable Rust: plain cargo builds them, fuzz/sancov-rustc instruments the
# backfill crate only, and every dependency is the one `cargo test` already compiled.
# Inputs: the seeds in fuzz/corpus/<target>/, the findings in fuzz/regressions/<target>/, and what
# earlier runs kept (<target dir>/fuzz-work/<target>/corpus). A finding (a panic, over 10 s (a
# share link: 60 s), over 2 GB) is minimized into fuzz/regressions/<target>/, which `cargo test --test
# fuzz_regressions` replays, and the script fails. KEEP_GOING=1 fuzzes on past findings
# (libFuzzer's fork mode), for long runs: it leaves their inputs, not minimized, in
# <target dir>/fuzz-work/<target>/kept/ to be sorted by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backfill-target}"
export PATH="$HOME/.cargo/bin:$PATH"

seconds="${1:-60}"
shift || true
# The longest input worth mutating, per target (bytes): above the largest seed.
declare -A max_len=([trip_parquet]=16384 [trip_csv]=4096 [template]=4096 [project]=16384 [zip_import]=32768 [share_link]=4096)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(trip_parquet trip_csv template project zip_import share_link)
for target in "${targets[@]}"; do
  [ -n "${max_len[$target]:-}" ] || { echo "unknown fuzz target $target (known: ${!max_len[*]})" >&2; exit 2; }
done

RUSTC_WORKSPACE_WRAPPER="$PWD/fuzz/sancov-rustc" cargo build --locked -p backfill-fuzz --bins
# Where cargo put them (a cargo config may choose another target directory).
target_dir=$(cargo metadata --locked --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

# Seconds one input may take. A share link replays a whole session, and what it may ask for
# within Backfill's limits (a microbatch build of a thousand daily batches) takes seconds.
declare -A timeout=([share_link]=60)
keep_going=()
[ "${KEEP_GOING:-0}" = 1 ] && keep_going=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
findings=()
for target in "${targets[@]}"; do
  limits=(-timeout="${timeout[$target]:-10}" -rss_limit_mb=2048)
  bin="$target_dir/debug/fuzz_$target"
  work="$target_dir/fuzz-work/$target"
  artifacts="$work/artifacts"
  [ ${#keep_going[@]} -gt 0 ] && artifacts="$work/kept"
  # What an interrupted run left there was reported by it, or is found again (kept inputs of
  # KEEP_GOING runs stay until sorted).
  [ ${#keep_going[@]} -gt 0 ] || rm -rf "$artifacts"
  mkdir -p "$work/corpus" "$artifacts"
  inputs=("$work/corpus" "fuzz/corpus/$target")
  [ -d "fuzz/regressions/$target" ] && inputs+=("fuzz/regressions/$target")
  # The lesson's models are the templates people start from.
  [ "$target" = template ] && inputs+=(src/course/builtin)
  dict=()
  [ -f "fuzz/dicts/$target.dict" ] && dict=(-dict="fuzz/dicts/$target.dict")
  echo "== fuzz $target for ${seconds}s"
  status=0
  "$bin" "${limits[@]}" "${keep_going[@]}" "${dict[@]}" -max_len="${max_len[$target]}" -max_total_time="$seconds" \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "${inputs[@]}" || status=$?
  saved_before=${#findings[@]}
  if [ ${#keep_going[@]} -gt 0 ]; then
    kept=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
    [ "$kept" = 0 ] || findings+=("$target: $kept inputs in $artifacts (KEEP_GOING: not minimized)")
    continue
  fi
  for artifact in "$artifacts/"*; do
    name=${artifact##*/}
    kind=${name%%-*}
    case "$kind" in
      crash | timeout | oom | leak) ;;
      *) rm -f "$artifact"; continue ;;
    esac
    known=$(find "fuzz/regressions/$target" -type f -exec cmp -s "$artifact" {} \; -print 2>/dev/null | head -1)
    if [ -n "$known" ]; then
      rm -f "$artifact"
      findings+=("$target: $known still fails")
      continue
    fi
    minimized="$work/minimized"
    rm -f "$minimized"
    "$bin" "${limits[@]}" -minimize_crash=1 -max_total_time=60 -exact_artifact_path="$minimized" "$artifact" >/dev/null 2>&1 || true
    [ -s "$minimized" ] || cp "$artifact" "$minimized"
    mkdir -p "fuzz/regressions/$target"
    saved="fuzz/regressions/$target/$kind-$(sha1sum "$minimized" | cut -c1-12)"
    mv "$minimized" "$saved"
    rm -f "$artifact"
    findings+=("$target: $kind, saved as $saved (replay: $bin $saved)")
  done
  if [ "$status" != 0 ] && [ ${#findings[@]} = "$saved_before" ]; then
    findings+=("$target: libFuzzer exited with $status and saved no input")
  fi
done

if [ ${#findings[@]} -gt 0 ]; then
  printf 'fuzzing found:\n' >&2
  printf '  %s\n' "${findings[@]}" >&2
  exit 1
fi
