// embed_peer.mjs — llama.cpp (through node-llama-cpp, installed by
// `scripts/peers.sh llama` into <cache>/peers-llama) as the reference for
// yan's embeddings and its WordPiece tokenizer.
//
//   node embed_peer.mjs MODEL TEXTS.json [--ctx N] [--threads T]
//       TEXTS.json: a JSON array of strings. For each text prints, as one
//       JSON object {n_embd, vocab_type, items: [{ids, input, vector}]}:
//         ids    — model.tokenize(text): llama.cpp's tokenizer without
//                  special tokens (llama_tokenize, add_special = false);
//         input  — the tokens the embedding context evaluates: node-llama-cpp
//                  puts BOS ([CLS]) first and, for WordPiece vocabularies,
//                  SEP last (EOS when the vocabulary asks for it);
//         vector — LlamaEmbeddingContext.getEmbeddingFor(text): llama.cpp's
//                  pooled embedding (the model's pooling_type; for "none" the
//                  last token's state), not normalised.
import fs from "node:fs";
import {die, importLlamaCpp, takeOpt} from "./common.mjs";

const argv = process.argv.slice(2);
const opt = (name, def) => takeOpt(argv, name, def);
const threads = parseInt(opt("--threads", "2"), 10);
const nctx = parseInt(opt("--ctx", "512"), 10);
const [modelPath, textsFile] = argv;
if (!modelPath || !textsFile) die("usage: embed_peer.mjs MODEL TEXTS.json [--ctx N] [--threads T]");
const texts = JSON.parse(fs.readFileSync(textsFile, "utf8"));
if (!Array.isArray(texts) || texts.some(t => typeof t !== "string")) die(`${textsFile}: not a JSON array of strings`);

const {getLlama, LlamaLogLevel} = await importLlamaCpp();

const llama = await getLlama({gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createEmbeddingContext({contextSize: nctx, batchSize: nctx, threads});
const items = [];
for (const text of texts) {
    const ids = Array.from(model.tokenize(text, false), Number);
    const e = await ctx.getEmbeddingFor(text);
    items.push({ids, vector: Array.from(e.vector)});
}
// the evaluated input: rebuild it the way LlamaEmbeddingContext does
const bos = model.tokens.bos != null ? Number(model.tokens.bos) : null;
const sep = model.tokens.sep != null ? Number(model.tokens.sep) : null;
const eos = model.tokens.eos != null ? Number(model.tokens.eos) : null;
const vt = String(model.vocabularyType);
for (const it of items) {
    const inp = it.ids.slice();
    const first = vt === "wpm" ? bos : (model.tokens.shouldPrependBosToken ? bos : null);
    const last = vt === "wpm" ? sep : (model.tokens.shouldAppendEosToken ? eos : null);
    if (first != null && inp[0] !== first) inp.unshift(first);
    if (last != null && inp[inp.length - 1] !== last) inp.push(last);
    it.input = inp;
}
process.stdout.write(JSON.stringify({n_embd: model.embeddingVectorSize, vocab_type: vt, items}) + "\n");
await ctx.dispose();
await model.dispose();
await llama.dispose();
