#!/usr/bin/env bash
# make_corpus.sh OUT — the retrieval evaluation's corpus, from documents that
# Debian packages install (written by their authors, not by us):
#   OUT/man/NAME.txt       the section-1 manual pages of coreutils, findutils,
#                          grep, sed, tar, gzip and diffutils, rendered to text
#                          with man-db (`man -l FILE`, 80 columns; links skipped);
#   OUT/valgrind/NAME.html the Valgrind user manual (HTML) from the valgrind package.
# Needs man-db and valgrind (scripts/deps.sh test). Rebuilding gives the same
# files for the same package versions; questions.jsonl names documents by
# these relative paths.
set -euo pipefail
out=${1:?usage: make_corpus.sh OUT}
mkdir -p "$out/man" "$out/valgrind"
command -v man > /dev/null || { echo "make_corpus.sh: needs man-db (scripts/deps.sh test)" >&2; exit 1; }
vg=/usr/share/doc/valgrind/html
[ -d "$vg" ] || { echo "make_corpus.sh: needs the valgrind package's manual ($vg)" >&2; exit 1; }
export LC_ALL=C.UTF-8 MANWIDTH=80 MAN_KEEP_FORMATTING= MANPAGER=cat PAGER=cat
for pkg in coreutils findutils grep sed tar gzip diffutils; do
  dpkg -L "$pkg" | grep -E '/man1/[^/]+\.1\.gz$' | while read -r f; do
    [ -L "$f" ] && continue
    name=$(basename "$f" .1.gz)
    man -l "$f" 2> /dev/null > "$out/man/$name.txt.tmp" && mv "$out/man/$name.txt.tmp" "$out/man/$name.txt"
    rm -f "$out/man/$name.txt.tmp"
  done
done
# a .so redirect renders as an empty or tiny page: drop those
find "$out/man" -name '*.txt' -size -200c -delete
for f in "$vg"/*.html; do
  case "$(basename "$f")" in dist.*|license*|licenses.html) continue ;; esac
  cp "$f" "$out/valgrind/"
done
echo "corpus: $(ls "$out/man" | wc -l) man pages, $(ls "$out/valgrind" | wc -l) Valgrind manual pages in $out" >&2
