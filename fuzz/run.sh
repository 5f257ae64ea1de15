#!/bin/sh
# Runs libFuzzer harnesses; called by `make fuzz` from the build directory:
#
#   fuzz/run.sh SECONDS SHARED_DIR SRCDIR fuzz/fuzz_NAME...
#
# Seeds are made from SHARED_DIR into fuzz/seeds-gen/NAME/ by fuzz/gen_seeds
# (nothing third-party is committed); SRCDIR/fuzz/seeds/NAME/ adds
# hand-written ones and SRCDIR/fuzz/dict/NAME.dict a dictionary, when they
# exist. Each harness runs for SECONDS, growing fuzz/corpus/NAME/ (kept
# between runs). Output: a "# fuzz NAME: ..." line with the run's numbers,
# then "PASS: fuzz NAME", or "FAIL: fuzz NAME (crash input: PATH, log: PATH)".
# Exits 0 when every harness passed.
set -u
secs=$1; shared=$2; srcdir=$3; shift 3
status=0

mkdir -p fuzz/seeds-gen
if [ -d "$shared" ]; then
    ./fuzz/gen_seeds "$shared" fuzz/seeds-gen >fuzz/gen_seeds.log 2>&1 ||
        { cat fuzz/gen_seeds.log; echo "FAIL: fuzz seeds (fuzz/gen_seeds failed)"; exit 1; }
else
    echo "# fuzz: $shared not found: no generated seeds"
fi

for prog in "$@"; do
    name=${prog##*/}; name=${name#fuzz_}
    corpus=fuzz/corpus/$name
    art=fuzz/artifacts/$name/
    log=fuzz/$name.log
    mkdir -p "$corpus" "$art"
    # The for list was expanded already: the positional parameters are free
    # to hold this harness's arguments.
    set -- "$corpus"
    [ -d "fuzz/seeds-gen/$name" ] && set -- "$@" "fuzz/seeds-gen/$name"
    [ -d "$srcdir/fuzz/seeds/$name" ] && set -- "$@" "$srcdir/fuzz/seeds/$name"
    [ -f "$srcdir/fuzz/dict/$name.dict" ] && set -- "-dict=$srcdir/fuzz/dict/$name.dict" "$@"
    # Inputs up to the sizes that reach each parser's limits (the HTTP line
    # buffer is 8 KiB); others keep libFuzzer's default.
    case $name in
        http_parser) set -- -max_len=20000 "$@";;
        json) set -- -max_len=16384 "$@";;
        uritemplate) set -- -max_len=4096 "$@";;
        discovery) set -- -max_len=16384 "$@";;
    esac
    rm -f "$art"crash-* "$art"leak-* "$art"timeout-* "$art"oom-* 2>/dev/null
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "./$prog" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$art" "$@" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    echo "# fuzz $name: ${secs}s, ${runs:-?} runs, ${eps:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
    if [ $rc -eq 0 ]; then
        echo "PASS: fuzz $name"
    else
        crash=$(ls -t "$art" 2>/dev/null | head -1)
        if [ -n "$crash" ]; then crash=$(pwd)/$art$crash; else crash="none saved"; fi
        grep -E 'invariant failed|ERROR: |runtime error|SUMMARY' "$log" | head -5 | sed 's/^/#   /'
        echo "FAIL: fuzz $name (crash input: $crash, log: $(pwd)/$log)"
        status=1
    fi
done
exit $status
