/* generate.c — the generation loop: evaluate a prompt, then sample, stream
 * and evaluate one token at a time until a stop condition.
 *
 * Text reaches the callback as complete UTF-8 only (a yan_decoder holds split
 * characters), and text that could still become a stop string is held back
 * until it cannot; a matched stop string and everything after it is never
 * emitted. Stops: an end-of-generation token (EOS/EOT and turn-ending CONTROL
 * tokens, unless stop_at_eos is false), a stop string, max_tokens, the
 * context filling up, or the callback returning false.
 * On return the context holds the prompt and every generated token except
 * the last one sampled (as llama.cpp: the last token is never evaluated,
 * which saves a forward pass; an end-of-generation token is not counted).
 * Allocates (decoder, text buffers) outside the per-token forward pass.
 * Dependencies: model.h, the sampler and decoder APIs of yan.h. */
#include "model/model.h"

#include <time.h>

yan_generate_params yan_generate_params_default(void) {
    yan_generate_params p = {0};
    p.max_tokens = 0;
    p.stop_at_eos = true;
    return p;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Length of the longest proper prefix of some stop string that ends s[0..n). */
static size_t stop_holdback(const yan_generate_params *p, const char *s, size_t n) {
    size_t best = 0;
    for (int i = 0; i < p->n_stop; i++) {
        const char *st = p->stop[i];
        if (!st || !st[0]) continue;
        size_t sl = strlen(st);
        for (size_t k = (sl - 1 < n ? sl - 1 : n); k > best; k--)
            if (!memcmp(s + n - k, st, k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* Earliest position of a stop string in s[0..n), or n when none. */
static size_t stop_find(const yan_generate_params *p, const char *s, size_t n) {
    size_t first = n;
    for (int i = 0; i < p->n_stop; i++) {
        const char *st = p->stop[i];
        if (!st || !st[0]) continue;
        size_t sl = strlen(st);
        for (size_t j = 0; j + sl <= n && j < first; j++)
            if (!memcmp(s + j, st, sl)) {
                first = j;
                break;
            }
    }
    return first;
}

/* Emit pending[0..k) and keep the rest. Returns false when the callback asks to stop. */
static bool emit(const yan_generate_params *p, yan_buf *pending, size_t k) {
    bool go = true;
    if (k && p->on_text) go = p->on_text(pending->data, k, p->ud);
    memmove(pending->data, pending->data + k, pending->len - k);
    pending->len -= k;
    pending->data[pending->len] = 0;
    return go;
}

/* Decode one token (or flush when tok < 0) and append its text to out. */
static yan_status decode_into(yan_decoder *d, yan_token tok, yan_buf *out) {
    for (size_t cap = 64;;) {
        if (!yan_buf_reserve(out, cap)) return yan_fail(YAN_ERR_NOMEM, "out of memory while generating");
        int64_t r = tok >= 0 ? yan_decoder_push(d, tok, out->data + out->len, cap)
                             : yan_decoder_flush(d, out->data + out->len, cap);
        if (r == INT64_MIN) return yan_fail(YAN_ERR_NOMEM, "cannot decode token %d", tok);
        if (r >= 0) {
            out->len += (size_t)r;
            return YAN_OK;
        }
        cap = (size_t)-r;
    }
}

yan_status yan_generate(yan_context *ctx, yan_sampler *s, const yan_token *prompt, size_t n_prompt,
                        const yan_generate_params *p, yan_generate_result *res) {
    yan_generate_params dp = yan_generate_params_default();
    if (!p) p = &dp;
    yan_generate_result r0 = {0};
    if (res) *res = r0;
    if (!ctx || !s) return yan_fail(YAN_ERR_INVALID_ARG, "yan_generate: no context or sampler");
    if (n_prompt == 0 || !prompt) return yan_fail(YAN_ERR_INVALID_ARG, "yan_generate: the prompt is empty");
    if (p->max_tokens < 0) return yan_fail(YAN_ERR_INVALID_ARG, "yan_generate: max_tokens %d is negative", p->max_tokens);
    if (p->n_stop < 0 || (p->n_stop > 0 && !p->stop))
        return yan_fail(YAN_ERR_INVALID_ARG, "yan_generate: bad stop list");
    int32_t n_ctx = yan_context_n_ctx(ctx), n_past = yan_context_n_past(ctx);
    uint64_t need = (uint64_t)n_past + n_prompt + (uint64_t)p->max_tokens;
    if (n_prompt > (size_t)(n_ctx - n_past) || need > (uint64_t)n_ctx)
        return yan_fail(YAN_ERR_CONTEXT_FULL,
                        "the prompt (%zu tokens) and max_tokens (%d) do not fit the context (%d of %d tokens used)",
                        n_prompt, p->max_tokens, n_past, n_ctx);
    const yan_model *m = yan_context_model(ctx);
    yan_decoder *dec = NULL;
    yan_buf pending = {0};
    yan_status st = yan_decoder_new(m->tok, &dec);
    if (st) return st;
    yan_generate_result out = {0};
    out.n_prompt = (int32_t)n_prompt;
    out.finish = YAN_FINISH_LENGTH;

    double t_start = now_s();
    for (size_t i = 0; i < n_prompt; i++) yan_sampler_accept(s, prompt[i]);
    if ((st = yan_eval(ctx, prompt, n_prompt, false))) goto done;
    double t_prompt = now_s();
    out.prompt_seconds = t_prompt - t_start;

    bool stopped = false; /* by a stop string or the callback: pending text is dropped */
    for (;;) {
        const float *logits = yan_logits(ctx, -1);
        yan_token tok = yan_sampler_sample(s, logits, NULL, 0);
        if (p->stop_at_eos && yan_model_is_eog(m, tok)) {
            out.finish = YAN_FINISH_STOP;
            break;
        }
        out.n_generated++;
        if ((st = decode_into(dec, tok, &pending))) goto done;
        size_t at = stop_find(p, pending.data, pending.len);
        if (at < pending.len) {
            emit(p, &pending, at);
            out.finish = YAN_FINISH_STOP;
            stopped = true;
            break;
        }
        if (!emit(p, &pending, pending.len - stop_holdback(p, pending.data, pending.len))) {
            out.finish = YAN_FINISH_ABORTED;
            stopped = true;
            break;
        }
        if (p->max_tokens > 0 && out.n_generated >= p->max_tokens) break;
        if (yan_context_n_past(ctx) >= n_ctx) break;
        if ((st = yan_eval(ctx, &tok, 1, false))) goto done;
    }
    if (!stopped) {
        if ((st = decode_into(dec, -1, &pending))) goto done;
        if (!emit(p, &pending, pending.len)) out.finish = YAN_FINISH_ABORTED;
    }
    out.generate_seconds = now_s() - t_prompt;
done:
    if (res) *res = out;
    yan_buf_free(&pending);
    yan_decoder_free(dec);
    return st;
}
