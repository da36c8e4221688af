#!/usr/bin/env python3
"""spm_to_gguf.py MODEL OUT.gguf [--add-bos] — write the vocabulary of a
SentencePiece model (trained by spm_train) as a vocabulary-only GGUF v3 file in the
form llama.cpp reads for "llama" (SPM) tokenizers: tokenizer.ggml.{model, tokens,
scores, token_type, bos/eos/unknown_token_id, add_bos_token, add_eos_token,
add_space_prefix}. No tensors. Needs python3-sentencepiece (Debian)."""
import struct
import sys

import sentencepiece as spm

# GGUF value types
U32, I32, F32, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9
# tokenizer.ggml.token_type values
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
ALIGN = 32


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gstr(key) + struct.pack("<I", vtype)
    if vtype == STRING:
        return out + gstr(value)
    if vtype == U32:
        return out + struct.pack("<I", value)
    if vtype == BOOL:
        return out + struct.pack("<B", 1 if value else 0)
    raise ValueError(vtype)


def kv_array(key, etype, values):
    out = gstr(key) + struct.pack("<IIQ", ARRAY, etype, len(values))
    if etype == STRING:
        return out + b"".join(gstr(v) for v in values)
    if etype == F32:
        return out + struct.pack("<%df" % len(values), *values)
    if etype == I32:
        return out + struct.pack("<%di" % len(values), *values)
    raise ValueError(etype)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit("usage: spm_to_gguf.py MODEL OUT.gguf [--add-bos]")
    add_bos = "--add-bos" in sys.argv
    sp = spm.SentencePieceProcessor(model_file=args[0])
    n = sp.get_piece_size()
    tokens, scores, types = [], [], []
    for i in range(n):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            t = UNKNOWN
        elif sp.is_control(i):
            t = CONTROL
        elif sp.is_byte(i):
            t = BYTE
        elif sp.is_unused(i):
            t = UNUSED
        else:
            t = NORMAL
            # user-defined pieces are "normal" for the Python API; the proto knows
            # better, but spm_train here defines none
        types.append(t)

    def sid(x):
        return x if x >= 0 else None

    kvs = [
        kv("general.architecture", STRING, "llama"),
        kv("general.name", STRING, "yan-spm-test"),
        kv("general.alignment", U32, ALIGN),
        kv("tokenizer.ggml.model", STRING, "llama"),
        kv_array("tokenizer.ggml.tokens", STRING, tokens),
        kv_array("tokenizer.ggml.scores", F32, scores),
        kv_array("tokenizer.ggml.token_type", I32, types),
    ]
    for name, v in (("bos", sp.bos_id()), ("eos", sp.eos_id()), ("unknown", sp.unk_id()), ("padding", sp.pad_id())):
        if sid(v) is not None:
            kvs.append(kv("tokenizer.ggml.%s_token_id" % name, U32, v))
    kvs += [
        kv("tokenizer.ggml.add_bos_token", BOOL, add_bos),
        kv("tokenizer.ggml.add_eos_token", BOOL, False),
        kv("tokenizer.ggml.add_space_prefix", BOOL, True),
        kv("tokenizer.ggml.remove_extra_whitespaces", BOOL, False),
    ]
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs)
    data += b"\0" * ((ALIGN - len(data) % ALIGN) % ALIGN)
    with open(args[1] + ".tmp", "wb") as f:
        f.write(data)
    import os
    os.replace(args[1] + ".tmp", args[1])


if __name__ == "__main__":
    main()
