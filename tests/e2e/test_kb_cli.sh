#!/usr/bin/env bash
# test_kb_cli.sh — end-to-end tests of `yan kb`: a directory of mixed files
# (text, Markdown, HTML manuals from /usr/share/doc or generated, PDFs written
# by hand, Chinese text) ingested while bad files (encrypted and damaged PDFs,
# a binary renamed .txt, an empty file, a 1 GB sparse file, a path that
# disappears mid-ingest) are reported by name and the rest lands; re-adding,
# changing and removing files; BM25, vector and hybrid search with a
# random-weight decoder model from build/tools/mkmodel as the embedding model
# (plumbing, not quality); the vector index rebuilt when deleted or damaged;
# kill -9 during a large ingest, then a re-run that completes the work and a
# consistent database (yan kb check; PRAGMA integrity_check through Python's
# sqlite3 when present); readers running `yan kb search` and `yan kb check`
# while an ingest writes.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
MKMODEL=$ROOT/build/tools/mkmodel
VOCAB=$ROOT/models/kjv-8k.tokenizer.json
tmp=$(mktemp -d)
bg_pids=()
cleanup() { for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# expect_fail NAME PATTERN CMD...: non-zero exit and PATTERN on stderr
expect_fail() {
  local name=$1 pat=$2; shift 2
  if "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null; then bad "$name (exit 0)"; return; fi
  if grep -q -- "$pat" "$tmp/err"; then ok "$name"; else bad "$name (stderr: $(head -c 300 "$tmp/err"))"; fi
}
have_py() { command -v python3 > /dev/null 2>&1; }
# json_ok FILE: the file is one JSON document (when python3 is present)
json_ok() { ! have_py || python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1"; }
# integrity FILE: SQLite's own integrity_check through Python (when present)
integrity() {
  have_py || return 0
  [ "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$1")" = ok ]
}
# kbcheck KB: yan kb check, quietly
kbcheck() { "$YAN" kb check "$1" > /dev/null; }
# count_docs KB: documents in the knowledge base
count_docs() { "$YAN" kb ls "$1" --json | sed -n 's/.*"documents":\[//p' | grep -o '"id":' | wc -l; }

# mkpdf OUT [--encrypt] PAGE...: a PDF with one Helvetica text object per
# page (lines split at '|'), written by hand with a correct xref table;
# --encrypt adds an /Encrypt dictionary no empty password opens.
mkpdf() {
  local LC_ALL=C out=$1; shift
  local enc=0
  if [ "${1:-}" = --encrypt ]; then enc=1; shift; fi
  local n=$# i=0 body kids="" s t o extra=""
  local -a offs=()
  for ((k = 0; k < n; k++)); do kids+="$((4 + 2 * k)) 0 R "; done
  body=$'%PDF-1.4\n'
  offs+=(${#body}); body+=$'1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n'
  offs+=(${#body}); body+="2 0 obj"$'\n'"<< /Type /Pages /Kids [${kids}] /Count $n >>"$'\nendobj\n'
  offs+=(${#body}); body+=$'3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n'
  for t in "$@"; do
    s="BT /F1 11 Tf 72 740 Td 13 TL (${t//|/) \' (}) ' ET"
    offs+=(${#body})
    body+="$((4 + 2 * i)) 0 obj"$'\n'"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents $((5 + 2 * i)) 0 R >>"$'\nendobj\n'
    offs+=(${#body})
    body+="$((5 + 2 * i)) 0 obj"$'\n'"<< /Length ${#s} >>"$'\nstream\n'"$s"$'\nendstream\nendobj\n'
    i=$((i + 1))
  done
  if [ $enc = 1 ]; then
    local e=$(( ${#offs[@]} + 1 ))
    offs+=(${#body})
    body+="$e 0 obj"$'\n'"<< /Filter /Standard /V 1 /R 2 /O <$(printf '11%.0s' {1..32})> /U <$(printf '22%.0s' {1..32})> /P -4 >>"$'\nendobj\n'
    extra=" /Encrypt $e 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>]"
  fi
  local xref=${#body}
  body+="xref"$'\n'"0 $(( ${#offs[@]} + 1 ))"$'\n'"0000000000 65535 f "$'\n'
  for o in "${offs[@]}"; do body+="$(printf '%010d' "$o") 00000 n "$'\n'; done
  body+="trailer"$'\n'"<< /Size $(( ${#offs[@]} + 1 )) /Root 1 0 R$extra >>"$'\n'"startxref"$'\n'"$xref"$'\n%%EOF\n'
  printf '%s' "$body" > "$out"
}

# ------------------------------------------------------------ fixtures
D=$tmp/docs
mkdir -p "$D/manuals" "$D/notes/deeper" "$D/.git"
# HTML manuals that Debian documentation packages install (base-passwd is
# essential, so present on a minimal system); generated ones otherwise
n_html=0
for f in $( (echo /usr/share/doc/base-passwd/users-and-groups.html; find /usr/share/doc -name '*.html' -size -200k 2>/dev/null | sort | head -n 6) | sort -u); do
  [ -f "$f" ] || continue
  cp "$f" "$D/manuals/$(echo "$f" | tr / _ | sed 's/^_//')" 2>/dev/null && n_html=$((n_html + 1))
done
if [ "$n_html" -eq 0 ]; then
  printf '<html><head><title>Generated manual</title><script>var x="SCRIPTTEXT";</script></head><body><h1>Users</h1><p>The root user is the superuser. The daemon user runs unprivileged daemons.</p></body></html>' > "$D/manuals/generated.html"
  n_html=1
fi
printf '<html><head><title>Widget Manual</title><style>.x{color:red}</style><script>var s = "SCRIPTONLYWORD";</script></head>
<body><h1>Installing</h1><p>Unpack the flux capacitor before installing the widget.</p>
<h2>Troubleshooting</h2><p>If the widget hums, recalibrate the oscillator.</p></body></html>\n' > "$D/manuals/widget.html"
n_html=$((n_html + 1))
printf '# Garden notes\n\nTomatoes need sun.\n\n## Watering\n\nWater the cucumbers every morning.\n\n```\n# not a heading\n```\n' > "$D/notes/garden.md"
printf 'The quick brown fox jumps over the lazy dog. Foxes are omnivorous mammals.\n\nA second paragraph about badgers.\n' > "$D/notes/fox.txt"
printf '浮云终日行，游子久不至。三夜频梦君，情亲见君意。\n\n知识库把文档切成小块；检索时先找到最相关的块。长安一片月，万户捣衣声。\n' > "$D/notes/deeper/chinese.txt"
printf 'hidden\n' > "$D/.git/config.txt"
mkpdf "$D/report.pdf" "Quarterly report: revenue grew in the northern region.|Costs were flat." \
      "Page two describes the zeppelin hangar expansion." "Page three: outlook and risks."
good_files=$((n_html + 4))   # + garden.md, fox.txt, chinese.txt, report.pdf
# bad files
mkpdf "$D/locked.pdf" --encrypt "Secret text."
printf '%%PDF-1.5\n1 0 obj << /Type /Catalog garbage\n' > "$D/damaged.pdf"
head -c 4096 /bin/sh > "$D/program.txt"
: > "$D/empty.txt"
truncate -s 1G "$D/huge.txt"
printf 'not indexed: unknown extension\n' > "$D/archive.xyz"

# ------------------------------------------------------------ help
check "kb --help has usage and an example" bash -c "'$YAN' kb --help | grep -q usage && '$YAN' kb --help | grep -q example"
check "help lists kb" bash -c "'$YAN' --help | grep -q '^  kb '"
expect_fail "kb without a subcommand" "usage" "$YAN" kb
expect_fail "unknown subcommand" "unknown subcommand" "$YAN" kb frob "$tmp/x.kb"
expect_fail "search on a missing knowledge base" "no such knowledge base" "$YAN" kb search "$tmp/none.kb" hello
check "search on a missing knowledge base creates nothing" test ! -e "$tmp/none.kb"
expect_fail "a knowledge base that is not one" "not a knowledge base" "$YAN" kb ls "$D/notes/fox.txt"

# ------------------------------------------------------------ ingest (BM25 only)
KB=$tmp/docs.kb
"$YAN" kb add "$KB" "$D" "$tmp/vanished.txt" > "$tmp/add.out" 2> "$tmp/add.err"
rc=$?
check "add with bad files exits 1" test $rc -eq 1
check "the good files landed, the 6 bad ones failed" grep -q "^added $good_files, updated 0, unchanged 0, failed 6" "$tmp/add.out"
check "encrypted PDF reported by name" grep -q "locked.pdf: encrypted PDF" "$tmp/add.err"
check "damaged PDF reported by name" grep -q "damaged.pdf: damaged PDF" "$tmp/add.err"
check "binary renamed .txt reported by name" grep -q "program.txt: binary file" "$tmp/add.err"
check "empty file reported by name" grep -q "empty.txt: empty file" "$tmp/add.err"
check "1 GB file reported as too large" grep -q "huge.txt: too large (1.0 GiB; the limit is 128.0 MiB)" "$tmp/add.err"
check "a missing path reported by name" grep -q "vanished.txt: cannot access" "$tmp/add.err"
check "hidden folders and unknown extensions pass over" bash -c "! '$YAN' kb ls '$KB' | grep -q -e '\.git' -e archive.xyz"
check "BM25-only is said" grep -q "no embedding model" "$tmp/add.err"
check "ls lists the documents" test "$(count_docs "$KB")" -eq "$good_files"
"$YAN" kb ls "$KB" > "$tmp/ls.out"
check "ls shows kinds" bash -c "grep -q '^pdf ' '$tmp/ls.out' && grep -q '^html ' '$tmp/ls.out' && grep -q '^markdown ' '$tmp/ls.out'"
"$YAN" kb ls "$KB" --json > "$tmp/ls.json"
check "ls --json is JSON" json_ok "$tmp/ls.json"
check "check passes" kbcheck "$KB"
check "integrity_check ok" integrity "$KB"

# searches: BM25 ranks, page numbers, headings, scripts not indexed, Chinese
"$YAN" kb search "$KB" zeppelin hangar --json > "$tmp/s.json" 2> /dev/null
check "search --json is JSON" json_ok "$tmp/s.json"
check "PDF hit carries its page" grep -q '"path":"[^"]*report.pdf","page":2' "$tmp/s.json"
"$YAN" kb search "$KB" oscillator -k 1 > "$tmp/s.out" 2> "$tmp/s.err"
check "HTML hit carries its heading path" grep -q "widget.html  § Installing > Troubleshooting" "$tmp/s.out"
check "default mode without a model is BM25 and says so" grep -q "BM25" "$tmp/s.err"
check "script text is not indexed" bash -c "'$YAN' kb search '$KB' SCRIPTONLYWORD 2>/dev/null | grep -q '^no match'"
check "Markdown heading path" bash -c "'$YAN' kb search '$KB' cucumbers -k 1 2>/dev/null | grep -q '§ Garden notes > Watering'"
check "users-and-groups manual is searchable" bash -c "'$YAN' kb search '$KB' superuser -k 3 2>/dev/null | grep -q 'html'"
check "Chinese: a two-character word" bash -c "'$YAN' kb search '$KB' 终日 -k 1 2>/dev/null | grep -q chinese.txt"
check "Chinese: a phrase inside a sentence" bash -c "'$YAN' kb search '$KB' 最相关 -k 1 2>/dev/null | grep -q chinese.txt"
check "Chinese: a question" bash -c "'$YAN' kb search '$KB' '长安的月亮是什么样的？' -k 1 2>/dev/null | grep -q chinese.txt"
check "Chinese: one character" bash -c "'$YAN' kb search '$KB' 梦 -k 1 2>/dev/null | grep -q chinese.txt"
expect_fail "vector search without a model" "no embedding model" "$YAN" kb search "$KB" fox --mode vector
expect_fail "bad mode" "bm25, vector or hybrid" "$YAN" kb search "$KB" fox --mode fuzzy

# re-adding: unchanged is a no-op; a changed file is re-indexed; removing
"$YAN" kb add "$KB" "$D" > "$tmp/add2.out" 2> /dev/null
check "unchanged files: nothing written" grep -q "^added 0, updated 0, unchanged $good_files, failed 5.*(0 chunks)" "$tmp/add2.out"
printf 'The quick brown fox now writes about wolverines instead.\n' > "$D/notes/fox.txt"
"$YAN" kb add "$KB" "$D/notes" > "$tmp/add3.out" 2> /dev/null
check "a changed file is re-indexed" grep -q "^added 0, updated 1, unchanged 2" "$tmp/add3.out"
check "new text found" bash -c "'$YAN' kb search '$KB' wolverines -k 1 2>/dev/null | grep -q fox.txt"
check "old text gone" bash -c "'$YAN' kb search '$KB' badgers 2>/dev/null | grep -q '^no match'"
check "rm a document" "$YAN" kb rm -q "$KB" "$D/notes/fox.txt"
check "removed document not found" bash -c "'$YAN' kb search '$KB' wolverines 2>/dev/null | grep -q '^no match'"
expect_fail "rm twice" "not in the knowledge base" "$YAN" kb rm "$KB" "$D/notes/fox.txt"
check "rm a folder" "$YAN" kb rm -q "$KB" "$D/manuals"
check "folder's documents gone" test "$(count_docs "$KB")" -eq 3
check "check after removals" kbcheck "$KB"
check "relative paths resolve the same" bash -c "cd '$D' && '$YAN' kb add '$KB' notes/fox.txt manuals > /dev/null 2>&1 && test \$('$YAN' kb ls '$KB' --json | grep -o '\"id\":' | wc -l) -eq $good_files"

# ------------------------------------------------------------ embedding model
[ -x "$MKMODEL" ] || make -s -C "$ROOT" build/tools/mkmodel > /dev/null 2>&1
if [ ! -x "$MKMODEL" ]; then
  bad "build/tools/mkmodel is missing (make tools)"
else
  M=$tmp/embed.gguf
  "$MKMODEL" --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --type f32 --vocab "$VOCAB" -o "$M" > /dev/null 2>&1
  M2=$tmp/embed2.gguf
  "$MKMODEL" --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --type f32 --seed 9 --vocab "$VOCAB" -o "$M2" > /dev/null 2>&1
  VK=$tmp/vec.kb
  "$YAN" kb add "$VK" "$D" --embed-model "$M" --chunk-tokens 128 --chunk-overlap 16 > "$tmp/v.out" 2> "$tmp/v.err"
  check "add with an embedding model" grep -q "^added $good_files.*embedded" "$tmp/v.out"
  "$YAN" kb ls "$VK" --json > "$tmp/vls.json"
  nc=$(grep -o '"chunks":[0-9]*,"vectors"' "$tmp/vls.json" | grep -o '[0-9]*' | head -1)
  nv=$(grep -o '"vectors":[0-9]*' "$tmp/vls.json" | grep -o '[0-9]*')
  check "every chunk has a vector ($nc chunks, $nv vectors)" test -n "$nc" -a "$nc" = "$nv"
  check "the model is recorded" grep -q '"embed_dim":64' "$tmp/vls.json"
  check "index saved beside the database" test -s "$VK.hnsw"
  "$YAN" kb search "$VK" "zeppelin hangar" --mode vector -k 4 --json > "$tmp/vs.json" 2> /dev/null
  check "vector search returns k hits" test "$(grep -o '"rank":' "$tmp/vs.json" | wc -l)" -eq 4
  "$YAN" kb search "$VK" "zeppelin hangar" -k 3 --json > "$tmp/hs.json" 2> /dev/null
  check "hybrid is the default with a model" grep -q '"mode":"hybrid"' "$tmp/hs.json"
  check "hybrid finds the BM25 match" grep -q 'report.pdf' "$tmp/hs.json"
  rm -f "$VK.hnsw"
  "$YAN" kb search "$VK" oscillator --mode vector -k 2 > /dev/null 2> "$tmp/rb.err"
  check "a deleted index is rebuilt (and said)" grep -q "missing: rebuilding" "$tmp/rb.err"
  check "and saved again" test -s "$VK.hnsw"
  printf 'garbage' | dd of="$VK.hnsw" bs=1 seek=200 conv=notrunc 2> /dev/null
  "$YAN" kb search "$VK" oscillator --mode vector -k 2 > "$tmp/rb2.out" 2> "$tmp/rb2.err"
  check "a damaged index is rebuilt" bash -c "grep -q 'rebuilding' '$tmp/rb2.err' && grep -q '^1\.' '$tmp/rb2.out'"
  check "a search after the rebuild is quiet" bash -c "'$YAN' kb search '$VK' oscillator --mode vector -k 2 2>&1 >/dev/null | grep -vq rebuilding"
  expect_fail "another embedding model is refused" "not be comparable" "$YAN" kb add "$VK" "$D/notes" --embed-model "$M2"
  # a BM25 knowledge base gets a model later: the next add fills the vectors
  "$YAN" kb add "$VK.bm25" "$D/notes" > /dev/null 2>&1
  "$YAN" kb add "$VK.bm25" "$D/notes" --embed-model "$M" > "$tmp/att.out" 2> /dev/null
  check "attaching a model embeds existing chunks" grep -q "unchanged 3.*embedded" "$tmp/att.out"
  # the model file goes away: BM25 still answers, and the reason is given
  mv "$M" "$M.away"
  "$YAN" kb search "$VK" oscillator -k 1 > "$tmp/gone.out" 2> "$tmp/gone.err"
  check "model missing: hybrid falls back to BM25" bash -c "grep -q widget.html '$tmp/gone.out' && grep -q 'cannot be loaded' '$tmp/gone.err'"
  expect_fail "model missing: vector search says why" "cannot be loaded" "$YAN" kb search "$VK" oscillator --mode vector
  mv "$M.away" "$M"
  check "check with vectors" kbcheck "$VK"
fi

# ------------------------------------------------------------ kill -9, readers
C=$tmp/corpus
mkdir -p "$C"
big=$tmp/big.txt
for i in $(seq 1 12); do cat "$ROOT/data/sample.txt"; done > "$big"
for i in $(seq 1 400); do
  n=$(printf %04d "$i")
  { printf 'Document %s marker%s about everything.\n\n' "$n" "$n"; cat "$big"; } > "$C/doc$n.txt"
done
total=$(du -sm "$C" | cut -f1)
BK=$tmp/big.kb
"$YAN" kb add "$BK" "$C" -q > "$tmp/k1.out" 2> "$tmp/k1.err" &
pid=$!; bg_pids+=($pid)
# readers while the writer works
reader_fail=0; reads=0
for r in $(seq 1 30); do
  kill -0 $pid 2> /dev/null || break
  if [ -e "$BK" ]; then
    "$YAN" kb search "$BK" marker0001 everything -k 3 > /dev/null 2> "$tmp/r.err" || { reader_fail=1; cat "$tmp/r.err"; }
    "$YAN" kb check "$BK" > /dev/null 2> "$tmp/r.err" || { reader_fail=1; cat "$tmp/r.err"; }
    reads=$((reads + 1))
  fi
  sleep 0.05
done
kill -9 $pid 2> /dev/null; killed=$?
wait $pid 2> /dev/null
check "readers during the ingest: searches and checks succeed ($reads rounds)" test $reader_fail -eq 0 -a $reads -gt 0
if [ $killed -ne 0 ]; then
  skip "kill -9: the ingest of ${total} MB finished before the kill"
fi
n1=$(count_docs "$BK")
check "after kill -9: the database is consistent ($n1 of 400 documents)" kbcheck "$BK"
check "after kill -9: integrity_check ok" integrity "$BK"
"$YAN" kb add "$BK" "$C" -q > "$tmp/k2.out" 2> "$tmp/k2.err"
check "the re-run completes the work" grep -q "^added $((400 - n1)), updated 0, unchanged $n1, failed 0" "$tmp/k2.out"
check "all 400 documents" test "$(count_docs "$BK")" -eq 400
check "consistent after the re-run" kbcheck "$BK"
check "search after the re-run" bash -c "'$YAN' kb search '$BK' marker0400 -k 1 2>/dev/null | grep -q doc0400.txt"


# a file that disappears mid-ingest (listed last, removed while the first
# ones are read): named in a clear error, the others land
V=$tmp/vanish
mkdir -p "$V"
for i in $(seq 1 150); do n=$(printf %04d "$i"); cp "$C/doc$n.txt" "$V/doc$n.txt"; done
printf 'this file goes away\n' > "$V/zzzz-vanishing.txt"
"$YAN" kb add "$tmp/vanish.kb" "$V" -q > "$tmp/van.out" 2> "$tmp/van.err" &
pid=$!; bg_pids+=($pid)
sleep 0.3; rm -f "$V/zzzz-vanishing.txt"
wait $pid; rc=$?
if grep -q "^added 151," "$tmp/van.out"; then
  skip "vanishing file: the ingest read it before it was removed"
else
  check "a file gone mid-ingest: exit 1" test $rc -eq 1
  check "a file gone mid-ingest: named with the reason" grep -q "zzzz-vanishing.txt: cannot .*No such file" "$tmp/van.err"
  check "a file gone mid-ingest: the others landed" grep -q "^added 150, updated 0, unchanged 0, failed 1" "$tmp/van.out"
fi

finish
