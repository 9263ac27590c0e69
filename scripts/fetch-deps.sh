#!/usr/bin/env bash
# Run on a connected Debian/Ubuntu machine before copying the tree to a GPU
# host that has no package registry (and no cJSON/PCRE2 headers): downloads
# the .deb files blurb builds against (apt-get download, no root needed for
# the download itself), unpacks them (dpkg -x) into .deps/ (git-ignored,
# about 3 MB, travels with the tree), and stamps the current commit into
# .deps/BLURB_COMMIT because the copy has no .git. CMake finds the headers
# and libraries there with -DBLURB_DEPS_PREFIX=$PWD/.deps (gpu-check.sh does
# this by itself when .deps exists); the executables find libcjson.so.1
# through CMake's build RPATH.
#
#   scripts/fetch-deps.sh           download what is missing, unpack, stamp
#   scripts/fetch-deps.sh --stamp   only rewrite .deps/BLURB_COMMIT
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
deps=$root/.deps
pkgs=(libcjson-dev libcjson1 libpcre2-dev libpcre2-8-0)

stamp() {
    mkdir -p "$deps"
    if git -C "$root" rev-parse HEAD >/dev/null 2>&1; then
        local c
        c=$(git -C "$root" rev-parse HEAD)
        git -C "$root" diff --quiet HEAD -- 2>/dev/null || c="$c (with uncommitted changes)"
        echo "$c" >"$deps/BLURB_COMMIT"
        echo "fetch-deps: commit $c written to .deps/BLURB_COMMIT"
    else
        echo "fetch-deps: no git checkout here; .deps/BLURB_COMMIT left as it is" >&2
    fi
}

if [ "${1:-}" = "--stamp" ]; then
    stamp
    exit 0
fi

command -v apt-get >/dev/null || { echo "fetch-deps: needs apt-get (a Debian or Ubuntu machine)" >&2; exit 1; }
command -v dpkg >/dev/null || { echo "fetch-deps: needs dpkg" >&2; exit 1; }
mkdir -p "$deps/debs"
for p in "${pkgs[@]}"; do
    if ls "$deps/debs/${p}_"*.deb >/dev/null 2>&1; then
        echo "fetch-deps: $p already downloaded"
    else
        (cd "$deps/debs" && apt-get download "$p")
    fi
done
for f in "$deps"/debs/*.deb; do
    dpkg -x "$f" "$deps"
done
for want in usr/include/cjson/cJSON.h usr/include/pcre2.h \
            usr/lib/x86_64-linux-gnu/libcjson.so usr/lib/x86_64-linux-gnu/libpcre2-8.so; do
    [ -e "$deps/$want" ] || { echo "fetch-deps: $want missing after unpacking" >&2; exit 1; }
done
stamp
echo "fetch-deps: $(du -sh "$deps" | cut -f1) in .deps; configure with -DBLURB_DEPS_PREFIX=$deps"
