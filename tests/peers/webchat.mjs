// webchat.mjs — the chat page of `yan serve` (GET /, src/serve/web/index.html) in a real
// browser: headless Debian Chromium (/usr/bin/chromium) driven by npm playwright-core
// (installed by `scripts/peers.sh playwright` into <cache>/peers-playwright; no browser
// download). Prints "ok   <check>" / "FAIL <check>: detail" lines and closes with
// "N passed, N failed" (tests/e2e/test_webchat.sh adds them up).
//
//   node webchat.mjs OPEN_URL KEY_URL KEY OUTDIR
//
// OPEN_URL is a server without API keys and with --seed, KEY_URL one started with --api-key KEY (both
// http://127.0.0.1:PORT). Screenshots go to OUTDIR/webchat.png and OUTDIR/webchat-key.png.
// YAN_WEBCHAT_PAGE=FILE serves FILE at / instead of the server's page (to try an edited
// index.html without rebuilding yan).
// One browser, one fresh context (no shared localStorage) per server.
import {createRequire} from "node:module";
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CACHE = process.env.YAN_CACHE || path.join(ROOT, ".cache");
const req = createRequire(path.join(CACHE, "peers-playwright", "package.json"));
const {chromium} = req("playwright-core");
const CHROMIUM = process.env.YAN_CHROMIUM || "/usr/bin/chromium";

const [openUrl, keyUrl, key, outdir] = process.argv.slice(2);
if (!openUrl || !keyUrl || !key || !outdir) {
  console.error("usage: node webchat.mjs OPEN_URL KEY_URL KEY OUTDIR");
  process.exit(2);
}

let passed = 0, failed = 0;
function ok(name) { passed++; console.log("ok   " + name); }
function bad(name, why) { failed++; console.log("FAIL " + name + (why ? ": " + why : "")); }
function check(name, cond, why) { cond ? ok(name) : bad(name, why); }
async function step(name, fn) {
  try { await fn(); } catch (e) { bad(name, (e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : String(e))); }
}
const short = (s, n = 160) => { s = String(s); return s.length > n ? s.slice(0, n) + "..." : s; };

// A fresh context and page on BASE that records console errors, page errors, failed
// requests, requests that leave the server, and the bodies of chat requests.
async function openPage(browser, base) {
  const ctx = await browser.newContext({viewport: {width: 960, height: 600}});
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  const rec = {console: [], pageErrors: [], failed: [], foreign: [], chats: [], status: []};
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") rec.console.push(m.type() + ": " + m.text()); });
  page.on("pageerror", (e) => rec.pageErrors.push(String(e && e.message || e)));
  page.on("requestfailed", (r) => rec.failed.push(r.url() + " " + (r.failure() && r.failure().errorText)));
  page.on("response", (r) => { if (r.status() >= 400) rec.status.push(r.status() + " " + r.url()); });
  page.on("request", (r) => {
    if (!r.url().startsWith(base + "/") && !r.url().startsWith("data:")) rec.foreign.push(r.url());
    if (r.method() === "POST" && r.url().endsWith("/v1/chat/completions")) {
      try { rec.chats.push(JSON.parse(r.postData())); } catch (e) { rec.chats.push({unparsable: r.postData()}); }
    }
  });
  if (process.env.YAN_WEBCHAT_PAGE) {
    const html = fs.readFileSync(process.env.YAN_WEBCHAT_PAGE);
    await page.route(base + "/", (r) => r.fulfill({status: 200, contentType: "text/html; charset=utf-8", body: html}));
  }
  const resp = await page.goto(base + "/");
  return {ctx, page, rec, resp};
}

// Watch the last assistant bubble and the status line: every distinct state, with its time.
async function watch(page) {
  await page.evaluate(() => {
    window.__answers = []; window.__status = [];
    const push = (arr, t) => { if (!arr.length || arr[arr.length - 1].t !== t) arr.push({t, at: performance.now()}); };
    new MutationObserver(() => {
      const c = document.querySelectorAll("#log .assistant .content");
      if (c.length) push(window.__answers, c[c.length - 1].textContent);
      push(window.__status, document.getElementById("status").textContent);
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
  });
}
// Wait until the page has NTURNS assistant bubbles and is idle again (Send enabled).
async function waitIdle(page, nturns) {
  await page.waitForFunction((n) => document.querySelectorAll("#log .msg.assistant, #log .msg.error").length === n &&
    !document.getElementById("send").disabled && document.getElementById("stop").disabled, nturns, {timeout: 30000});
}
const bubbles = (page) => page.$$eval("#log .msg", (ms) => ms.map((m) => ({
  cls: m.className, role: m.querySelector(".role").textContent, text: m.querySelector(".content").textContent})));
const TOKS = /(\d+) tokens in [\d.]+ s · first token [\d.]+ s · ([\d.]+) tokens\/s/;

function noErrors(tag, rec, allow = [], aborted = 0) {
  const cons = rec.console.filter((t) => !allow.some((re) => re.test(t)));
  check(`${tag}: no JavaScript console errors or warnings`, cons.length === 0,
        short(cons.join(" | ") + " (HTTP errors: " + rec.status.join(", ") + ")", 400));
  check(`${tag}: no page errors (uncaught exceptions)`, rec.pageErrors.length === 0, short(rec.pageErrors.join(" | "), 400));
  // the only failed requests: the chat streams the test cut short itself (Stop, New chat)
  const cut = rec.failed.filter((t) => /\/v1\/chat\/completions net::ERR_ABORTED$/.test(t));
  check(`${tag}: no failed requests${aborted ? ` but the ${aborted} streams cut by Stop and New chat` : ""}`,
        cut.length === aborted && rec.failed.length === aborted, short(rec.failed.join(" | "), 400));
  check(`${tag}: no request leaves the server (no external resources)`, rec.foreign.length === 0, short(rec.foreign.join(" "), 400));
}

const SYSTEM = "You are a terse assistant.";
const browser = await chromium.launch({executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"]});
try {
  // ------------------------------------------------------------ a server without keys
  await step("open server: the chat session", async () => {
    const {ctx, page, rec, resp} = await openPage(browser, openUrl);
    check("GET / is 200 text/html", resp.status() === 200 && /text\/html/.test(resp.headers()["content-type"] || ""),
          resp.status() + " " + resp.headers()["content-type"]);
    check("the page title is 'yan chat'", (await page.title()) === "yan chat", await page.title());
    await page.waitForFunction(() => document.querySelectorAll("#model option").length > 0);
    const models = await page.$$eval("#model option", (os) => os.map((o) => o.value));
    check("the model list is filled from /v1/models", models.length === 1 && models[0] === "m.gguf", JSON.stringify(models));
    check("no status error after loading", (await page.textContent("#status")) === "", await page.textContent("#status"));

    await page.fill("#system", SYSTEM);
    await page.fill("#temp", "0.7");
    await page.fill("#maxtok", "96");
    await page.fill("#input", "In the beginning");
    await watch(page);
    // click and read the buttons in one task: the answer may be complete a few ms later
    const during = await page.evaluate(() => {
      document.getElementById("send").click();
      return {send: document.getElementById("send").disabled, stop: document.getElementById("stop").disabled,
              input: document.getElementById("input").value};
    });
    check("Send is disabled and Stop enabled while streaming", during.send && !during.stop, JSON.stringify(during));
    check("the input box is cleared on send", during.input === "", JSON.stringify(during));
    await waitIdle(page, 1);

    const c1 = rec.chats[0] || {};
    const m1 = c1.messages || [];
    check("request 1: system prompt first, then the user message",
          m1.length === 2 && m1[0].role === "system" && m1[0].content === SYSTEM && m1[1].role === "user" && m1[1].content === "In the beginning",
          short(JSON.stringify(m1)));
    check("request 1: temperature 0.7, max_tokens 96, stream with usage",
          c1.temperature === 0.7 && c1.max_tokens === 96 && c1.stream === true && c1.stream_options && c1.stream_options.include_usage === true &&
          c1.model === "m.gguf", short(JSON.stringify(c1)));

    const ans = await page.evaluate(() => window.__answers);
    const final1 = (await bubbles(page))[1].text;
    const nonEmpty = ans.filter((s) => s.t !== "");
    let grows = nonEmpty.length > 0;
    for (let i = 1; i < nonEmpty.length; i++) grows = grows && nonEmpty[i].t.startsWith(nonEmpty[i - 1].t) && nonEmpty[i].t.length > nonEmpty[i - 1].t.length;
    const span = nonEmpty.length ? nonEmpty[nonEmpty.length - 1].at - nonEmpty[0].at : 0;
    const times = new Set(nonEmpty.map((s) => s.at)).size;
    check(`the answer streams: ${nonEmpty.length} growing states over ${span.toFixed(0)} ms`,
          nonEmpty.length >= 4 && grows && times >= 3 && span > 0,
          short(JSON.stringify(nonEmpty.slice(0, 6).map((s) => [s.t.length, Math.round(s.at)]))));
    check("the final answer is the last streamed state and not empty",
          final1.trim().length > 0 && nonEmpty.length && nonEmpty[nonEmpty.length - 1].t === final1, short(final1));
    // the server has --seed: the same request without streaming gives the same text, so the
    // page's SSE parsing and UTF-8 decoding lost or garbled nothing
    const plain = await (await fetch(openUrl + "/v1/chat/completions", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({...c1, stream: false, stream_options: undefined})})).json();
    const want = plain.choices && plain.choices[0].message.content;
    check("the streamed answer on the page equals the same request without streaming", want === final1,
          short(JSON.stringify(want)) + " vs " + short(JSON.stringify(final1)));
    const sts = await page.evaluate(() => window.__status.map((s) => s.t));
    check("a live tokens/s figure while streaming", sts.some((s) => /^\d+ tokens · [\d.]+ tokens\/s$/.test(s)), short(JSON.stringify(sts.slice(0, 5))));
    const st1 = await page.textContent("#status");
    const mt = TOKS.exec(st1);
    check("the final status: tokens, time, first token, tokens/s and finish reason",
          mt && Number(mt[1]) > 0 && Number(mt[2]) > 0 && / · (length|stop|content_filter)$/.test(st1), st1);

    // the second turn, sent with Enter
    await page.fill("#input", "And the earth was without form");
    await page.press("#input", "Enter");
    await waitIdle(page, 2);
    const b = await bubbles(page);
    check("the conversation shows both turns (user, assistant, user, assistant)",
          b.map((x) => x.role).join(",") === "user,assistant,user,assistant" && b.every((x) => !/error/.test(x.cls)) &&
          b[0].text === "In the beginning" && b[1].text === final1 && b[2].text === "And the earth was without form" && b[3].text.trim() !== "",
          short(JSON.stringify(b)));
    const m2 = (rec.chats[1] || {}).messages || [];
    check("request 2 carries the whole conversation: system, user, assistant, user",
          m2.map((m) => m.role).join(",") === "system,user,assistant,user" && m2[0].content === SYSTEM &&
          m2[1].content === "In the beginning" && m2[2].content === final1 && m2[3].content === "And the earth was without form",
          short(JSON.stringify(m2)));
    check("request 2 keeps the temperature", (rec.chats[1] || {}).temperature === 0.7);
    check("the status shows tokens/s after the second answer", TOKS.test(await page.textContent("#status")), await page.textContent("#status"));
    await page.screenshot({path: path.join(outdir, "webchat.png")});

    // settings survive a reload (localStorage); "New chat" empties the conversation
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll("#model option").length > 0);
    check("system prompt, temperature and max tokens survive a reload",
          (await page.inputValue("#system")) === SYSTEM && (await page.inputValue("#temp")) === "0.7" && (await page.inputValue("#maxtok")) === "96",
          [await page.inputValue("#system"), await page.inputValue("#temp"), await page.inputValue("#maxtok")].join(" | "));
    await page.fill("#input", "In the beginning");
    await page.click("#send");
    await waitIdle(page, 1);
    await page.click("#clear");
    await page.fill("#input", "Let there be light");
    await page.click("#send");
    await waitIdle(page, 1);
    const m3 = (rec.chats[3] || {}).messages || [];
    check("New chat: the next request starts a new conversation", m3.map((m) => m.role).join(",") === "system,user" &&
          (await page.$$("#log .msg")).length === 2, short(JSON.stringify(m3)));

    // Stop in the middle of a long answer: the partial answer stays and is history
    await page.fill("#maxtok", "1000");
    await page.fill("#input", "In the beginning");
    await page.click("#send");
    await page.waitForFunction(() => { const c = document.querySelectorAll("#log .msg:not(.user) .content"); return c.length === 2 && c[1].textContent.length > 0; });
    await page.click("#stop");
    await waitIdle(page, 2);
    const partial = (await bubbles(page))[3].text;
    check("Stop ends a running answer: status 'stopped', the partial text stays",
          (await page.textContent("#status")) === "stopped" && partial.length > 0, await page.textContent("#status"));
    await page.fill("#maxtok", "8");
    await page.fill("#input", "Go on");
    await page.click("#send");
    await waitIdle(page, 3);
    const m4 = (rec.chats[rec.chats.length - 1] || {}).messages || [];
    check("a stopped answer is part of the conversation",
          m4.map((m) => m.role).join(",") === "system,user,assistant,user,assistant,user" && m4[4].content === partial,
          short(JSON.stringify(m4.map((m) => [m.role, m.content.length]))));

    // New chat in the middle of a long answer: nothing of the old chat leaks into the new one
    await page.click("#clear");
    await page.fill("#maxtok", "1000");
    await page.fill("#input", "In the beginning");
    await page.click("#send");
    await page.waitForFunction(() => { const c = document.querySelectorAll("#log .msg:not(.user) .content"); return c.length === 1 && c[0].textContent.length > 0; });
    check("a long answer is streaming", (await page.$$("#log .msg.assistant")).length === 1 && !(await page.$eval("#stop", (b) => b.disabled)),
          short(JSON.stringify(await bubbles(page))));
    await page.click("#clear");
    await waitIdle(page, 0);
    check("New chat while streaming: empty conversation, no 'stopped' status",
          (await page.$$("#log .msg")).length === 0 && (await page.textContent("#status")) === "", await page.textContent("#status"));
    await page.fill("#maxtok", "8");
    await page.fill("#input", "Let there be light");
    await page.click("#send");
    await waitIdle(page, 1);
    const m5 = (rec.chats[rec.chats.length - 1] || {}).messages || [];
    check("New chat while streaming: the next request has nothing of the old chat",
          m5.map((m) => m.role).join(",") === "system,user" && m5[1].content === "Let there be light",
          short(JSON.stringify(m5.map((m) => [m.role, m.content.length]))));

    // an empty temperature field means the server's default (the field is left out), not 0
    await page.fill("#temp", "");
    await page.fill("#input", "Amen");
    await page.click("#send");
    await waitIdle(page, 2);
    const c6 = rec.chats[rec.chats.length - 1] || {};
    check("an empty temperature field sends no temperature (the server's default)", !("temperature" in c6), short(JSON.stringify(c6)));
    noErrors("open server", rec, [], 2);
    await ctx.close();
  });

  // ------------------------------------------------------------ a server with an API key
  await step("key server: the chat session", async () => {
    const {ctx, page, rec} = await openPage(browser, keyUrl);
    await page.waitForFunction(() => document.getElementById("status").textContent !== "");
    const st0 = await page.textContent("#status");
    check("without a key the page says the server needs one, and where to enter it", /API key/i.test(st0) && /API key field/.test(st0), st0);
    await page.fill("#input", "In the beginning");
    await page.click("#send");
    await waitIdle(page, 1);
    let b = await bubbles(page);
    check("sending without a key: a clear error in the conversation (401, API key)",
          b.length === 2 && /error/.test(b[1].cls) && b[1].role === "error" && /401/.test(b[1].text) && /API key/i.test(b[1].text), short(JSON.stringify(b)));
    check("the refused message goes back into the input box", (await page.inputValue("#input")) === "In the beginning",
          await page.inputValue("#input"));
    await page.screenshot({path: path.join(outdir, "webchat-key.png")});  // the 401 as the user sees it

    await page.fill("#key", "sk-wrong");
    await page.press("#key", "Enter");
    await page.waitForFunction(() => /401|invalid|key/i.test(document.getElementById("status").textContent));
    check("a wrong key is reported", /key/i.test(await page.textContent("#status")), await page.textContent("#status"));

    await page.fill("#key", key);
    await page.press("#key", "Enter");
    await page.waitForFunction(() => document.querySelectorAll("#model option").length > 0);
    check("with the key the model list loads and the error clears", (await page.textContent("#status")) === "",
          await page.textContent("#status"));
    check("the key field is a password field", (await page.getAttribute("#key", "type")) === "password");
    await page.fill("#temp", "0");
    await page.fill("#maxtok", "48");
    await page.fill("#input", "In the beginning");
    await page.click("#send");
    await waitIdle(page, 2);
    b = await bubbles(page);
    const last = b[b.length - 1];
    check("with the key the answer streams", b.length >= 3 && last.role === "assistant" && !/error/.test(last.cls) && last.text.trim() !== "",
          short(JSON.stringify(b)));
    const sent = rec.chats[rec.chats.length - 1] || {};
    check("the request carries only the new message (the refused one is not history)",
          (sent.messages || []).map((m) => m.role).join(",") === "user" && sent.temperature === 0, short(JSON.stringify(sent)));
    check("the status shows tokens/s", TOKS.test(await page.textContent("#status")), await page.textContent("#status"));
    // the only console errors allowed are the browser's own lines for the expected 401s
    noErrors("key server", rec, [/Failed to load resource: the server responded with a status of 401/]);
    await ctx.close();
  });
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
