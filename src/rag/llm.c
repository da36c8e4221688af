/* llm.c — the answer module's language model over one yan_context
 * (yan_rag_llm_context, contract in answer.h): chat turns formatted with the
 * model's chat template and generated with yan_generate, the yes/no judge of
 * the LLM rerank from the logits of the reply's first token, and token
 * counts for fitting prompts. Every call starts the context from empty.
 * Depends only on include/yan.h and base. */
#include "rag/answer.h"

#include <math.h>

/* The chat-formatted msgs as tokens (BOS as the model asks, not doubled). */
static yan_status format_tokens(yan_rag_ctx_llm *st, const yan_chat_message *msgs, size_t n, yan_token **ids,
                                size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    int64_t need = yan_chat_format(st->model, st->chat_template, msgs, n, true, NULL, 0);
    if (need == INT64_MIN) return YAN_ERR_INVALID_ARG; /* yan_last_error says why */
    size_t cap = need < 0 ? (size_t)-need : (size_t)need + 1;
    char *text = yan_malloc(cap);
    if (!text) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    yan_status s = YAN_OK;
    if (yan_chat_format(st->model, st->chat_template, msgs, n, true, text, cap) < 0)
        s = yan_fail(YAN_ERR_NOMEM, "chat template: the formatted size changed");
    const yan_tokenizer *tok = yan_model_tokenizer(st->model);
    if (!s) s = yan_tokenize_alloc(tok, text, strlen(text), YAN_TOKENIZE_SPECIAL | YAN_TOKENIZE_ADD_BOS, ids, n_ids);
    yan_free(text);
    if (s) return s;
    yan_token bos = yan_tokenizer_special(tok, YAN_SPECIAL_BOS);
    if (*n_ids >= 2 && bos >= 0 && (*ids)[0] == bos && (*ids)[1] == bos)
        memmove(*ids, *ids + 1, --*n_ids * sizeof **ids);
    if (*n_ids == 0) return yan_fail(YAN_ERR_INVALID_ARG, "the prompt has no tokens");
    return YAN_OK;
}

/* Ends of a turn in the chat templates, as text: a vocabulary without them
 * as special tokens (a model whose template is a fallback) writes them. */
static const char *const TURN_END[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>", "[INST]"};

typedef struct {
    yan_buf *out;
    yan_text_fn fn;
    void *ud;
} collect;

static bool on_piece(const char *text, size_t len, void *ud) {
    collect *c = ud;
    if (!yan_buf_append(c->out, text, len)) return false;
    return c->fn ? c->fn(text, len, c->ud) : true;
}

static yan_status ctx_chat(void *ud, const yan_chat_message *msgs, size_t n, int32_t max_tokens, float temperature,
                           yan_text_fn on_text, void *text_ud, yan_buf *out, int32_t *n_prompt, int32_t *n_gen) {
    yan_rag_ctx_llm *st = ud;
    yan_token *ids = NULL;
    size_t n_ids = 0;
    yan_sampler *smp = NULL;
    yan_status s = format_tokens(st, msgs, n, &ids, &n_ids);
    if (s) return s;
    int32_t n_ctx = yan_context_n_ctx(st->ctx);
    if (n_ids + 1 > (size_t)n_ctx) {
        s = yan_fail(YAN_ERR_CONTEXT_FULL, "the prompt (%zu tokens) does not fit the context of %d tokens", n_ids,
                     (int)n_ctx);
        goto out;
    }
    int32_t room = n_ctx - (int32_t)n_ids;
    if (max_tokens <= 0 || max_tokens > room) max_tokens = room;
    yan_sampler_params sp = yan_sampler_params_default();
    sp.temperature = temperature;
    sp.seed = st->seed;
    if ((s = yan_sampler_new(&sp, yan_model_n_vocab(st->model), &smp))) goto out;
    if ((s = yan_context_truncate(st->ctx, 0))) goto out;
    collect c = {out, on_text, text_ud};
    yan_generate_params gp = yan_generate_params_default();
    gp.max_tokens = max_tokens;
    gp.stop = TURN_END;
    gp.n_stop = (int)(sizeof TURN_END / sizeof TURN_END[0]);
    gp.on_text = on_piece;
    gp.ud = &c;
    yan_generate_result res = {0};
    s = yan_generate(st->ctx, smp, ids, n_ids, &gp, &res);
    if (out->oom) s = yan_fail(YAN_ERR_NOMEM, "out of memory");
    if (n_prompt) *n_prompt = res.n_prompt;
    if (n_gen) *n_gen = res.n_generated;
out:
    yan_sampler_free(smp);
    yan_free_tokens(ids);
    return s;
}

/* First tokens of the spellings of a word ("yes", "Yes", " yes", ...). */
static int word_tokens(const yan_tokenizer *tok, const char *const *forms, int n_forms, yan_token *out, int cap) {
    int n = 0;
    for (int i = 0; i < n_forms && n < cap; i++) {
        yan_token t[8];
        int64_t got = yan_tokenize(tok, forms[i], strlen(forms[i]), t, 8, 0);
        if (got < 1) continue;
        bool dup = false;
        for (int j = 0; j < n; j++) dup |= out[j] == t[0];
        if (!dup) out[n++] = t[0];
    }
    return n;
}

static yan_status ctx_judge(void *ud, const yan_chat_message *msgs, size_t n, float *p_yes) {
    yan_rag_ctx_llm *st = ud;
    *p_yes = 0.5f;
    yan_token *ids = NULL;
    size_t n_ids = 0;
    yan_status s = format_tokens(st, msgs, n, &ids, &n_ids);
    if (s) return s;
    if (n_ids > (size_t)yan_context_n_ctx(st->ctx)) {
        yan_free_tokens(ids);
        return yan_fail(YAN_ERR_CONTEXT_FULL, "the rerank prompt (%zu tokens) does not fit the context", n_ids);
    }
    if (!(s = yan_context_truncate(st->ctx, 0))) s = yan_eval(st->ctx, ids, n_ids, false);
    yan_free_tokens(ids);
    if (s) return s;
    const float *lg = yan_logits(st->ctx, -1);
    if (!lg) return yan_fail(YAN_ERR_INVALID_ARG, "no logits after the rerank prompt");
    const yan_tokenizer *tok = yan_model_tokenizer(st->model);
    static const char *const YES[] = {"yes", "Yes", " yes", " Yes", "YES"};
    static const char *const NO[] = {"no", "No", " no", " No", "NO"};
    yan_token ty[5], tn[5];
    int ny = word_tokens(tok, YES, 5, ty, 5), nn = word_tokens(tok, NO, 5, tn, 5);
    int32_t V = yan_model_n_vocab(st->model);
    float mx = -INFINITY;
    for (int i = 0; i < ny; i++) if (ty[i] < V && lg[ty[i]] > mx) mx = lg[ty[i]];
    for (int i = 0; i < nn; i++) if (tn[i] < V && lg[tn[i]] > mx) mx = lg[tn[i]];
    if (!isfinite(mx)) return YAN_OK; /* neither word exists: no opinion */
    double sy = 0, sn = 0;
    for (int i = 0; i < ny; i++) if (ty[i] < V) sy += exp((double)(lg[ty[i]] - mx));
    for (int i = 0; i < nn; i++) if (tn[i] < V) sn += exp((double)(lg[tn[i]] - mx));
    if (sy + sn > 0) *p_yes = (float)(sy / (sy + sn));
    return YAN_OK;
}

static int64_t ctx_n_tokens(void *ud, const yan_chat_message *msgs, size_t n) {
    yan_rag_ctx_llm *st = ud;
    yan_token *ids = NULL;
    size_t n_ids = 0;
    if (format_tokens(st, msgs, n, &ids, &n_ids)) return -1;
    yan_free_tokens(ids);
    return (int64_t)n_ids;
}

yan_rag_llm yan_rag_llm_context(yan_rag_ctx_llm *st) {
    yan_rag_llm l = {ctx_chat, ctx_judge, ctx_n_tokens, st && st->ctx ? yan_context_n_ctx(st->ctx) : 0, st};
    return l;
}
