#!/usr/bin/env python3
"""gen_adversarial.py OUTDIR — write the tokenizer stress texts, deterministically
(fixed seed, no input files):

  adversarial.txt  valid UTF-8 that every peer (tiktoken, gpt-3-encoder, transformers.js)
                   tokenizes the same way as the reference implementations: emoji with
                   ZWJ sequences and skin tones, decomposed accents, CJK punctuation,
                   Arabic/Hebrew, Hindi, Korean, Thai, long runs of spaces and tabs, CRLF,
                   lone CR, digits of every length, contractions in every case, Unicode
                   spaces, code, and random mixtures of all of these.
  unicode_ws.txt   U+0085 and U+FEFF in every context. JavaScript's \\s differs from
                   Unicode White_Space on exactly these two (JS: U+FEFF is space, U+0085
                   is not), so only the tiktoken peers (Rust regex) are valid for it.
  invalid.bin      invalid UTF-8 (stray continuation bytes, truncated sequences,
                   overlong forms, surrogates, 0xF5..0xFF) mixed with text: for the
                   round-trip test only.
"""
import os
import random
import sys

SEED = 20240229

EMOJI = [
    "\U0001F600", "\U0001F44D", "\U0001F44D\U0001F3FB", "\U0001F44D\U0001F3FF",
    "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466",   # family (ZWJ)
    "\U0001F469\U0001F3FD\u200D\U0001F4BB",                          # woman technologist, skin tone
    "\U0001F3F3\uFE0F\u200D\U0001F308",                              # rainbow flag
    "\U0001F1EB\U0001F1F7", "\U0001F1EF\U0001F1F5",                  # flags
    "1\uFE0F\u20E3", "#\uFE0F\u20E3", "\u2764\uFE0F", "\u263A", "\U0001F9D1\u200D\U0001F680",
    "\U0001F926\U0001F3FC\u200D\u2642\uFE0F", "\U0001F408\u200D\u2B1B", "\U0001FAE0",
]
COMBINING = [
    "e\u0301", "E\u0301", "a\u0308", "o\u0302\u0301", "n\u0303", "c\u0327", "A\u030A",
    "u\u0308\u0304", "i\u0307\u0301", "Z\u0335\u0321\u0358", "\u0301", "x\u20DD",
    "Cafe\u0301", "re\u0301sume\u0301", "na\u0131\u0308ve", "Pho\u031B\u0309",
    "Tie\u0302\u0301ng Vie\u0323\u0302t",
]
CJK = [
    "「你好」，世界！", "《红楼梦》第一回。", "他说：“今天天气很好。”", "【注意】……",
    "日本語のテキスト、カタカナ・ひらがな。", "（括号）〔方括号〕〈尖括号〉", "全角ＡＢＣ１２３！？",
    "〜～・｡｢｣､", "中文English混合123测试", "这是一个测试。这是第二句！",
]
RTL = [
    "مرحبا بالعالم", "السَّلَامُ عَلَيْكُمْ", "العربية ١٢٣٤٥٦٧٨٩٠", "שָׁלוֹם עוֹלָם", "עברית 2024",
    "(مرحبا) [שלום]", "\u200Fمرحبا\u200E", "ك،ب؛ج؟",
]
INDIC = ["नमस्ते दुनिया", "हिन्दी भाषा में परीक्षण।", "क्षत्रिय ज्ञान", "०१२३४५६७८९", "ਪੰਜਾਬੀ", "தமிழ்", "বাংলা"]
KOREAN = ["안녕하세요 세계", "한국어 텍스트입니다.", "\u1100\u1161\u11A8", "ㄱㄴㄷ ㅏㅑ", "韓國語 한글"]
THAI = ["สวัสดีชาวโลก", "ภาษาไทยไม่มีช่องว่างระหว่างคำ", "๑๒๓๔๕", "เกี่ยวกับ"]
CONTRACT = [
    "it's", "IT'S", "It'S", "we'll", "WE'LL", "We'Ll", "they're", "THEY'RE", "I've", "I'VE",
    "I'm", "I'M", "he'd", "HE'D", "don't", "DON'T", "Don'T", "it’s", "IT’S", "we’ll", "rock'n'roll",
    "'s", "'S", "'ll", "'LL", "'t", "'re", "'ve", "'m", "'d", "''s", "'''", "' s", "'x", "O'Neil",
    "dogs'", "the '90s", "'quoted'", "“double”", "’", "'123", "'é", "'\u00e9s",
]
SPACES = ["\u00A0", "\u3000", "\u2028", "\u2029", "\u2000", "\u2003", "\u2009", "\u200A",
          "\u202F", "\u205F", "\u1680", "\u200B", "\u2060", "\t", "\x0b", "\x0c"]
CODE = [
    "def f(x):\n    return x**2  # square\n", "int main(void) { return 0; }\r\n",
    "if (a && b || !c) {\n\tfoo_bar(1, 2.5e-3);\n}\n", "https://example.com/path?q=1&r=a%20b#frag",
    "x = [1,2,3]; y = {'k': \"v\"};", "<div class=\"a\">&amp;&lt;</div>", "$HOME/.config/~user",
    "SELECT * FROM t WHERE id=42;", "a+=b-=c*=d/=e", "...!!!???---___===***",
    "user@example.org", "0x7FFF_FFFF 0b1010 1e10 3.14159 -0.0 +1", "C:\\Windows\\System32",
]
WORDS = ("the quick brown fox jumps over the lazy dog and THE QUICK BROWN FOX "
         "Lorem ipsum dolor sit amet consectetur Über naïve façade coöperate "
         "Ελληνικά Русский язык Українська Қазақша ქართული Հայերեն").split()


def digits(rng):
    out = []
    for n in range(1, 41):
        out.append("".join(rng.choice("0123456789") for _ in range(n)))
    out += ["1,234,567", "3.14", "2024-02-29", "12:30:45", "٣٤٥", "१२३", "½ ¼ ¾", "²³¹", "Ⅻ ⅻ", "①②③", "１２３４"]
    return out


def whitespace_run(rng):
    kind = rng.randrange(8)
    n = rng.choice([1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 64, 200])
    if kind == 0:
        return " " * n
    if kind == 1:
        return "\t" * n
    if kind == 2:
        return "".join(rng.choice(" \t") for _ in range(n))
    if kind == 3:
        return "\r\n" * rng.randint(1, 4)
    if kind == 4:
        return "\r" * rng.randint(1, 3)
    if kind == 5:
        return " " * n + "\n" + " " * rng.randint(0, 5)
    if kind == 6:
        return "\n" * rng.randint(1, 5)
    return "".join(rng.choice([" ", "\t", "\n", "\r\n", "\u00A0", "\u3000", "\u2028"]) for _ in range(rng.randint(1, 12)))


def fragment(rng, pools):
    p = rng.choice(pools)
    return rng.choice(p) if isinstance(p, list) else p(rng)


def adversarial(rng):
    dig = digits(rng)
    pools = [EMOJI, COMBINING, CJK, RTL, INDIC, KOREAN, THAI, CONTRACT, SPACES, CODE, WORDS, WORDS, WORDS, dig,
             whitespace_run]
    parts = []
    # 1. every fragment alone on a line, then inside a sentence
    for pool in (EMOJI, COMBINING, CJK, RTL, INDIC, KOREAN, THAI, CONTRACT, CODE, dig):
        for f in pool:
            parts.append(f + "\n")
            parts.append(f"Before {f} after.\n")
    for s in SPACES:
        name = "U+%04X" % ord(s)
        parts.append(f"space {name}:{s}|a{s}b|a {s} b|{s}{s}x|end{s}\n")
        parts.append(f"{s}\n{s}{s}\n")
    # 2. whitespace structures
    for n in (1, 2, 3, 4, 8, 16, 33, 100, 257):
        parts.append("x" + " " * n + "y\n")
        parts.append("x" + "\t" * n + "y\n")
        parts.append(" " * n + "\n")
        parts.append("a" + " " * n)
        parts.append("\n")
    parts.append("line one\r\nline two\r\n\r\nline four\rline five\r\rend\n")
    parts.append("trailing spaces   \n\n\n   leading spaces\n \n  \n\t\n")
    # 3. digits of every length, glued to letters and punctuation
    for d in dig:
        parts.append(f"{d} x{d}y {d}.{d} ({d}) -{d}\n")
    # 4. contractions in context
    for c in CONTRACT:
        parts.append(f"{c} {c.upper()} {c.lower()} x{c} {c}{c}\n")
    # 5. random mixtures
    for _ in range(3000):
        k = rng.randint(1, 6)
        sep = rng.choice(["", " ", " ", "  ", "\n", "\t"])
        parts.append(sep.join(fragment(rng, pools) for _ in range(k)))
        parts.append(rng.choice([" ", "\n", "", ". ", "\r\n"]))
    # 6. a character soup from the pools, byte-level hostile but valid
    soup = "".join(EMOJI + COMBINING + CJK + RTL + INDIC + KOREAN + THAI + SPACES)
    chars = list(soup)
    for _ in range(200):
        parts.append("".join(rng.choice(chars) for _ in range(rng.randint(1, 30))) + "\n")
    return "".join(parts)


def unicode_ws(rng):
    parts = []
    for c in ("\u0085", "\uFEFF"):
        ctx = ["a", "A", "1", ".", " ", "  ", "\t", "\n", "\r\n", "é", "中", "'s", "!", c, "\u00A0"]
        for l in ctx:
            for r in ctx:
                parts.append(f"{l}{c}{r}|{l}{c}{c}{r}\n")
        for _ in range(300):
            parts.append("".join(rng.choice(ctx + [c, c, " word", "x"]) for _ in range(rng.randint(1, 10))) + "\n")
    return "".join(parts)


def invalid(rng):
    bad = [b"\x80", b"\xbf", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
           b"\xf0\x80\x80\xaf", b"\xf4\x90\x80\x80", b"\xf5", b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff",
           b"\xc3", b"\xe4\xb8", b"\xf0\x9f\x98", b"\xe4", b"\x00", b"\x01\x02\x1b[0m"]
    good = [b"hello", b" world", b"\xe4\xb8\xad\xe6\x96\x87", b"\xf0\x9f\x98\x80", b"\n", b"  ", b"it's",
            b"123456", b"\r\n", b"\xc3\xa9"]
    out = bytearray()
    for b in bad:  # each alone and between text
        out += b + b"\n" + b"x" + b + b"y " + b + b" \n"
    for _ in range(4000):
        out += rng.choice(bad) if rng.random() < 0.4 else rng.choice(good)
    out += b"\xe4\xb8"  # ends inside a character
    return bytes(out)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_adversarial.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(SEED)
    files = {
        "adversarial.txt": adversarial(rng).encode("utf-8"),
        "unicode_ws.txt": unicode_ws(rng).encode("utf-8"),
        "invalid.bin": invalid(rng),
    }
    for name, data in files.items():
        tmp = os.path.join(outdir, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(outdir, name))


if __name__ == "__main__":
    main()
