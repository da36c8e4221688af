#!/usr/bin/env python3
"""gen_unicode.py — generate src/tokenizer/unicode_data.c from the Unicode
Character Database (the Debian unicode-data package, /usr/share/unicode/).

Tables written (all const, two-stage: stage1[cp >> SHIFT] picks a block of
stage2 values, so identical blocks are stored once):
  - category class per code point (0 = other, or one of Lu Ll Lt Lm Lo M N WS);
  - NFC record per code point: index into a small table of
    {ccc, NFC_QC, has canonical decomposition};
  - full canonical decompositions (recursively expanded, Hangul excluded);
  - primary composition pairs (Full_Composition_Exclusion honoured).

Usage: python3 tools/gen_unicode.py [UCD_DIR] > src/tokenizer/unicode_data.c
"""
import os
import re
import sys

UCD = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
MAXCP = 0x110000


def read(name):
    with open(os.path.join(UCD, name), encoding="utf-8") as f:
        return f.read()


def version():
    m = re.search(r"PropList-(\d+\.\d+\.\d+)\.txt", read("PropList.txt"))
    if not m:
        sys.exit("cannot find the Unicode version in PropList.txt")
    return m.group(1)


def parse_ranges(text, want):
    """Yield (lo, hi, value) for lines 'XXXX(..YYYY) ; prop (; value)'."""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        f = [x.strip() for x in line.split(";")]
        if f[1] != want:
            continue
        r = f[0].split("..")
        lo = int(r[0], 16)
        hi = int(r[1], 16) if len(r) > 1 else lo
        yield lo, hi, (f[2] if len(f) > 2 else None)


# ------------------------------------------------------------ UnicodeData.txt
gc = ["Cn"] * MAXCP
ccc = [0] * MAXCP
decomp = {}  # cp -> list of cps (canonical only)
first = None
for line in read("UnicodeData.txt").splitlines():
    f = line.split(";")
    cp = int(f[0], 16)
    name = f[1]
    if name.endswith(", First>"):
        first = cp
        continue
    if name.endswith(", Last>"):
        for c in range(first, cp + 1):
            gc[c] = f[2]
            ccc[c] = int(f[3])
        continue
    gc[cp] = f[2]
    ccc[cp] = int(f[3])
    d = f[5]
    if d and not d.startswith("<"):
        decomp[cp] = [int(x, 16) for x in d.split()]

# ------------------------------------------------------------- properties
white = [False] * MAXCP
for lo, hi, _ in parse_ranges(read("PropList.txt"), "White_Space"):
    for c in range(lo, hi + 1):
        white[c] = True

dnp = read("DerivedNormalizationProps.txt")
nfc_qc = [0] * MAXCP  # 0 yes, 1 no, 2 maybe
for lo, hi, v in parse_ranges(dnp, "NFC_QC"):
    for c in range(lo, hi + 1):
        nfc_qc[c] = 1 if v == "N" else 2
fce = set()
for lo, hi, _ in parse_ranges(dnp, "Full_Composition_Exclusion"):
    fce.update(range(lo, hi + 1))

# ------------------------------------------------------------ category class
CLASSES = ["OTHER", "LU", "LL", "LT", "LM", "LO", "M", "N", "WS"]
GC_CLASS = {"Lu": 1, "Ll": 2, "Lt": 3, "Lm": 4, "Lo": 5, "Mn": 6, "Mc": 6, "Me": 6,
            "Nd": 7, "Nl": 7, "No": 7}
cls = [0] * MAXCP
for c in range(MAXCP):
    if white[c]:
        assert gc[c] not in GC_CLASS, hex(c)
        cls[c] = 8
    else:
        cls[c] = GC_CLASS.get(gc[c], 0)

# ----------------------------------------------------------------- NFC info
def full_decomp(c):
    if c not in decomp:
        return [c]
    out = []
    for x in decomp[c]:
        out.extend(full_decomp(x))
    return out


nfc_recs = []
rec_index = {}
nfc = [0] * MAXCP
for c in range(MAXCP):
    key = (ccc[c], nfc_qc[c], 1 if c in decomp else 0)
    if key not in rec_index:
        rec_index[key] = len(nfc_recs)
        nfc_recs.append(key)
    nfc[c] = rec_index[key]
assert rec_index[(0, 0, 0)] == 0
assert len(nfc_recs) < 256

decomp_list = sorted(decomp)
pool = []
decomp_entries = []
for c in decomp_list:
    fd = full_decomp(c)
    assert len(fd) <= 4
    decomp_entries.append((c, len(pool), len(fd)))
    pool.extend(fd)
assert len(pool) < 65536

pairs = []
for c, d in decomp.items():
    if len(d) == 2 and c not in fce:
        pairs.append(((d[0] << 21) | d[1], c))
pairs.sort()

# sanity: the fast paths in unicode.h / unicode.c rely on these
for c in range(0x300):
    assert nfc[c] == 0 or (ccc[c] == 0 and nfc_qc[c] == 0), hex(c)


# ------------------------------------------------------------ two-stage
def two_stage(values, shift):
    size = 1 << shift
    blocks = {}
    stage1 = []
    stage2 = []
    for b in range(0, MAXCP, size):
        blk = tuple(values[b:b + size])
        if blk not in blocks:
            blocks[blk] = len(stage2) // size
            stage2.extend(blk)
        stage1.append(blocks[blk])
    return stage1, stage2


SHIFT = 7  # must equal YAN_UC_SHIFT in unicode.h (smallest tables for 15.0)


def best(values):
    s1, s2 = two_stage(values, SHIFT)
    assert max(s1) < 256, "stage1 no longer fits uint8_t: widen it in unicode.h"
    return SHIFT, s1, s2


def emit_array(out, ctype, name, vals, per=16):
    out.append("const %s %s[%d] = {" % (ctype, name, len(vals)))
    for i in range(0, len(vals), per):
        out.append("    " + ",".join(str(v) for v in vals[i:i + per]) + ",")
    out.append("};")


def main():
    out = []
    ver = version()
    out.append("/* unicode_data.c — GENERATED by tools/gen_unicode.py from the Unicode")
    out.append(" * Character Database %s (UnicodeData.txt, PropList.txt," % ver)
    out.append(" * DerivedNormalizationProps.txt). Do not edit; rerun the generator. */")
    out.append('#include "tokenizer/unicode.h"')
    out.append("")
    out.append("#if YAN_UC_TABLE_VERSION != 1")
    out.append("#error unicode.h and unicode_data.c disagree: rerun tools/gen_unicode.py")
    out.append("#endif")
    out.append("")
    out.append('#define YAN_UNICODE_VERSION "%s"' % ver)
    out.append("const char yan_uc_version[] = YAN_UNICODE_VERSION;")
    out.append("")
    shift, s1, s2 = best(cls)
    out.append("#if YAN_UC_SHIFT != %d" % shift)
    out.append("#error YAN_UC_SHIFT disagrees with the generator")
    out.append("#endif")
    emit_array(out, "uint8_t", "yan_uc_cls_stage1", s1)
    emit_array(out, "uint8_t", "yan_uc_cls_stage2", s2, 32)
    out.append("")
    shift, s1, s2 = best(nfc)
    emit_array(out, "uint8_t", "yan_uc_nfc_stage1", s1)
    emit_array(out, "uint8_t", "yan_uc_nfc_stage2", s2, 32)
    out.append("")
    out.append("/* {ccc, NFC_QC (0 yes, 1 no, 2 maybe), has canonical decomposition} */")
    out.append("const yan_uc_nfc_rec yan_uc_nfc_recs[%d] = {" % len(nfc_recs))
    for r in nfc_recs:
        out.append("    {%d, %d, %d}," % r)
    out.append("};")
    out.append("")
    out.append("/* {code point, offset in yan_uc_decomp_pool, length}, sorted by code point */")
    out.append("const yan_uc_decomp yan_uc_decomps[%d] = {" % len(decomp_entries))
    for e in decomp_entries:
        out.append("    {0x%04X, %d, %d}," % e)
    out.append("};")
    out.append("const size_t yan_uc_n_decomps = %d;" % len(decomp_entries))
    out.append("const uint32_t yan_uc_decomp_pool[%d] = {" % len(pool))
    for i in range(0, len(pool), 10):
        out.append("    " + ",".join("0x%04X" % v for v in pool[i:i + 10]) + ",")
    out.append("};")
    out.append("")
    out.append("/* {(first << 21) | second, composite}, sorted by key */")
    out.append("const yan_uc_pair yan_uc_pairs[%d] = {" % len(pairs))
    for k, c in pairs:
        out.append("    {0x%011XULL, 0x%04X}," % (k, c))
    out.append("};")
    out.append("const size_t yan_uc_n_pairs = %d;" % len(pairs))
    sys.stdout.write("\n".join(out) + "\n")
    sys.stderr.write("unicode %s: %d decompositions, %d pairs, %d nfc records\n"
                     % (ver, len(decomp_entries), len(pairs), len(nfc_recs)))


main()
