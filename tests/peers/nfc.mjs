// nfc.mjs IN OUT — write the Unicode NFC normalisation of the UTF-8 file IN to OUT
// (what a tokenizer.json with an NFC normalizer, like Qwen's, encodes).
import fs from "node:fs";
import {readText, die} from "./common.mjs";
const [inp, out] = process.argv.slice(2);
if (!out) die("usage: nfc.mjs IN OUT");
fs.writeFileSync(out + ".tmp", readText(inp).normalize("NFC"));
fs.renameSync(out + ".tmp", out);
