#!/usr/bin/env bash
# test_train_torch.sh — yan's training model against PyTorch (Debian's
# python3-torch 1.13 under /usr/bin/python3). For each case
# build/tools/train_check writes a random llama model (GGUF, from
# yan_tmodel_to_gguf) and token batches; yan (the model loaded back with
# yan_tmodel_load_gguf) and tests/train/torch_ref.py (its own GGUF reader and
# a plain PyTorch llama) then compute the loss, the logits and every gradient
# of one batch, and 10 AdamW steps (clip_grad_norm_ at 1.0, a warm-up then
# cosine learning rate, no decay on the norms). Checked:
#  - loss within 1e-5 relative;
#  - logits: max |yan - torch| within 1e-4 of torch's logit range;
#  - every gradient: max |yan - torch| <= 1e-4 * max |torch| + 1e-8;
#  - the 10 AdamW losses (and gradient norms) within 1e-4 relative, step by step;
#  - 1 and 2 threads give byte-identical results.
# Cases: untied GQA (4 heads, 2 kv heads, 80 tokens: two attention blocks);
# tied with the shipped 8k vocabulary; masked targets (25% -1 and a whole
# row) with one kv head; fine-tuning batches made by yan_sft_load +
# yan_sft_batch from tests/train/chat_small.jsonl (English and Chinese chats
# in ChatML, one per row, padded, targets -1 outside the assistant replies);
# LoRA on an f32 base (frozen in PyTorch: requires_grad False) with adapters
# on all seven matrices (q, k, v, o, gate, up, down), B non-zero so that A
# gets a gradient: loss, logits, every adapter gradient and 10 AdamW steps
# over the adapters; LoRA on three targets with SFT batches.
# When llama.cpp is installed (node-llama-cpp, `scripts/peers.sh llama`;
# SKIP otherwise) it loads the untied and the tied model and its
# log-probabilities of the first sequence agree with the log-softmax of
# yan's training logits within 1e-3 of each position's logit range (its CPU
# kernels are not exact f32: ~1e-4 of the range at the first position); and
# it loads the LoRA case's base with its adapter file (llama.cpp's adapter
# loader, applied at run time as scale * B (A x)) and agrees with yan's
# LoRA training logits within 3e-3 of the range (the adapter doubles the
# logit range and the error with it).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
TC=$ROOT/build/tools/train_check
REF=$ROOT/tests/train/torch_ref.py
PY=${YAN_TORCH_PYTHON:-/usr/bin/python3}  # Debian python3-torch; the pyenv python3 on PATH has no torch
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -x "$TC" ] || make -s -C "$ROOT" build/tools/train_check > /dev/null 2>&1
if [ ! -x "$TC" ]; then
  bad "build/tools/train_check is missing (make tools)"
  finish
fi
if ! "$PY" -c 'import torch, numpy' > /dev/null 2>&1; then
  bad "$PY cannot import torch and numpy: install python3-torch python3-numpy (scripts/deps.sh test)"
  finish
fi

# case NAME GEN-OPTIONS...
case_() {
  local name=$1; shift
  local d=$tmp/$name
  if ! "$TC" gen "$d" "$@" > "$tmp/$name.gen" 2>&1; then
    bad "$name: train_check gen ($(tail -c 300 "$tmp/$name.gen"))"; return
  fi
  if ! "$TC" run "$d" "$d/yan1.bin" --threads 1 > "$tmp/$name.y1" 2>&1 ||
     ! "$TC" run "$d" "$d/yan2.bin" --threads 2 > "$tmp/$name.y2" 2>&1; then
    bad "$name: train_check run ($(tail -c 300 "$tmp/$name.y1" "$tmp/$name.y2"))"; return
  fi
  if cmp -s "$d/yan1.bin" "$d/yan2.bin"; then ok "$name: 1 and 2 threads give identical results"
  else bad "$name: 1 and 2 threads differ"; fi
  if ! "$PY" "$REF" run "$d" "$d/torch.bin" > "$tmp/$name.t" 2>&1; then
    bad "$name: torch_ref.py run ($(tail -c 400 "$tmp/$name.t"))"; return
  fi
  if "$PY" "$REF" compare "$d/torch.bin" "$d/yan2.bin" > "$tmp/$name.cmp" 2>&1; then
    ok "$name: loss, logits, gradients and 10 AdamW steps match PyTorch ($(grep -h '^loss' "$tmp/$name.y2" | cut -d';' -f1); $(grep '^worst' "$tmp/$name.cmp"))"
  else
    bad "$name: differs from PyTorch:"
    grep -v '^ok' "$tmp/$name.cmp" | head -20
  fi
}

# llama_ NAME [TOL]: llama.cpp on DIR/model.gguf (+ DIR/adapter.gguf when
# present), first sequence of batch 0
llama_() {
  local name=$1 d=$tmp/$1 tol=${2:-1e-3} lora=()
  [ -f "$d/adapter.gguf" ] && lora=(--lora "$d/adapter.gguf")
  if ! command -v node > /dev/null 2>&1 || [ ! -d "$CACHE/peers-llama/node_modules/node-llama-cpp" ]; then
    skip "$name: llama.cpp (node-llama-cpp) is not installed (scripts/peers.sh llama)"; return
  fi
  "$PY" - "$d" > "$d/ids.txt" <<'PYEOF'
import struct, sys
d = open(sys.argv[1] + "/batches.bin", "rb").read()
B, T = struct.unpack_from("<2i", d, 8)
ns = struct.unpack_from("<i", d, 20)[0]
print(" ".join(str(x) for x in struct.unpack_from("<%di" % T, d, 44 + 4 * ns)))
PYEOF
  if ! node "$ROOT/tests/peers/llama_peer.mjs" logprobs "$d/model.gguf" "$d/ids.txt" "$d/llama.bin" --kv f32 \
       --threads 2 "${lora[@]}" > "$tmp/$name.ll" 2>&1; then
    bad "$name: llama.cpp cannot evaluate the model ($(tail -c 300 "$tmp/$name.ll"))"; return
  fi
  local r
  r=$("$PY" - "$d" "$REF" <<'PYEOF'
import sys, importlib.util
import numpy as np
spec = importlib.util.spec_from_file_location("torch_ref", sys.argv[2])
t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t)
yan = t.read_records(sys.argv[1] + "/yan2.bin")
pe = np.fromfile(sys.argv[1] + "/llama.bin", "<f4")
n = len(open(sys.argv[1] + "/ids.txt").read().split())
V = pe.size // n
lg = yan["logits"][: n * V].reshape(n, V)
ls = lg - lg.max(1, keepdims=True)
ls -= np.log(np.exp(ls).sum(1, keepdims=True))
e = (np.abs(pe.reshape(n, V) - ls).max(1) / (lg.max(1) - lg.min(1))).max()
print("%.3g" % e)
PYEOF
)
  if "$PY" -c "import sys; sys.exit(0 if float('$r') <= $tol else 1)" 2> /dev/null; then
    ok "$name: llama.cpp loads the GGUF${lora:+ and the LoRA adapter}; log-probabilities within $r of the logit range"
  else
    bad "$name: llama.cpp log-probabilities differ by $r of the logit range"
  fi
}

case_ untied_gqa --dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 96 --batch 2 --seq 80 --seed 1
case_ tied_kjv8k --dim 32 --layers 2 --heads 2 --ff 64 --tied --vocab "$ROOT/models/kjv-8k.tokenizer.json" \
  --batch 2 --seq 16 --seed 2
llama_ untied_gqa
llama_ tied_kjv8k
case_ masked_mqa --dim 48 --layers 3 --heads 4 --kv-heads 1 --ff 80 --batch 3 --seq 40 --mask 0.25 --seed 3
CHAT=$ROOT/tests/train/chat_small.jsonl
case_ sft_batches --dim 32 --layers 2 --heads 2 --ff 64 --tied --vocab "$ROOT/models/kjv-8k.tokenizer.json" \
  --sft "$CHAT" --chat-template chatml --batch 3 --seq 128 --seed 5
case_ lora_all --dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 96 --batch 2 --seq 40 --seed 4 \
  --lora-rank 4 --lora-alpha 8 --lora-targets q,k,v,o,gate,up,down
llama_ lora_all 3e-3
case_ lora_sft --dim 48 --layers 2 --heads 4 --kv-heads 1 --ff 80 --vocab "$ROOT/models/kjv-8k.tokenizer.json" \
  --sft "$CHAT" --batch 2 --seq 128 --seed 6 --lora-rank 3 --lora-alpha 6 --lora-targets q,v,down

finish
