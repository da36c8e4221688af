// llama_peer.mjs — llama.cpp (through node-llama-cpp, installed by
// `scripts/peers.sh llama` into <cache>/peers-llama) as the reference for
// yan's inference numbers.
//
//   node llama_peer.mjs logprobs MODEL IDS OUT.bin [--gen N] [--kv f16|f32] [--threads T]
//                        [--lora ADAPTER [--lora-scale S]]
//       IDS: a file of token ids (whitespace separated). Evaluates them from
//       position 0 and writes, for every position i, log p(. | ids[0..i]) over
//       the whole vocabulary: n_ids * n_vocab float32 (little-endian) to OUT.bin.
//       Then continues greedily for N tokens (argmax, lowest id on ties).
//       Prints one JSON line: {n_vocab, n_ids, greedy: [...], seconds}.
//       --lora: the context applies that LoRA adapter (llama.cpp's GGUF
//       adapter format) at scale S (default 1), as llama.cpp's --lora does.
//   node llama_peer.mjs ppl MODEL TEXT --ctx N [--chunks K] [--kv f16|f32]
//       llama.cpp's perplexity recipe: tokenize TEXT with llama.cpp's own
//       tokenizer (BOS first when the vocabulary asks for it), cut it into
//       non-overlapping windows of N tokens (the first token of each window
//       becomes BOS when the vocabulary adds BOS), and score positions
//       N/2 .. N-2 of each window (each predicts the next token). Prints
//       {ppl, n_tokens, n_chunks, n_scored, seconds}.
//
// node-llama-cpp gives probabilities, not raw logits: it softmaxes the logits
// in float32 (AddonContext.cpp), so log(p) is the log-softmax up to float
// rounding; a probability that underflows to 0 is written as -inf.
import path from "node:path";
import fs from "node:fs";
import {die, importLlamaCpp, takeOpt} from "./common.mjs";

const argv = process.argv.slice(2);
const opt = (name, def) => takeOpt(argv, name, def);
const gen = parseInt(opt("--gen", "0"), 10);
const kv = opt("--kv", "f16").toUpperCase();
const threads = parseInt(opt("--threads", "2"), 10);
const nctxArg = parseInt(opt("--ctx", "0"), 10);
const chunksArg = parseInt(opt("--chunks", "0"), 10);
const loraPath = opt("--lora", null);
const loraScale = parseFloat(opt("--lora-scale", "1"));
const [mode, modelPath, ...rest] = argv;
if (!mode || !modelPath) die("usage: llama_peer.mjs logprobs MODEL IDS OUT.bin [--gen N] | ppl MODEL TEXT --ctx N");

const {getLlama, LlamaLogLevel} = await importLlamaCpp();

const t0 = performance.now();
const llama = await getLlama({gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0});

async function newSequence(contextSize) {
    const ctx = await model.createContext({
        contextSize, threads, batchSize: Math.min(contextSize, 512),
        experimentalKvCacheKeyType: kv, experimentalKvCacheValueType: kv,
        ...(loraPath ? {lora: {adapters: [{filePath: path.resolve(loraPath), scale: loraScale}]}} : {}),
    });
    return {ctx, seq: ctx.getSequence()};
}

// log-probabilities of one position as a Float32Array of n_vocab (argmax too)
function toLogprobs(map, nv) {
    const out = new Float32Array(nv).fill(-Infinity);
    let best = -1, bestP = -1;
    for (const [tok, p] of map) {
        if (tok < 0 || tok >= nv) die(`token id ${tok} outside the vocabulary (${nv})`);
        out[tok] = p > 0 ? Math.log(p) : -Infinity;
        if (p > bestP || (p === bestP && tok < best)) { bestP = p; best = tok; }
    }
    return {lp: out, best};
}

const next = {generateNext: {probabilities: true}};

if (mode === "logprobs") {
    const [idsFile, outFile] = rest;
    if (!idsFile || !outFile) die("logprobs needs IDS and OUT.bin");
    const ids = fs.readFileSync(idsFile, "utf8").trim().split(/\s+/).map(Number);
    if (ids.some(x => !Number.isInteger(x) || x < 0)) die(`${idsFile}: not a list of token ids`);
    const {seq} = await newSequence(Math.max(256, ids.length + gen + 8));
    const res = await seq.controlledEvaluate(ids.map(t => [t, next]));
    // the vocabulary size: the number of tokens llama.cpp softmaxes over
    const n_vocab = res[res.length - 1].next.probabilities.size;
    const fd = fs.openSync(outFile, "w");
    let best = -1;
    for (let i = 0; i < ids.length; i++) {
        const map = res[i]?.next?.probabilities;
        if (!map) die(`no probabilities at position ${i}`);
        if (map.size !== n_vocab) die(`position ${i}: ${map.size} probabilities, expected ${n_vocab} (sampler truncated?)`);
        const r = toLogprobs(map, n_vocab);
        fs.writeSync(fd, Buffer.from(r.lp.buffer));
        best = r.best;
    }
    fs.closeSync(fd);
    const greedy = [];
    for (let k = 0; k < gen; k++) {
        greedy.push(best);
        if (k + 1 === gen) break;
        const r2 = await seq.controlledEvaluate([[best, next]]);
        best = toLogprobs(r2[0].next.probabilities, n_vocab).best;
    }
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(JSON.stringify({n_vocab, n_ids: ids.length, greedy, seconds}) + "\n");
} else if (mode === "ppl") {
    const [textFile] = rest;
    if (!textFile || !nctxArg) die("ppl needs TEXT and --ctx N");
    const text = fs.readFileSync(textFile, "utf8");
    const tokens = model.tokenize(text, false);
    const bos = model.tokens.bos;
    const addBos = model.tokens.shouldPrependBosToken && bos != null;
    const n = nctxArg;
    let nChunks = Math.floor(tokens.length / n);
    if (chunksArg > 0) nChunks = Math.min(nChunks, chunksArg);
    if (nChunks < 1) die(`${textFile}: ${tokens.length} tokens, fewer than one window of ${n}`);
    const first = Math.floor(n / 2);
    let nll = 0, count = 0;
    const {seq} = await newSequence(n);
    for (let c = 0; c < nChunks; c++) {
        const win = tokens.slice(c * n, (c + 1) * n).map(Number);
        if (addBos) win[0] = Number(bos);
        await seq.clearHistory();
        const res = await seq.controlledEvaluate(win.map((t, j) => (j >= first && j < n - 1) ? [t, next] : t));
        for (let j = first; j < n - 1; j++) {
            const map = res[j].next.probabilities;
            const p = map.get(win[j + 1]) ?? 0;
            nll += -Math.log(Math.max(p, 1e-45));
            count++;
        }
    }
    const ppl = Math.exp(nll / count);
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(JSON.stringify({ppl, n_tokens: tokens.length, n_chunks: nChunks, n_scored: count, seconds}) + "\n");
} else {
    die(`unknown mode ${mode}`);
}
await model.dispose();
await llama.dispose();
