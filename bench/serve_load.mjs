// serve_load.mjs — a bounded load client for OpenAI-compatible servers
// (yan serve, llama-server): C concurrent clients each send streaming
// /v1/chat/completions requests until N requests are done (or the time
// limit passes), and the run is summarised as one JSON line: aggregate
// generated tokens/s, request latency p50/p99, time-to-first-token p50/p99.
// Loopback only: the URL must point at 127.0.0.0/8 or ::1.
//
//   node bench/serve_load.mjs URL C N [max_tokens=64] [limit_s=120] [model]
//
// Tokens are counted from the usage chunk (stream_options.include_usage)
// when the server sends one, else one per content chunk. Requests ask for
// ignore_eos so every server generates max_tokens (both yan and
// llama-server accept it); prompts differ per request (no shared prefix
// beyond the chat template).
const [url, cArg, nArg, mtArg, limArg, model] = process.argv.slice(2);
if (!url || !cArg || !nArg) {
  console.error("usage: node bench/serve_load.mjs URL CONCURRENCY REQUESTS [max_tokens] [limit_s] [model]");
  process.exit(2);
}
const host = new URL(url).hostname;
if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== "localhost" && host !== "[::1]" && host !== "::1") {
  console.error("serve_load.mjs: loopback addresses only");
  process.exit(2);
}
const C = Number(cArg), N = Number(nArg), maxTokens = Number(mtArg || 64), limit = Number(limArg || 120) * 1000;
const words = ["beginning", "light", "waters", "earth", "heaven", "evening", "morning", "firmament", "seed", "fruit",
               "stars", "night", "day", "seas", "grass", "whales", "cattle", "image", "rest", "garden"];

function prompt(i) {
  const w = [];
  for (let k = 0; k < 12; k++) w.push(words[(i * 7 + k * 3) % words.length]);
  return `Request ${i}: tell me about the ${w.join(" ")}.`;
}

async function one(i, t0) {
  const body = {messages: [{role: "user", content: prompt(i)}], max_tokens: maxTokens, temperature: 0.8, seed: i,
                stream: true, stream_options: {include_usage: true}, ignore_eos: true};
  if (model) body.model = model;
  const start = performance.now();
  const r = await fetch(url + "/v1/chat/completions", {method: "POST", headers: {"Content-Type": "application/json"},
                                                        body: JSON.stringify(body)});
  if (!r.ok) throw new Error(`HTTP ${r.status}: ${(await r.text()).slice(0, 200)}`);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "", first = 0, chunks = 0, usage = 0;
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buf += dec.decode(value, {stream: true});
    let at;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, at);
      buf = buf.slice(at + 2);
      for (const line of ev.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.usage && j.usage.completion_tokens) usage = j.usage.completion_tokens;
        for (const c of j.choices || []) {
          if (c.delta && c.delta.content) {
            if (!first) first = performance.now();
            chunks++;
          }
        }
      }
    }
    if (performance.now() - t0 > limit) { reader.cancel(); break; }
  }
  const end = performance.now();
  return {latency: (end - start) / 1000, ttft: first ? (first - start) / 1000 : NaN, tokens: usage || chunks};
}

function pct(a, p) {
  const s = a.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const t0 = performance.now();
let next = 0, errors = 0;
const results = [];
async function worker() {
  while (next < N && performance.now() - t0 < limit) {
    const i = next++;
    try { results.push(await one(i, t0)); } catch (e) { errors++; if (errors <= 3) console.error(String(e)); }
  }
}
await Promise.all(Array.from({length: C}, worker));
const secs = (performance.now() - t0) / 1000;
const tokens = results.reduce((a, r) => a + r.tokens, 0);
const r3 = (x) => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({
  concurrency: C, requests: results.length, errors, tokens, seconds: r3(secs), tok_s: Math.round((tokens / secs) * 10) / 10,
  latency_p50: r3(pct(results.map((r) => r.latency), 50)), latency_p99: r3(pct(results.map((r) => r.latency), 99)),
  ttft_p50: r3(pct(results.map((r) => r.ttft), 50)), ttft_p99: r3(pct(results.map((r) => r.ttft), 99)),
}));
