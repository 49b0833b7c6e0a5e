# sessionService -- plain Makefile; every library is found with pkg-config.
#
#   make            build/sessiond, build/createSession, build/readSession, build/closeSession
#   make run        install what is missing, build, serve on 127.0.0.1:8080 (LMDB)
#   make test       install what is missing, build, unit + black-box tests,
#                   then the same tests again on an ASan+UBSan build, then
#                   every fuzz target briefly (TEST_FUZZ_SECONDS, default 5),
#                   and the concurrency tests under ThreadSanitizer
#   make fuzz       the libFuzzer targets, FUZZ_SECONDS (default 60) each
#   make bench      sessiond (LMDB, Redis, Redis Cluster) against nginx, see docs/BENCHMARKS.md
#   make mutate     each mutation of tests/mutations.txt must be caught by its tests
#   make asan       the sanitizer build, in build/asan/
#   make nginx-module  build/ngx_http_sessiond_module.so for Debian's nginx,
#                   against nginx-dev (docs/DEPLOY.md 2.6)
#
# TEST_SCOPE=smoke make test: every stage of `make test` on a sample (a few
# black-box files, one mutation, 1 s of fuzzing per parser, a few concurrency
# tests), to prove on a bare system that everything each stage runs is
# installed; scripts/fresh-check.sh uses it. The default is TEST_SCOPE=full.

PKGS     := libmicrohttpd jansson libjwt openssl lmdb hiredis
BUILD    ?= build
PYTHON   ?= /usr/bin/python3
SAN      ?=

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN) -Isrc \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

SRC      := $(wildcard src/*.c)
OBJ      := $(SRC:src/%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libsessionservice.a
BINS     := sessiond createSession readSession closeSession sessionctl
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

TEST_SCOPE ?= full
ifeq ($(TEST_SCOPE),smoke)
# a sample that still runs every tool the full scope runs: the four store
# kinds (redis-server, Sentinel, redis-cli --cluster), nginx (gateway),
# mdb_stat and unshare (crash), cryptography (JWKS), PyYAML (OpenAPI), the
# nginx module (nginx-dev's files, libpcre2-dev, zlib1g-dev)
API_TESTS := $(addprefix tests/api/,test_fresh.py test_create.py test_head.py \
             test_gateway.py test_gateway_module.py test_openapi.py test_crash.py test_jwks.py)
TEST_FUZZ_SECONDS := 1
MUTATE_ONLY := the signature is not compared
TSAN_ARGS := -k "racing_closes"
else ifeq ($(TEST_SCOPE),full)
API_TESTS := tests/api
MUTATE_ONLY :=
TSAN_ARGS :=
else
$(error TEST_SCOPE is full or smoke, not "$(TEST_SCOPE)")
endif

.PHONY: all run test unit api asan lint fuzz fuzz-build deps deps-test deps-bench bench clean mutate \
        nginx-module
.DELETE_ON_ERROR:

all: $(addprefix $(BUILD)/,$(BINS))

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(OBJ)
	$(AR) rcs $@ $^

$(BUILD)/%: bin/%.c $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(LIB) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

deps:
	@scripts/deps.sh run

deps-test:
	@scripts/deps.sh test

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/env.sh
	exec ./$(BUILD)/sessiond

unit: $(UNITS)
	@set -e; for t in $(UNITS); do echo "== $$t"; $$t; done

api: all
	SESSIOND_BIN_DIR=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider --durations=15 $(API_TESTS)

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" all $(UNITS:$(BUILD)/%=build/asan/%)

test: deps-test
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory all $(UNITS)
	@scripts/image-check.sh
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory nginx-module
	@$(MAKE) --no-print-directory api
	@echo "== sanitizer build (ASan + UBSan)"
	@$(MAKE) --no-print-directory asan
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    SESSIOND_TEST_STORES=lmdb,cluster $(MAKE) --no-print-directory BUILD=build/asan \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" CFLAGS="-O1 -g" unit api
	@echo "== fuzzing every parser for $(TEST_FUZZ_SECONDS)s each"
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)
	@echo "== concurrency tests under ThreadSanitizer"
	@sh tests/tsan.sh $(TSAN_ARGS)
	@echo "== mutations (tests/mutations.txt): every one must be caught"
	@$(MAKE) --no-print-directory mutate

# One deliberate bug at a time in security- and durability-critical code,
# rebuilt in build/mutate/, against the tests named for it (tests/mutate.py).
mutate: all
	$(PYTHON) tests/mutate.py $(if $(MUTATE_ONLY),"$(MUTATE_ONLY)")

# Static analysis, clean or it fails: cppcheck, clang-tidy (.clang-tidy),
# and the clang static analyzer through scan-build.
lint:
	@echo "== cppcheck"
	@cppcheck --enable=warning,performance,portability --std=c11 --inline-suppr \
	    --error-exitcode=1 -q -Isrc -D_GNU_SOURCE --suppress=missingIncludeSystem src bin fuzz bench
	@echo "== clang-tidy"
	@clang-tidy --quiet src/*.c bin/*.c -- -std=c11 -D_GNU_SOURCE -Isrc \
	    $(shell pkg-config --cflags $(PKGS) 2>/dev/null) 2>&1 | { ! grep -E "(warning|error):"; }
	@echo "== scan-build"
	@rm -rf build/scan && mkdir -p build
	@scan-build --status-bugs -o build/scan/reports $(MAKE) --no-print-directory BUILD=build/scan \
	    CC=clang all > build/scan.log 2>&1 || { tail -30 build/scan.log; exit 1; }

# libFuzzer targets (clang): the core library rebuilt with the fuzzer's
# instrumentation in build/fuzz/, one binary per parser.
FUZZ_SECONDS ?= 60
TEST_FUZZ_SECONDS ?= 5
FUZZ_TARGETS := token body env path cookie record jwks redis
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang CFLAGS="-O1 -g" SAN="$(FUZZ_SAN)" \
	    build/fuzz/libsessionservice.a
	@set -e; for t in $(FUZZ_TARGETS); do \
	    clang -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g -fsanitize=fuzzer,address,undefined \
	        -fno-sanitize-recover=undefined -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
	        -o build/fuzz/fuzz_$$t fuzz/fuzz_$$t.c build/fuzz/libsessionservice.a $(LDLIBS); \
	done

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

clean:
	rm -rf build

# The nginx module links the core library into a shared object: the library
# again, position-independent and without sanitizers (build/pic/), then
# nginx-dev's configure and Makefile (nginx/build.sh).
nginx-module:
	@$(MAKE) --no-print-directory BUILD=build/pic CFLAGS="-O2 -g -fPIC" SAN= build/pic/libsessionservice.a
	@nginx/build.sh build/pic/libsessionservice.a build/nginx
	@cp build/nginx/ngx_http_sessiond_module.so $(BUILD)/ngx_http_sessiond_module.so

$(BUILD)/store_bench: bench/store_bench.c $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/token_bench: bench/token_bench.c $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

bench: deps-bench all nginx-module $(BUILD)/store_bench $(BUILD)/token_bench
	bench/run.sh

deps-bench:
	@scripts/deps.sh bench
