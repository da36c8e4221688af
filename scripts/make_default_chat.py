#!/usr/bin/env python3
"""make_default_chat.py KJV.txt POEMS.txt OUT.jsonl — chat turns for the
built-in model's fine-tuning, made from its own pretraining texts (OpenAI
`messages` JSONL):
  - "Continue: <the first words of a verse>" -> the rest of the verse;
  - "请背诵《title》" / "Recite 《title》" -> the poem; "《title》的作者是谁？" -> the author.
Deterministic (fixed seed)."""
import json
import random
import sys


def poems(path):
    """(title, author, body) from blocks: 《title》 / 作者：name / lines."""
    out = []
    for block in open(path, encoding="utf-8").read().split("\n\n"):
        lines = [l.strip() for l in block.strip().split("\n") if l.strip()]
        if len(lines) < 3 or not lines[0].startswith("《"):
            continue
        author = lines[1].split("：", 1)[1] if lines[1].startswith("作者：") else ""
        out.append((lines[0], author, "\n".join(lines[2:] if author else lines[1:])))
    return out


def main():
    kjv, poems_path, out = sys.argv[1:4]
    rng = random.Random(7)
    verses = [l.strip() for l in open(kjv, encoding="utf-8") if len(l.split()) >= 8]
    conv = []
    for v in rng.sample(verses, 6000):
        words = v.split()
        cut = rng.randint(3, len(words) // 2 + 1)
        conv.append([("user", "Continue: " + " ".join(words[:cut])), ("assistant", " ".join(words[cut:]))])
    for title, author, body in poems(poems_path):
        for _ in range(3):
            conv.append([("user", rng.choice(["请背诵" + title, "Recite " + title, title])), ("assistant", body)])
        if author:
            conv.append([("user", title + "的作者是谁？"), ("assistant", author)])
    rng.shuffle(conv)
    with open(out, "w", encoding="utf-8") as f:
        for c in conv:
            f.write(json.dumps({"messages": [{"role": r, "content": t} for r, t in c]}, ensure_ascii=False) + "\n")
    print(f"{out}: {len(conv)} conversations")


if __name__ == "__main__":
    main()
