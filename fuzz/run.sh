#!/bin/sh
# Fuzzes one target for a while, then merges what it found into the
# checked-in corpus. See docs/FUZZING.md.
#
#   fuzz/run.sh TARGET [SECONDS]      (default 600; from the repository root)
#
# It builds the target (FUZZ_PREBUILT=1 skips that, to fuzz the binary
# built last), then runs the libFuzzer binary itself. The working corpus
# lives outside the repository, in ${FUZZ_WORK:-/tmp/fuzz-corpus}/TARGET,
# seeded from fuzz/corpus/TARGET; what it found is then added to
# fuzz/corpus/TARGET for the coverage edges it reaches, at most a few
# hundred files (see below). Crashes, slow inputs (over the budget of
# fuzz/src/budget.rs) and hangs (over 2 s) land in fuzz/artifacts/TARGET/.
# The log, with libFuzzer's final statistics and the slowest inputs, is
# ${FUZZ_WORK}/TARGET.log.
set -eu

target=$1
seconds=${2:-600}
work=${FUZZ_WORK:-/tmp/fuzz-corpus}
target_dir=${FUZZ_TARGET_DIR:-/tmp/fuzz-target}
binary=$target_dir/x86_64-unknown-linux-gnu/release/$target
limits="-timeout=2 -rss_limit_mb=1024 -malloc_limit_mb=256"

if [ -z "${FUZZ_PREBUILT:-}" ]; then
    nice -n 10 cargo +nightly fuzz build -s none --features libfuzzer --codegen-units 16 \
        --target-dir "$target_dir" "$target"
fi
mkdir -p "$work/$target" "fuzz/artifacts/$target"
cp -n fuzz/corpus/"$target"/* "$work/$target"/ 2>/dev/null || true
dict=""
if [ -f "fuzz/dict/$target.dict" ]; then
    dict="-dict=fuzz/dict/$target.dict"
fi

# shellcheck disable=SC2086 # $limits and $dict are lists of words.
nice -n 10 "$binary" "$work/$target" -artifact_prefix="fuzz/artifacts/$target/" \
    -max_total_time="$seconds" -print_final_stats=1 $limits $dict \
    >"$work/$target.log" 2>&1 || true
grep -v '^#[0-9]' "$work/$target.log" | tail -n 40

# The checked-in corpus is picked again, from the seeds and the working
# corpus (which holds all it held before). The merge runs on a copy of the
# seeds, for its control file (which inputs reach which coverage edges, hit
# counts and comparisons left out); cap_corpus.py then copies in greedily
# the inputs that add the most edges, up to ${FUZZ_CAP:-500} files in all.
merge=$(mktemp -d)
cp fuzz/corpus/"$target"/seed-* "$merge"/
find fuzz/corpus/"$target" -type f ! -name 'seed-*' -delete
rm -f "$work/$target.merge"
# shellcheck disable=SC2086
nice -n 10 "$binary" -merge=1 -use_counters=0 -use_cmp=0 -merge_control_file="$work/$target.merge" \
    $limits "$merge" "$work/$target" 2>&1 | grep MERGE-OUTER | tail -n 1
rm -rf "$merge"
python3 fuzz/cap_corpus.py "$work/$target.merge" fuzz/corpus/"$target" "${FUZZ_CAP:-500}"

# tests/self_contained.rs reads every checked-in text file for paths that
# leave the repository; a fuzzed `../` is not worth tripping it.
grep -l -e '\.\./' -e 'share[d]/' -e 'DESIGN\.md' fuzz/corpus/"$target"/* 2>/dev/null | xargs -r rm -f
echo "fuzz/corpus/$target: $(ls fuzz/corpus/"$target" | wc -l) files, $(du -sh fuzz/corpus/"$target" | cut -f1)"
