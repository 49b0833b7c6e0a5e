#!/bin/sh
# image-check.sh -- check, without Docker, that the Dockerfile's runtime image
# can run what `make` built: every shared library the executables load comes
# from a package that the runtime stage installs (or that its installs pull
# in, or that debian:12-slim already has).
#
#   scripts/image-check.sh            (after `make`; CI runs it after the tests)
#
# Environment: BUILD (default build), DOCKERFILE (default Dockerfile),
# STAGE (default runtime: the `FROM ... AS <stage>` that ships the binaries).
#
# What is checked, on this Debian 12 machine (the build stage's twin):
#   1. every executable of the Makefile's BINS exists in $BUILD and is copied
#      into the runtime stage;
#   2. every library an executable links directly (readelf NEEDED), mapped to
#      its Debian package with `dpkg -S`, is named on the runtime stage's
#      `apt-get install` line, unless it belongs to the base image (the
#      Essential packages and what they depend on, e.g. libc6);
#   3. every library `ldd` resolves (the whole closure, e.g. libgnutls30 under
#      libmicrohttpd12) is in a named package, in the dependencies apt installs
#      with them (Depends and Pre-Depends, recursively), or in the base image;
#   4. the tool the runtime stage's HEALTHCHECK runs is installed too.
# Any miss prints what is missing and exits 1; a setup problem exits 2.
set -eu
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
DOCKERFILE=${DOCKERFILE:-Dockerfile}
STAGE=${STAGE:-runtime}
fail=0
miss() { echo "image-check: MISSING: $*" >&2; fail=1; }
die() { echo "image-check: $*" >&2; exit 2; }

for tool in readelf ldd dpkg dpkg-query awk; do
    command -v "$tool" >/dev/null 2>&1 || die "needs $tool (binutils, libc-bin, dpkg)"
done
[ -r "$DOCKERFILE" ] || die "no $DOCKERFILE"

# --- the runtime stage of the Dockerfile, continuation lines joined ----------
stage_text=$(awk -v stage="$STAGE" '
    { line = $0 }
    /^[ \t]*#/ { next }
    {
        if (sub(/\\[ \t]*$/, "", line)) { acc = acc line " "; next }
        line = acc line; acc = ""
        if (line ~ /^[ \t]*FROM[ \t]/) {
            n = split(line, w, /[ \t]+/)
            inside = (tolower(w[n - 1]) == "as" && w[n] == stage)
            next
        }
        if (inside) print line
    }' "$DOCKERFILE")
[ -n "$stage_text" ] || die "$DOCKERFILE has no stage named $STAGE"

# the words after `apt-get install` that are not options, up to `&&` or `;`
packages=$(printf '%s\n' "$stage_text" | awk '
    /apt-get/ {
        n = split($0, w, /[ \t]+/)
        on = 0
        for (i = 1; i <= n; i++) {
            if (w[i] == "install" && i > 1) { on = 1; continue }
            if (!on) continue
            if (w[i] == "&&" || w[i] == ";" || w[i] == "||" || w[i] == "|") { on = 0; continue }
            if (w[i] ~ /^-/ || w[i] == "") continue
            sub(/[;]$/, "", w[i])
            sub(/=.*$/, "", w[i])
            print w[i]
        }
    }' | sort -u)
[ -n "$packages" ] || die "no apt-get install line in stage $STAGE of $DOCKERFILE"
echo "image-check: stage $STAGE installs:" $packages

# --- packages: what is installed here, and what depends on what ---------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/image-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dpkg-query -W -f='${Package}\t${Status}\t${Essential}\t${Depends}, ${Pre-Depends}\n' |
    awk -F'\t' '$2 ~ /install ok installed/' > "$tmp/db"

# closure PKG...: the packages and what apt installs with them (Depends and
# Pre-Depends, recursively; of alternatives, the first one installed here)
closure() {
    awk -F'\t' -v roots="$*" '
        { inst[$1] = 1; deps[$1] = $4 }
        END {
            n = split(roots, todo, " ")
            while (n > 0) {
                p = todo[n--]
                if (p == "" || (p in seen)) continue
                seen[p] = 1
                m = split(deps[p], alts, ",")
                for (i = 1; i <= m; i++) {
                    k = split(alts[i], cands, "|")
                    for (j = 1; j <= k; j++) {
                        c = cands[j]
                        gsub(/\([^)]*\)/, "", c); gsub(/[ \t]/, "", c); sub(/:.*/, "", c)
                        if (c in inst) { todo[++n] = c; break }
                    }
                }
            }
            for (p in seen) print p
        }' "$tmp/db" | sort -u
}

essential=$(awk -F'\t' '$3 == "yes" { print $1 }' "$tmp/db")
base=$(closure $essential)
listed_closure=$(closure $packages)
in_list() { printf '%s\n' $2 | grep -qx -- "$1"; }

# --- 1. the executables -----------------------------------------------------
bins=$(sed -n 's/^BINS[ \t]*:*=[ \t]*//p' Makefile)
[ -n "$bins" ] || die "no BINS in Makefile"
copy_line=$(printf '%s\n' "$stage_text" | grep -E '^[ \t]*COPY[ \t]' || true)
for b in $bins; do
    [ -x "$BUILD/$b" ] || die "$BUILD/$b is not built (run make first)"
    printf '%s\n' "$copy_line" | grep -Eq "(^|[ /])$b([ \t]|$)" ||
        miss "executable $b is not copied into stage $STAGE"
done

# --- 2. and 3. the libraries ---------------------------------------------------
# every (binary, soname, path, direct?) that ldd resolves
: > "$tmp/libs"
for b in $bins; do
    ldd_out=$(ldd "$BUILD/$b") || die "ldd $BUILD/$b failed"
    if printf '%s\n' "$ldd_out" | grep -q "not found"; then
        die "ldd $BUILD/$b: a library is not found on this machine:
$ldd_out"
    fi
    readelf -d "$BUILD/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' > "$tmp/needed"
    printf '%s\n' "$ldd_out" | awk -v b="$b" -v nf="$tmp/needed" '
        BEGIN { while ((getline l < nf) > 0) needed[l] = 1 }
        $2 == "=>" && $3 ~ /^\// { print b, $1, $3, (($1 in needed) ? "yes" : "no") }' >> "$tmp/libs"
done
# one dpkg -S for every path, in both spellings of merged /usr
awk '{ p = $3; print p; if (p ~ /^\/usr\//) print substr(p, 5); else print "/usr" p }' "$tmp/libs" |
    sort -u > "$tmp/paths"
# shellcheck disable=SC2046
dpkg -S $(cat "$tmp/paths") 2>/dev/null | sed -n 's/^\([^:,]*\)[^ ]*: \(.*\)$/\1 \2/p' |
    awk '{ p = $2; sub(/^\/usr\//, "/", p); print p, $1 }' | sort -u > "$tmp/owners"

report=""
while read -r b soname path direct; do
    key=$path
    case "$key" in /usr/*) key=${key#/usr} ;; esac
    pkg=$(awk -v k="$key" '$1 == k { print $2; exit }' "$tmp/owners")
    if [ -z "$pkg" ]; then
        miss "$b: $soname ($path) belongs to no Debian package"
        continue
    fi
    if in_list "$pkg" "$packages"; then how="installed by name"
    elif in_list "$pkg" "$base"; then how="in the base image"
    elif [ "$direct" = no ] && in_list "$pkg" "$listed_closure"; then how="pulled in by a listed package"
    elif [ "$direct" = yes ]; then
        miss "$b links $soname directly: add package $pkg to the apt-get install line of stage $STAGE"
        how="MISSING"
    else
        miss "$b loads $soname (package $pkg), which no package of stage $STAGE brings"
        how="MISSING"
    fi
    report="$report
$soname	$pkg	$how"
done < "$tmp/libs"
printf '%s\n' "$report" | sed '/^$/d' | sort -u | awk -F'\t' '{ printf "  %-24s %-18s %s\n", $1, $2, $3 }'

# --- 4. the HEALTHCHECK tool ----------------------------------------------------
hc=$(printf '%s\n' "$stage_text" | grep -E '^[ \t]*HEALTHCHECK' | sed 's/.*CMD[ \t]*//' || true)
if [ -z "$hc" ]; then
    miss "stage $STAGE has no HEALTHCHECK"
else
    tool=$(printf '%s\n' "$hc" | awk '{ gsub(/[\[\]",]/, " "); print $1 }')
    case "$tool" in
    busybox) need=busybox ;;
    curl) need=curl ;;
    wget) need=wget ;;
    /usr/local/bin/*|sessiond|createSession|readSession|closeSession|sessionctl) need="" ;;
    *) need=""; echo "image-check: HEALTHCHECK runs $tool (not checked)" ;;
    esac
    if [ -n "$need" ] && ! in_list "$need" "$packages"; then
        miss "HEALTHCHECK runs $tool but stage $STAGE does not install $need"
    fi
fi

if [ "$fail" -ne 0 ]; then
    echo "image-check: FAILED: the $STAGE image would miss what the binaries need" >&2
    exit 1
fi
echo "image-check: ok: stage $STAGE of $DOCKERFILE covers every library of:" $bins
