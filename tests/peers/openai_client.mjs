// openai_client.mjs — the official OpenAI SDK (npm `openai`, installed by
// `scripts/peers.sh openai` into <cache>/peers-openai) as the real client of
// `yan serve`. Prints "ok   <check>" / "FAIL <check>: detail" lines and
// closes with "N passed, N failed" (tests/e2e/test_serve.sh adds them up).
//
//   node openai_client.mjs main      BASE_URL KEY   the API: chat, completions, embeddings, models,
//                                                    moderations, tokenize, seeds, n, stop, JSON mode,
//                                                    logprobs, errors as the SDK's classes, batching
//                                                    equivalence, disconnect frees the slot
//   node openai_client.mjs ratelimit BASE_URL KEY   the 429 path (a server with --rate-limit-rpm 2)
//   node openai_client.mjs proxy     BASE_URL KEY MODEL   a model served through --upstream
//
// BASE_URL is the server root (http://127.0.0.1:PORT); the SDK gets BASE_URL/v1.
import {createRequire} from "node:module";
import path from "node:path";
import {fileURLToPath} from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CACHE = process.env.YAN_CACHE || path.join(ROOT, ".cache");
const req = createRequire(path.join(CACHE, "peers-openai", "package.json"));
const openai = req("openai");
const OpenAI = openai.default || openai.OpenAI;

const [mode, base, key, extra] = process.argv.slice(2);
const client = new OpenAI({baseURL: base + "/v1", apiKey: key || "none", maxRetries: 0, timeout: 120000});

let passed = 0, failed = 0;
function ok(name) { passed++; console.log("ok   " + name); }
function bad(name, why) { failed++; console.log("FAIL " + name + (why ? ": " + why : "")); }
function check(name, cond, why) { cond ? ok(name) : bad(name, why); }
async function step(name, fn) {
  try { await fn(); } catch (e) { bad(name, (e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : String(e))); }
}
// expect(name, ErrorClass, fn, more?): fn must throw that SDK class
async function expectError(name, cls, fn, more) {
  try {
    await fn();
    bad(name, "no error");
  } catch (e) {
    if (!(e instanceof cls)) return bad(name, `got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
    if (more) {
      const why = more(e);
      if (why) return bad(name, why);
    }
    ok(name);
  }
}
async function raw(pathname, body, headers = {}) {
  const r = await fetch(base + pathname, {
    method: body === undefined ? "GET" : "POST",
    headers: {"Content-Type": "application/json", ...(key ? {Authorization: "Bearer " + key} : {}), ...headers},
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return r;
}
async function metric(name) {
  const t = await (await raw("/metrics")).text();
  const line = t.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.slice(name.length + 1)) : NaN;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const USER = [{role: "user", content: "In the beginning God created"}];

async function streamChat(params, opts) {
  const s = await client.chat.completions.create({...params, stream: true}, opts);
  const texts = [], finish = [];
  let usage = null, first = null, nChunks = 0;
  for await (const ch of s) {
    nChunks++;
    if (!first) first = ch;
    if (ch.usage) usage = ch.usage;
    for (const c of ch.choices) {
      texts[c.index] = (texts[c.index] || "") + (c.delta.content || "");
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  return {texts, finish, usage, first, nChunks};
}

async function main() {
  let model = null;
  await step("models.list", async () => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    model = ids[0];
    check("models.list returns the hosted model", ids.length >= 1 && typeof model === "string", JSON.stringify(ids));
    const one = await client.models.retrieve(model);
    check("models.retrieve", one.id === model && one.object === "model");
  });

  let greedy = "";
  await step("chat", async () => {
    const r = await client.chat.completions.create({model, messages: USER, max_tokens: 24, temperature: 0});
    greedy = r.choices[0].message.content;
    check("chat: a completion object", r.object === "chat.completion" && r.id.startsWith("chatcmpl-"));
    check("chat: assistant message with text", r.choices[0].message.role === "assistant" && greedy.length > 0);
    check("chat: finish_reason length or stop", ["length", "stop", "content_filter"].includes(r.choices[0].finish_reason));
    check("chat: usage adds up", r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0 &&
          r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, JSON.stringify(r.usage));
    check("chat: max_tokens bounds the completion", r.usage.completion_tokens <= 24);
  });

  await step("chat stream", async () => {
    const r = await streamChat({model, messages: USER, max_tokens: 24, temperature: 0, stream_options: {include_usage: true}});
    check("stream: first chunk carries the role", r.first && r.first.choices[0].delta.role === "assistant");
    check("stream: text equals the non-streamed text", r.texts[0] === greedy, JSON.stringify([r.texts[0], greedy]));
    check("stream: a finish_reason arrives", !!r.finish[0]);
    check("stream: include_usage sends a usage chunk", r.usage && r.usage.completion_tokens > 0);
    check("stream: several chunks", r.nChunks >= 3, String(r.nChunks));
  });

  await step("completions", async () => {
    const r = await client.completions.create({model, prompt: "In the beginning", max_tokens: 16, temperature: 0});
    check("completions: text_completion with text", r.object === "text_completion" && r.choices[0].text.length > 0);
    const s = await client.completions.create({model, prompt: "In the beginning", max_tokens: 16, temperature: 0, stream: true});
    let t = "";
    for await (const ch of s) t += ch.choices.length ? ch.choices[0].text : "";
    check("completions: stream equals non-stream", t === r.choices[0].text, JSON.stringify([t, r.choices[0].text]));
    const lp = await client.completions.create({model, prompt: "In the beginning", max_tokens: 5, temperature: 0, logprobs: 2});
    const L = lp.choices[0].logprobs;
    check("completions: logprobs per token", L && L.tokens.length === lp.usage.completion_tokens &&
          L.token_logprobs.every((x) => x <= 0) && L.top_logprobs.every((m) => Object.keys(m).length >= 1),
          JSON.stringify(L).slice(0, 300));
    const echo = await client.completions.create({model, prompt: "In the beginning", max_tokens: 4, temperature: 0, echo: true});
    check("completions: echo prepends the prompt", echo.choices[0].text.startsWith("In the beginning"));
    const tk = await client.completions.create({model, prompt: [1, 2, 3], max_tokens: 4, temperature: 0});
    check("completions: a token-array prompt", tk.usage.prompt_tokens === 3, JSON.stringify(tk.usage));
  });

  await step("embeddings", async () => {
    const e = await client.embeddings.create({model, input: ["hello world", "In the beginning"]});
    const v = e.data[0].embedding;
    const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    check("embeddings: one vector per input (base64 decoded by the SDK)", e.data.length === 2 && v.length > 0 &&
          e.data[1].embedding.length === v.length);
    check("embeddings: L2-normalised", Math.abs(norm - 1) < 1e-3, String(norm));
    const f = await client.embeddings.create({model, input: "hello world", encoding_format: "float"});
    const same = f.data[0].embedding.every((x, i) => Math.abs(x - v[i]) < 1e-6);
    check("embeddings: float and base64 agree, same input same vector", same);
    const t = await client.embeddings.create({model, input: [[1, 2, 3]], encoding_format: "float"});
    check("embeddings: token input", t.data.length === 1 && t.usage.prompt_tokens === 3);
  });

  await step("moderations", async () => {
    const m = await client.moderations.create({input: ["I will kill you", "What a lovely morning"]});
    check("moderations: threat flagged", m.results[0].flagged === true && m.results[0].categories["harassment/threatening"] !== undefined);
    check("moderations: benign text not flagged", m.results[1].flagged === false);
  });

  await step("tokenize", async () => {
    const t = await (await raw("/tokenize", {content: "In the beginning"})).json();
    check("tokenize: ids", Array.isArray(t.tokens) && t.tokens.length > 0 && t.tokens.every(Number.isInteger));
    const d = await (await raw("/detokenize", {tokens: t.tokens})).json();
    check("detokenize: round trip", d.content === "In the beginning", JSON.stringify(d));
    const p = await (await raw("/tokenize", {content: "In the", with_pieces: true})).json();
    check("tokenize: with_pieces", p.tokens.map((x) => x.piece).join("") === "In the");
  });

  await step("seeds", async () => {
    const q = {model, messages: USER, max_tokens: 16, temperature: 1, top_p: 1};
    const a = await client.chat.completions.create({...q, seed: 11});
    const b = await client.chat.completions.create({...q, seed: 11});
    const c = await client.chat.completions.create({...q, seed: 12});
    check("seed: same seed, same text", a.choices[0].message.content === b.choices[0].message.content);
    check("seed: another seed, another text", a.choices[0].message.content !== c.choices[0].message.content);
  });

  await step("n=2", async () => {
    const q = {model, messages: USER, max_tokens: 12, temperature: 1, seed: 5};
    const two = await client.chat.completions.create({...q, n: 2});
    const one = await client.chat.completions.create(q);
    check("n=2: two choices with indexes 0 and 1", two.choices.length === 2 && two.choices[1].index === 1);
    check("n=2: choice 0 equals the n=1 answer", two.choices[0].message.content === one.choices[0].message.content);
    check("n=2: prompt counted once", two.usage.prompt_tokens === one.usage.prompt_tokens);
    const s = await streamChat({...q, n: 2});
    check("n=2 stream: both choices stream and finish", s.texts.length === 2 && s.finish.length === 2 &&
          s.texts[0] === two.choices[0].message.content && s.texts[1] === two.choices[1].message.content);
  });

  await step("stop", async () => {
    const full = greedy;
    // a plain word of the greedy answer, not its first (raw bytes and text agree on it)
    const words = full.split(/\s+/).slice(1).filter((w) => /^[A-Za-z]{3,}$/.test(w));
    if (words.length < 1) return ok("stop: (skipped: no plain word in the greedy text)");
    const stop = words[0];
    const r = await client.chat.completions.create({model, messages: USER, max_tokens: 24, temperature: 0, stop});
    const want = full.slice(0, full.indexOf(stop));
    check("stop: the text ends before the stop string", r.choices[0].message.content === want,
          JSON.stringify([r.choices[0].message.content, want]));
    check("stop: finish_reason stop", r.choices[0].finish_reason === "stop");
    const s = await streamChat({model, messages: USER, max_tokens: 24, temperature: 0, stop: ["zzzz", stop]});
    check("stop: streamed text ends before the stop string too", s.texts[0] === want, JSON.stringify([s.texts[0], want]));
  });

  await step("json_object", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({model, messages: USER, max_tokens: 40, temperature: 1, seed,
                                                      response_format: {type: "json_object"}});
      const t = r.choices[0].message.content;
      let parsed = null;
      try { parsed = JSON.parse(t); } catch (_) { }
      check(`json_object (seed ${seed}): output parses as an object`, parsed && typeof parsed === "object" && !Array.isArray(parsed),
            JSON.stringify(t));
    }
    const r = await client.chat.completions.create({model, messages: USER, max_tokens: 6, temperature: 1, seed: 4,
                                                    response_format: {type: "json_object"}});
    let p = null;
    try { p = JSON.parse(r.choices[0].message.content); } catch (_) { }
    check("json_object: closes within a tight max_tokens", p !== null, JSON.stringify(r.choices[0].message.content));
  });

  await step("logprobs", async () => {
    const r = await client.chat.completions.create({model, messages: USER, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3});
    const c = r.choices[0].logprobs.content;
    check("chat logprobs: one entry per token with 3 alternatives", c.length === r.usage.completion_tokens &&
          c.every((e) => e.top_logprobs.length === 3 && e.logprob <= 0 && Array.isArray(e.bytes)), JSON.stringify(c).slice(0, 300));
    check("chat logprobs: greedy picks the most likely", c.every((e) => e.logprob >= e.top_logprobs[0].logprob - 1e-5));
  });

  await step("errors", async () => {
    const wrong = new OpenAI({baseURL: base + "/v1", apiKey: "wrong-key", maxRetries: 0});
    await expectError("401 -> AuthenticationError", openai.AuthenticationError,
                      () => wrong.chat.completions.create({model, messages: USER, max_tokens: 2}));
    await expectError("401 on /v1/models too", openai.AuthenticationError, () => wrong.models.list());
    await expectError("400 bad temperature -> BadRequestError naming the field", openai.BadRequestError,
                      () => client.chat.completions.create({model, messages: USER, temperature: 5}),
                      (e) => (e.param === "temperature" ? null : "param " + e.param));
    await expectError("400 bad message -> BadRequestError", openai.BadRequestError,
                      () => client.chat.completions.create({model, messages: [{role: "user", content: 42}]}),
                      (e) => (e.param === "messages[0].content" ? null : "param " + e.param));
    await expectError("400 prompt + max_tokens beyond the context -> exceed_context_size_error", openai.BadRequestError,
                      () => client.chat.completions.create({model, messages: USER, max_tokens: 1000000}),
                      (e) => (e.type === "exceed_context_size_error" ? null : "type " + e.type));
    await expectError("404 unknown model -> NotFoundError", openai.NotFoundError,
                      () => client.chat.completions.create({model: "no-such-model", messages: USER}),
                      (e) => (e.code === "model_not_found" ? null : "code " + e.code));
    await expectError("404 models.retrieve of an unknown model", openai.NotFoundError, () => client.models.retrieve("nope"));
    await expectError("413 body too large -> APIError 413", openai.APIError,
                      () => client.chat.completions.create({model, messages: [{role: "user", content: "x".repeat(300000)}]}),
                      (e) => (e.status === 413 ? null : "status " + e.status));
    const r404 = await raw("/v1/nothing", {});
    check("404 unknown route, OpenAI error JSON", r404.status === 404 && (await r404.json()).error.type === "not_found_error");
    const r405 = await raw("/v1/chat/completions");
    check("405 wrong method with Allow", r405.status === 405 && r405.headers.get("allow").includes("POST"));
    const rbad = await raw("/v1/chat/completions", "{not json");
    const jb = await rbad.json();
    check("400 malformed JSON", rbad.status === 400 && jb.error.type === "invalid_request_error" && /JSON/.test(jb.error.message));
    const h = await fetch(base + "/health");
    check("/health needs no key", h.status === 200);
  });

  await step("batching", async () => {
    // 8 concurrent streams, different prompts and seeds; each must equal the
    // same request run alone afterwards
    const prompts = ["In the beginning", "And God said", "The LORD is my shepherd", "Blessed are the meek",
                     "Let there be light", "In my Father's house", "The earth was without form", "Hear, O Israel"];
    const reqs = prompts.map((p, i) => ({model, messages: [{role: "user", content: p}], max_tokens: 20 + 3 * i,
                                          temperature: 0.9, seed: 100 + i}));
    const t0 = Date.now();
    const together = await Promise.all(reqs.map((q) => streamChat(q)));
    const dt = Date.now() - t0;
    check("batching: 8 parallel streams all complete", together.every((r) => r.finish[0]), JSON.stringify(together.map((r) => r.finish)));
    let same = 0;
    for (let i = 0; i < reqs.length; i++) {
      const alone = await client.chat.completions.create(reqs[i]);
      if (alone.choices[0].message.content === together[i].texts[0]) same++;
      else console.log(`  differs ${i}: ${JSON.stringify(together[i].texts[0])} vs ${JSON.stringify(alone.choices[0].message.content)}`);
    }
    check(`batching: each stream equals the same request alone (${same}/8; 8 streams in ${dt} ms)`, same === reqs.length);
  });

  await step("disconnect", async () => {
    const before = await metric('yan_requests_cancelled_total{reason="client_disconnect"}');
    const ac = new AbortController();
    const s = await client.chat.completions.create({model, messages: USER, max_tokens: 1500, temperature: 1, seed: 1, stream: true},
                                                   {signal: ac.signal});
    let n = 0;
    try {
      for await (const ch of s) { if (++n >= 3) ac.abort(); }
    } catch (_) { /* aborted */ }
    let running = NaN, cancelled = NaN;
    for (let i = 0; i < 100; i++) {
      await sleep(50);
      running = await metric("yan_running_requests");
      cancelled = await metric('yan_requests_cancelled_total{reason="client_disconnect"}');
      if (running === 0 && cancelled > before) break;
    }
    check("disconnect: the stream's slot is freed (running 0, cancelled counted)", running === 0 && cancelled === before + 1,
          `running ${running} cancelled ${before} -> ${cancelled}`);
    const used = await metric("yan_sequences_used");
    check("disconnect: no sequence left in use", used === 0, String(used));
  });
}

async function ratelimit() {
  const model = (await client.models.list()).data[0].id; // request 1
  await client.chat.completions.create({model, messages: USER, max_tokens: 2}); // request 2
  await expectError("429 -> RateLimitError with Retry-After", openai.RateLimitError,
                    () => client.chat.completions.create({model, messages: USER, max_tokens: 2}),
                    (e) => (e.headers && Number(e.headers.get ? e.headers.get("retry-after") : e.headers["retry-after"]) >= 1 &&
                            e.code === "rate_limit_exceeded" ? null : "headers/code " + e.code));
}

async function proxy() {
  const model = extra;
  const list = await client.models.list();
  check("proxy: /v1/models lists the upstream's model too", list.data.some((m) => m.id === model), JSON.stringify(list.data.map((m) => m.id)));
  const r = await client.chat.completions.create({model, messages: USER, max_tokens: 8, temperature: 0});
  check("proxy: chat through the upstream", r.model === model && r.choices[0].message.content.length > 0, JSON.stringify(r).slice(0, 200));
  const s = await streamChat({model, messages: USER, max_tokens: 8, temperature: 0, stream_options: {include_usage: true}});
  check("proxy: streaming passes through", s.texts[0] === r.choices[0].message.content && s.usage, JSON.stringify(s.texts));
  await expectError("proxy: upstream errors keep their class (400)", openai.BadRequestError,
                    () => client.chat.completions.create({model, messages: USER, temperature: 9}));
  const wrong = new OpenAI({baseURL: base + "/v1", apiKey: "wrong", maxRetries: 0});
  await expectError("proxy: the front server's keys apply", openai.AuthenticationError,
                    () => wrong.chat.completions.create({model, messages: USER, max_tokens: 2}));
}

try {
  if (mode === "main") await main();
  else if (mode === "ratelimit") await ratelimit();
  else if (mode === "proxy") await proxy();
  else bad("usage", "mode must be main, ratelimit or proxy");
} catch (e) {
  bad("unexpected error", e && e.stack ? e.stack : String(e));
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
