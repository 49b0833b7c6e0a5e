#!/bin/sh
# tests/tsan.sh -- ThreadSanitizer run of the concurrency tests.
#
#   sh tests/tsan.sh            build build/tsan, run the tests, report races
#   sh tests/tsan.sh -x ...     extra arguments go to pytest
#
# 1. Builds the service with clang -fsanitize=thread into build/tsan (the
#    Makefile's BUILD/CC/CFLAGS/SAN variables; nothing else changes).
# 2. Runs the black-box tests marked "concurrency" (tests/api/conftest.py),
#    on every store ([lmdb], [redis], [sentinel], [cluster]), the Sentinel
#    failover under load (test_failover.py), and the cluster's failover and
#    reshard under load (test_cluster.py): racing closes (2, 100, across
#    processes), 1,000 concurrent creates, close-alls and lists racing with creates, pipelined
#    writes (the writer-thread hand-off), the Redis instance races, kill -9
#    under concurrent load, hostile clients (the deadline watcher thread) and
#    a shorter mixed-traffic run.  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1.
# 3. A report fails the run twice over: the harness (tests/api/apitools.py,
#    SANITIZER_PATTERNS) fails any test whose server printed
#    "WARNING: ThreadSanitizer", and this script greps every server's stderr
#    afterwards and prints each report's SUMMARY line and first frames.
#
# libmicrohttpd, LMDB, hiredis, jansson, libjwt and OpenSSL come from Debian
# and are not instrumented: TSan sees their locks (pthread interceptors) but
# not their plain memory accesses, so races inside them are mostly invisible
# and a report whose frames are all inside them is a false positive.
# tests/tsan.supp (if present) is passed as suppressions=.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
BUILD=build/tsan
PY=${PYTHON:-/usr/bin/python3}

echo "== building $BUILD (clang, -fsanitize=thread)"
make --no-print-directory BUILD=$BUILD CC=clang CFLAGS="-O1 -g" SAN="-fsanitize=thread" all \
    || { echo "tsan.sh: build failed" >&2; exit 2; }

SUPP=""
if [ -f tests/tsan.supp ]; then
    SUPP=":suppressions=$ROOT/tests/tsan.supp"
fi
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${SUPP}"
export TSAN_OPTIONS
SESSIOND_BIN_DIR="$ROOT/$BUILD"
export SESSIOND_BIN_DIR
SESSIOND_START_TIMEOUT=30          # TSan starts slower
export SESSIOND_START_TIMEOUT
HARDENING_CRASH_ITERATIONS=10      # kill -9 x10 per store instead of 32
HARDENING_RESOURCE_REQUESTS=20000  # 20k mixed requests per store instead of 100k
HARDENING_P99_LIMIT_MS=1000        # latency is not what this run measures
export HARDENING_CRASH_ITERATIONS HARDENING_RESOURCE_REQUESTS HARDENING_P99_LIMIT_MS

OUT=$(mktemp -d /tmp/sessiond-tsan.XXXXXX)
echo "== running the concurrency tests (server stderr kept in $OUT)"
echo "   TSAN_OPTIONS=$TSAN_OPTIONS"

# The tests marked "concurrency" (tests/api/conftest.py), wherever they
# are: a renamed or moved test keeps its marker. At least MIN_SELECTED of
# them, so that a lost marker cannot shrink the run unnoticed.
MIN_SELECTED=30
cd tests/api || exit 2
n=$("$PY" -m pytest -q -p no:cacheprovider --collect-only -m concurrency . 2>/dev/null |
    grep -c "::")
if [ "$n" -lt "$MIN_SELECTED" ]; then
    echo "tsan.sh: only $n tests marked concurrency (want at least $MIN_SELECTED)" >&2
    exit 2
fi
echo "   $n tests marked concurrency"
"$PY" -m pytest -q -p no:cacheprovider --basetemp="$OUT/tmp" -m concurrency . "$@"
rc=$?
cd "$ROOT" || exit 2

echo "== ThreadSanitizer reports in the servers' stderr"
found=0
for f in $(grep -rl "ThreadSanitizer" "$OUT/tmp" 2>/dev/null); do
    found=$((found + 1))
    echo "--- $f"
    grep -E "WARNING: ThreadSanitizer|SUMMARY: ThreadSanitizer" "$f" | sort | uniq -c
    # the first report's stacks, trimmed
    awk '/WARNING: ThreadSanitizer/{p=1} p{print; n++} n>=60{exit}' "$f"
done
if [ "$found" -eq 0 ]; then
    echo "none"
else
    echo "== $found server process(es) reported races (see above)"
    [ "$rc" -eq 0 ] && rc=1
fi
exit $rc
