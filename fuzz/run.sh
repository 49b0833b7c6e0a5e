#!/bin/sh
# run.sh -- `make fuzz`: runs every libFuzzer target for FUZZ_SECONDS each,
# from the seeds in fuzz/corpus/<target>/ (new inputs go to a scratch
# corpus, so the repository's seeds stay small). Fails on the first crash,
# leak or sanitizer report; the input that did it is left in build/fuzz/.
set -eu
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-60}
DIR=build/fuzz
for t in token body env path cookie record jwks redis; do
    case $t in
    token) dict=token ;; body|record) dict=json ;; env) dict=env ;; jwks) dict=jwks ;; redis) dict=redis ;; *) dict=path ;;
    esac
    scratch=$(mktemp -d /tmp/fuzz-$t.XXXXXX)
    echo "== fuzz_$t for ${SECS}s"
    if ! "$DIR/fuzz_$t" -max_total_time="$SECS" -dict="fuzz/$dict.dict" -max_len=4096 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$DIR/crash-$t-" \
        "$scratch" "fuzz/corpus/$t" > "$DIR/fuzz_$t.log" 2>&1; then
        tail -40 "$DIR/fuzz_$t.log"
        echo "fuzz: fuzz_$t failed; the input is in $DIR/crash-$t-*" >&2
        rm -rf "$scratch"
        exit 1
    fi
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$DIR/fuzz_$t.log" | tr '\n' ' '
    echo
    rm -rf "$scratch"
done
