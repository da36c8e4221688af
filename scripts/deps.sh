#!/usr/bin/env bash
# deps.sh — install the Debian packages yan needs, only those that are missing.
#   scripts/deps.sh build   compiler, build tools, libmicrohttpd, cJSON and libcurl (the server),
#                           SQLite, poppler-glib and libxml2 (the knowledge base)
#   scripts/deps.sh test    + what the tests and peers need (node, pcre2, corpora, clang fuzzing,
#                           sentencepiece, PyTorch for the training check, OpenMPI, Chromium for the chat page,
#                           man-db and valgrind's manual for the retrieval evaluation)
#   scripts/deps.sh bench   + benchmark peers (OpenBLAS for PyTorch, hnswlib, FAISS)
set -euo pipefail
group=${1:-build}
pkgs=(gcc make pkg-config libc6-dev libmicrohttpd-dev libcjson-dev libcurl4-openssl-dev
      libsqlite3-dev libpoppler-glib-dev libxml2-dev)
if [ "$group" = test ] || [ "$group" = bench ]; then
  pkgs+=(libpcre2-dev clang libclang-rt-14-dev llvm bible-kjv fortunes-zh unicode-data
         nodejs sentencepiece python3 python3-sentencepiece valgrind bzip2
         python3-torch python3-numpy openmpi-bin libopenmpi-dev chromium
         man-db)  # man-db: tests/rag/make_corpus.sh renders manual pages (valgrind ships its HTML manual)
fi
if [ "$group" = bench ]; then
  pkgs+=(libopenblas0-openmp python3-hnswlib python3-faiss)
fi
missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done
# npm comes with some nodejs builds and as its own package in Debian's
if [ "$group" != build ] && ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps.sh: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
