/* cmd_kb_ask.c — `yan kb ask KB "question"`: an answer from the knowledge
 * base with [n] citations (src/rag/answer.h): retrieval (BM25, vectors,
 * hybrid; --fusion N for RAG-Fusion, --rerank for the LLM rerank), the
 * injection screen over the retrieved chunks, the answer by a chat model
 * (the built-in model unless --model), and the cited sources with file, page
 * and section. --json prints everything as one JSON object. Reached through
 * `yan kb` (cmd_kb.c) with argv[0] = "ask". */
#include "cmd.h"

#include "rag/answer.h"

#include <cjson/cJSON.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan kb ask KB \"QUESTION\" [options]\n\n"
            "Answers QUESTION from the knowledge base KB with citations [1], [2] that name\n"
            "the file (and page or section) of each source. The retrieved chunks go into\n"
            "the prompt inside <source> delimiters, marked as data; chunks that look like\n"
            "injected instructions are left out (see --injection). When nothing relevant\n"
            "is retrieved the answer is \"" YAN_RAG_NOT_FOUND "\"\n"
            "and the model is not run.\n\n"
            "retrieval:\n"
            "  --mode M              bm25, vector or hybrid (default hybrid; without an\n"
            "                        embedding model in the KB, hybrid is BM25)\n"
            "  -k K                  sources given to the model (default 5)\n"
            "  --candidates N        depth of each retrieved list (default max(4K, 20))\n"
            "  --fusion N            RAG-Fusion: the model writes N rewrites of the question,\n"
            "                        each is searched, the lists are fused (RRF); default 0\n"
            "  --rerank              reorder the candidates by the model's P(yes) to \"does\n"
            "                        this passage help answer the question?\"\n"
            "  --min-score S         drop hits scoring below S (the mode's scale: BM25,\n"
            "                        cosine, RRF; with --rerank P(yes)); default 0 = off\n"
            "  --no-term-check       keep hits that share no content word with the question\n"
            "  --injection A         drop (default), neutralise (keep quoted, role markers\n"
            "                        defused) or keep (no screen) for flagged chunks\n"
            "  --embed-model FILE    the KB's embedding model (when it needs to be named)\n"
            "answer:\n"
            "  --model FILE          chat model (default: the built-in model, or $YAN_MODEL)\n"
            "  -n, --max-tokens N    longest answer in tokens (default 256)\n"
            "  --temp T              temperature (default 0: greedy)\n"
            "  --seed S              random seed (with --temp > 0)\n"
            "  --ctx N               context in tokens (default: the model's, at most %d)\n"
            "  --threads N, -t N     threads (default: all cores)\n"
            "  --chat-template NAME  instead of the model's own template\n"
            "output:\n"
            "  --json                one JSON object: answer, citations, sources, flagged\n"
            "                        chunks, queries, usage\n"
            "  --stream              print the answer as it is generated (citations to\n"
            "                        missing sources are removed only from the final answer)\n"
            "  --show-prompt         print the prompt to stderr\n\n"
            "example: yan kb ask docs.kb \"How do I rotate the logs?\" --fusion 3 -k 4\n",
            CMD_DEFAULT_CTX);
}

static bool print_piece(const char *text, size_t len, void *ud) {
    (void)ud;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return !ferror(stdout);
}

/* Up to max bytes of s as a JSON string: cut on a UTF-8 boundary, invalid
 * bytes (a model may write them) as U+FFFD. */
static cJSON *snippet(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    char *t = malloc(3 * n + 1);
    if (!t) return cJSON_CreateString("");
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int l = yan_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (cp < 0) memcpy(t + o, "\xef\xbf\xbd", 3), o += 3;
        else memcpy(t + o, s + i, (size_t)l), o += (size_t)l;
        i += (size_t)l;
    }
    t[o] = 0;
    cJSON *r = cJSON_CreateString(t);
    free(t);
    return r;
}

static cJSON *source_json(const yan_rag_source *s, bool full) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", s->index);
    cJSON_AddItemToObject(o, "path", snippet(s->path, (size_t)-1));
    if (s->page > 0) cJSON_AddNumberToObject(o, "page", s->page);
    else cJSON_AddNullToObject(o, "page");
    if (s->heading) cJSON_AddItemToObject(o, "heading", snippet(s->heading, (size_t)-1));
    else cJSON_AddNullToObject(o, "heading");
    cJSON_AddNumberToObject(o, "chunk_id", (double)s->chunk_id);
    cJSON_AddNumberToObject(o, "doc_id", (double)s->doc_id);
    cJSON_AddNumberToObject(o, "score", s->score);
    cJSON_AddItemToObject(o, "snippet", snippet(s->text, 240));
    if (full) {
        cJSON_AddBoolToObject(o, "cited", s->cited);
        cJSON_AddBoolToObject(o, "neutralised", s->neutralised);
    }
    return o;
}

static void print_json(const char *question, yan_kb_mode mode, const yan_rag_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "question", snippet(question, (size_t)-1));
    cJSON_AddItemToObject(o, "answer", snippet(r->answer ? r->answer : "", (size_t)-1));
    cJSON_AddBoolToObject(o, "found", r->found);
    cJSON_AddBoolToObject(o, "model_called", r->model_called);
    cJSON_AddStringToObject(o, "mode", yan_rag_mode_name(mode));
    cJSON *q = cJSON_AddArrayToObject(o, "queries");
    for (int i = 0; i < r->n_queries; i++) cJSON_AddItemToArray(q, snippet(r->queries[i], (size_t)-1));
    cJSON *c = cJSON_AddArrayToObject(o, "citations");
    for (int i = 0; i < r->n_cited; i++) cJSON_AddItemToArray(c, source_json(&r->sources[r->cited[i] - 1], false));
    cJSON *s = cJSON_AddArrayToObject(o, "sources");
    for (int i = 0; i < r->n_sources; i++) cJSON_AddItemToArray(s, source_json(&r->sources[i], true));
    cJSON *f = cJSON_AddArrayToObject(o, "flagged");
    for (int i = 0; i < r->n_flags; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "chunk_id", (double)r->flags[i].chunk_id);
        cJSON_AddItemToObject(x, "path", snippet(r->flags[i].path ? r->flags[i].path : "", (size_t)-1));
        if (r->flags[i].page > 0) cJSON_AddNumberToObject(x, "page", r->flags[i].page);
        cJSON_AddNumberToObject(x, "score", r->flags[i].score);
        cJSON_AddItemToObject(x, "reason", snippet(r->flags[i].reason, (size_t)-1));
        cJSON_AddStringToObject(x, "action", r->flags[i].dropped ? "dropped" : "neutralised");
        cJSON_AddItemToArray(f, x);
    }
    cJSON_AddNumberToObject(o, "bad_citations", r->n_bad_citations);
    cJSON_AddNumberToObject(o, "candidates", r->n_candidates);
    cJSON_AddNumberToObject(o, "irrelevant", r->n_irrelevant);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", r->n_prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", r->n_gen_tokens);
    char *txt = cJSON_PrintUnformatted(o);
    if (txt) puts(txt);
    cJSON_free(txt);
    cJSON_Delete(o);
}

static void print_source_line(const yan_rag_source *s) {
    printf("[%d] %s", s->index, s->path);
    if (s->page > 0) printf(", page %d", (int)s->page);
    if (s->heading) printf(", %s", s->heading);
    printf(" (chunk %lld)\n", (long long)s->chunk_id);
}

int yan_cmd_kb_ask(int argc, char **argv) {
    const char *kb_path = NULL, *question = NULL, *model_path = NULL, *embed = NULL, *tmpl = NULL;
    yan_rag_params rp = yan_rag_params_default();
    yan_context_params cp = yan_context_params_default();
    bool json = false, stream = false, show_prompt = false, seeded = false;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) { usage(stdout); return 0; }
        else if (!strcmp(a, "--mode")) {
            if (!yan_rag_mode_parse(v, &rp.mode)) {
                fprintf(stderr, "yan kb ask: --mode must be bm25, vector or hybrid\n");
                return 2;
            }
            i++;
        }
        else if (!strcmp(a, "-k")) { rp.k = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--candidates")) { rp.candidates = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--fusion")) { rp.fusion = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--rerank")) rp.rerank = true;
        else if (!strcmp(a, "--min-score")) { rp.min_score = (float)cmd_float(a, v); i++; }
        else if (!strcmp(a, "--no-term-check")) rp.term_check = false;
        else if (!strcmp(a, "--injection") && v) {
            if (!strcmp(v, "drop")) rp.injection = YAN_RAG_INJ_DROP;
            else if (!strcmp(v, "neutralise") || !strcmp(v, "neutralize")) rp.injection = YAN_RAG_INJ_NEUTRALISE;
            else if (!strcmp(v, "keep")) rp.injection = YAN_RAG_INJ_KEEP;
            else {
                fprintf(stderr, "yan kb ask: --injection must be drop, neutralise or keep\n");
                return 2;
            }
            i++;
        }
        else if (!strcmp(a, "--embed-model") && v) { embed = v; i++; }
        else if (!strcmp(a, "--model") && v) { model_path = v; i++; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) { rp.max_tokens = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--temp")) { rp.temperature = (float)cmd_float(a, v); i++; }
        else if (!strcmp(a, "--seed")) { seed = (uint64_t)cmd_int(a, v); seeded = true; i++; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) { cp.n_ctx = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) { cp.n_threads = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--chat-template") && v) { tmpl = v; i++; }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--stream")) stream = true;
        else if (!strcmp(a, "--show-prompt")) show_prompt = true;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan kb ask: unknown option '%s' (or it needs a value)\n", a);
            usage(stderr);
            return 2;
        } else if (!kb_path) kb_path = a;
        else if (!question) question = a;
        else {
            fprintf(stderr, "yan kb ask: unexpected argument '%s' (quote the question)\n", a);
            return 2;
        }
    }
    if (!kb_path || !question || !question[0]) {
        fprintf(stderr, "yan kb ask: KB and QUESTION are required\n");
        usage(stderr);
        return 2;
    }
    if (rp.k < 1 || rp.fusion > YAN_RAG_MAX_FUSION) {
        fprintf(stderr, "yan kb ask: -k must be at least 1 and --fusion at most %d\n", YAN_RAG_MAX_FUSION);
        return 2;
    }
    if (!model_path && !(model_path = cmd_default_model())) return 2;

    int rc = 1;
    yan_status st;
    yan_kb *kb = NULL;
    yan_model *m = NULL;
    yan_context *ctx = NULL;
    yan_rag_result r;
    memset(&r, 0, sizeof r);
    yan_kb_params kp = yan_kb_params_default();
    kp.embed_model = embed;
    kp.n_threads = cp.n_threads;
    kp.must_exist = true; /* asking must not create an empty knowledge base */
    if ((st = yan_kb_open(kb_path, &kp, &kb))) { cmd_fail(kb_path, st); goto out; }
    yan_model_params mp = yan_model_params_default();
    if ((st = yan_model_load(model_path, &mp, &m))) { cmd_fail("cannot load model", st); goto out; }
    cp.n_ctx = cmd_default_ctx(m, cp.n_ctx);
    if ((st = yan_context_new(m, &cp, &ctx))) { cmd_fail("cannot create context", st); goto out; }
    yan_rag_ctx_llm cl = {m, ctx, tmpl, seeded ? seed : cmd_clock_seed()};
    yan_rag_llm llm = yan_rag_llm_context(&cl);
    if (stream && !json) {
        rp.on_text = print_piece;
        rp.ud = NULL;
    }
    st = yan_rag_ask(kb, &llm, question, &rp, &r);
    if (st) { cmd_fail("kb ask", st); goto out; }
    if (show_prompt && r.system)
        fprintf(stderr, "--- system\n%s\n--- user\n%s\n---\n", r.system, r.user ? r.user : "");
    for (int i = 0; i < r.n_flags && !json; i++)
        fprintf(stderr, "yan kb ask: %s chunk %lld of %s: it looks like injected instructions (%s)\n",
                r.flags[i].dropped ? "left out" : "quoted", (long long)r.flags[i].chunk_id,
                r.flags[i].path ? r.flags[i].path : "?", r.flags[i].reason);
    if (json) {
        print_json(question, rp.mode, &r);
    } else {
        if (stream) putchar('\n');
        else printf("%s\n", r.answer);
        if (r.n_cited) {
            printf("\nSources:\n");
            for (int i = 0; i < r.n_cited; i++) print_source_line(&r.sources[r.cited[i] - 1]);
        } else if (r.n_sources && r.found) {
            printf("\nSources given to the model (none cited):\n");
            for (int i = 0; i < r.n_sources; i++) print_source_line(&r.sources[i]);
        }
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    yan_rag_result_free(&r);
    yan_context_free(ctx);
    yan_model_free(m);
    yan_kb_close(kb);
    return rc;
}
