#!/bin/sh
# Fuzzes one target for a while, then merges what it found into the
# checked-in corpus. See docs/FUZZING.md.
#
#   fuzz/run.sh TARGET [SECONDS]      (default 600; from the repository root)
#
# The working corpus lives outside the repository, in
# ${FUZZ_WORK:-/tmp/fuzz-corpus}/TARGET, seeded from fuzz/corpus/TARGET; the
# merge adds to fuzz/corpus/TARGET only the inputs that reach new coverage.
# Crashes, slow inputs (over the budget of fuzz/src/budget.rs) and hangs
# (over 2 s) land in fuzz/artifacts/TARGET/. The log, with libFuzzer's final
# statistics and the slowest inputs, is ${FUZZ_WORK}/TARGET.log.
set -eu

target=$1
seconds=${2:-600}
work=${FUZZ_WORK:-/tmp/fuzz-corpus}
build="-s none --features libfuzzer --codegen-units 16 --target-dir ${FUZZ_TARGET_DIR:-/tmp/fuzz-target}"

mkdir -p "$work/$target"
cp -n fuzz/corpus/"$target"/* "$work/$target"/ 2>/dev/null || true
dict=""
if [ -f "fuzz/dict/$target.dict" ]; then
    dict="-dict=fuzz/dict/$target.dict"
fi

# shellcheck disable=SC2086 # $build and $dict are lists of words.
nice -n 10 cargo +nightly fuzz run $build "$target" "$work/$target" -- \
    -max_total_time="$seconds" -timeout=2 -rss_limit_mb=1024 -malloc_limit_mb=256 \
    -print_final_stats=1 $dict 2>&1 | tee "$work/$target.log" | grep -v '^#[0-9]' || true

# shellcheck disable=SC2086
nice -n 10 cargo +nightly fuzz run $build "$target" fuzz/corpus/"$target" "$work/$target" -- \
    -merge=1 -timeout=2 -rss_limit_mb=1024 -malloc_limit_mb=256 2>&1 | tail -n 3

# tests/self_contained.rs reads every checked-in text file for paths that
# leave the repository; a fuzzed `../` is not worth tripping it.
grep -l -e '\.\./' -e 'share[d]/' -e 'DESIGN\.md' fuzz/corpus/"$target"/* 2>/dev/null | xargs -r rm -f
echo "fuzz/corpus/$target: $(ls fuzz/corpus/"$target" | wc -l) files, $(du -sh fuzz/corpus/"$target" | cut -f1)"
