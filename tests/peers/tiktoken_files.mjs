// tiktoken_files.mjs NAME OUT — write OpenAI's NAME.tiktoken file ("base64 rank"
// lines in rank order) from npm tiktoken's encoders/NAME.json, whose bpe_ranks
// field is lines of "label firstRank b64 b64 ..." (token i of a line has rank
// firstRank+i). For the standard encodings the sha256 must match OpenAI's files.
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import {PEERS, die} from "./common.mjs";

const KNOWN = { // sha256 prefixes of OpenAI's published files
    r50k_base: "306cd27f",
    cl100k_base: "223921b7",
    o200k_base: "446a9538",
};
const [name, out] = process.argv.slice(2);
if (!name || !out) die("usage: tiktoken_files.mjs NAME OUT");
const src = path.join(PEERS, "node_modules/tiktoken/encoders", `${name}.json`);
const enc = JSON.parse(fs.readFileSync(src, "utf8"));
const byRank = [];
for (const line of enc.bpe_ranks.split("\n")) {
    if (!line) continue;
    const parts = line.split(" ");
    const first = Number(parts[1]);
    if (!Number.isInteger(first)) die(`${src}: bad line start ${JSON.stringify(line.slice(0, 40))}`);
    for (let i = 2; i < parts.length; i++) byRank.push([first + i - 2, parts[i]]);
}
byRank.sort((a, b) => a[0] - b[0]);
let text = "";
for (const [r, b64] of byRank) text += `${b64} ${r}\n`;
const sha = crypto.createHash("sha256").update(text).digest("hex");
if (KNOWN[name] && !sha.startsWith(KNOWN[name]))
    die(`${name}: sha256 ${sha} does not match OpenAI's ${KNOWN[name]}…`);
fs.mkdirSync(path.dirname(out), {recursive: true});
fs.writeFileSync(out + ".tmp", text);
fs.renameSync(out + ".tmp", out);
process.stderr.write(`tiktoken_files: ${out}: ${byRank.length} ranks, sha256 ${sha.slice(0, 16)}…\n`);
