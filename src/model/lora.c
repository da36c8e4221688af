/* lora.c — LoRA adapters in llama.cpp's GGUF format, applied to a loaded
 * model (yan_model_apply_lora) or merged into a new model file
 * (yan_lora_merge).
 *
 * The adapter file: general.type = "adapter", adapter.type = "lora",
 * adapter.lora.alpha (f32; absent or 0 = no alpha scaling), the base's
 * general.architecture, and for each adapted matrix W (ne0 = in, ne1 = out)
 * two tensors "<W's name>.lora_a" (ne0 = in, ne1 = r) and
 * "<W's name>.lora_b" (ne0 = r, ne1 = out), in any type yan decodes.
 * The adapted matrix is W + s * B A with s = scale * alpha / r (s = scale
 * when alpha is 0), B the rows of lora_b (out x r) and A those of lora_a
 * (r x in) — what llama.cpp computes at run time as scale * B (A x).
 *
 * Applying: each adapted matrix becomes an f32 copy owned by the model (the
 * mapped original is left alone), so generation runs at f32-matrix speed for
 * those matrices; merging writes W + s B A back in W's own type (quantized
 * types are re-encoded) so the merged file is as small as the base. */
#include "model/model.h"
#include "tensor/gemm.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    char target[YAN_GGUF_MAX_NAME + 1];
    const yan_gguf_tensor *a, *b;
} lora_pair;

typedef struct {
    yan_gguf *g;
    lora_pair *pairs;
    int n;
    float alpha;
} lora_file;

static void lora_close(lora_file *f) {
    yan_free(f->pairs);
    yan_gguf_close(f->g);
    memset(f, 0, sizeof *f);
}

static bool str_is(const yan_gguf *g, const char *key, const char *want) {
    const char *s;
    size_t n;
    return yan_gguf_get_str(g, key, &s, &n) == YAN_OK && n == strlen(want) && memcmp(s, want, n) == 0;
}

/* Open an adapter and pair its tensors; arch is the base's architecture. */
static yan_status lora_open(const char *path, const char *arch, lora_file *f) {
    memset(f, 0, sizeof *f);
    yan_status s = yan_gguf_open(path, &f->g);
    if (s) return s;
    if (!str_is(f->g, "general.type", "adapter") || !str_is(f->g, "adapter.type", "lora")) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: not a LoRA adapter (needs general.type = adapter, adapter.type = lora)", path);
        goto fail;
    }
    if (!str_is(f->g, "general.architecture", arch)) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: the adapter is not for a '%s' model", path, arch);
        goto fail;
    }
    f->alpha = 0;
    s = yan_gguf_get_f32(f->g, "adapter.lora.alpha", &f->alpha);
    if (s == YAN_ERR_NOT_FOUND) s = YAN_OK;
    if (s) {
        yan_error_prefix(path);
        goto fail;
    }
    int64_t nt = yan_gguf_n_tensors(f->g);
    if (!(f->pairs = yan_calloc((size_t)(nt > 0 ? nt : 1), sizeof *f->pairs))) {
        s = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int64_t i = 0; i < nt; i++) {
        const yan_gguf_tensor *t = yan_gguf_tensor_at(f->g, i);
        size_t n = t->name_len;
        bool is_a = n > 7 && memcmp(t->name + n - 7, ".lora_a", 7) == 0;
        bool is_b = n > 7 && memcmp(t->name + n - 7, ".lora_b", 7) == 0;
        if (!is_a && !is_b) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: unexpected tensor '%.*s' (expected <name>.lora_a / .lora_b)", path,
                         (int)n, t->name);
            goto fail;
        }
        if (t->n_dims != 2 || !yan_type_supported((int)t->type)) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: tensor '%.*s' must be a 2-D matrix of a type yan decodes", path,
                         (int)n, t->name);
            goto fail;
        }
        int k;
        for (k = 0; k < f->n; k++)
            if (strlen(f->pairs[k].target) == n - 7 && memcmp(f->pairs[k].target, t->name, n - 7) == 0) break;
        if (k == f->n) {
            memcpy(f->pairs[k].target, t->name, n - 7);
            f->pairs[k].target[n - 7] = 0;
            f->n++;
        }
        const yan_gguf_tensor **slot = is_a ? &f->pairs[k].a : &f->pairs[k].b;
        if (*slot) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: tensor '%.*s' appears twice", path, (int)n, t->name);
            goto fail;
        }
        *slot = t;
    }
    if (f->n == 0) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: the adapter has no tensors", path);
        goto fail;
    }
    for (int k = 0; k < f->n; k++) {
        const lora_pair *p = &f->pairs[k];
        if (!p->a || !p->b) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: %s has only one of lora_a and lora_b", path, p->target);
            goto fail;
        }
        if (p->a->ne[1] != p->b->ne[0] || p->a->ne[1] == 0) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: %s: lora_a is %llu x %llu but lora_b is %llu x %llu (ranks differ)", path,
                         p->target, (unsigned long long)p->a->ne[0], (unsigned long long)p->a->ne[1],
                         (unsigned long long)p->b->ne[0], (unsigned long long)p->b->ne[1]);
            goto fail;
        }
    }
    return YAN_OK;
fail:
    lora_close(f);
    return s;
}

/* W (out x in, f32, row-major) += s * B A for pair p. */
static yan_status lora_add(const lora_pair *p, float s, float *w) {
    int64_t in = (int64_t)p->a->ne[0], r = (int64_t)p->a->ne[1], out = (int64_t)p->b->ne[1];
    float *a = yan_malloc((size_t)(r * in) * sizeof(float));
    float *b = yan_malloc((size_t)(out * r) * sizeof(float));
    if (!a || !b) {
        yan_free(a);
        yan_free(b);
        return yan_fail(YAN_ERR_NOMEM, "LoRA %s: out of memory", p->target);
    }
    size_t arb = yan_type_row_bytes((int)p->a->type, in), brb = yan_type_row_bytes((int)p->b->type, r);
    for (int64_t i = 0; i < r; i++) yan_dequantize_row((int)p->a->type, (const uint8_t *)p->a->data + i * arb, a + i * in, in);
    for (int64_t i = 0; i < out; i++) {
        yan_dequantize_row((int)p->b->type, (const uint8_t *)p->b->data + i * brb, b + i * r, r);
        for (int64_t j = 0; j < r; j++) b[i * r + j] *= s;
    }
    yan_sgemm(NULL, false, false, out, in, r, b, r, a, in, 1.0f, w, in);
    yan_free(a);
    yan_free(b);
    return YAN_OK;
}

static float lora_scale(const lora_file *f, const lora_pair *p, float scale) {
    return f->alpha != 0 ? scale * f->alpha / (float)p->a->ne[1] : scale;
}

/* The model matrix a GGUF name refers to, or NULL. */
static yan_mat *model_mat(yan_model *m, const char *name) {
    int l, n = 0;
    char rest[64];
    if (strcmp(name, "output.weight") == 0) return m->tied_output ? NULL : &m->output;
    if (sscanf(name, "blk.%d.%63s%n", &l, rest, &n) != 2 || name[n] || l < 0 || l >= m->hp.n_layer) return NULL;
    yan_layer *L = &m->layers[l];
    static const struct { const char *name; size_t off; } k[] = {
        {"attn_q.weight", offsetof(yan_layer, wq)},       {"attn_k.weight", offsetof(yan_layer, wk)},
        {"attn_v.weight", offsetof(yan_layer, wv)},       {"attn_qkv.weight", offsetof(yan_layer, wqkv)},
        {"attn_output.weight", offsetof(yan_layer, wo)},  {"ffn_gate.weight", offsetof(yan_layer, w_gate)},
        {"ffn_up.weight", offsetof(yan_layer, w_up)},     {"ffn_down.weight", offsetof(yan_layer, w_down)},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(rest, k[i].name) == 0) {
            yan_mat *w = (yan_mat *)((char *)L + k[i].off);
            return w->data ? w : NULL;
        }
    return NULL;
}

YAN_API yan_status yan_model_apply_lora(yan_model *m, const char *path, float scale) {
    if (!m || !path) return yan_fail(YAN_ERR_INVALID_ARG, "yan_model_apply_lora: NULL argument");
    lora_file f;
    yan_status s = lora_open(path, m->arch_name, &f);
    if (s) return s;
    /* check everything before changing the model */
    for (int k = 0; k < f.n; k++) {
        const lora_pair *p = &f.pairs[k];
        yan_mat *w = model_mat(m, p->target);
        if (!w) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: the model has no adaptable matrix '%s'", path, p->target);
            goto done;
        }
        if ((int64_t)p->a->ne[0] != w->ne0 || (int64_t)p->b->ne[1] != w->ne1) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: %s is %lld x %lld in the model but the adapter is for %llu x %llu", path,
                         p->target, (long long)w->ne0, (long long)w->ne1, (unsigned long long)p->a->ne[0],
                         (unsigned long long)p->b->ne[1]);
            goto done;
        }
    }
    size_t need = (size_t)(m->n_lora + f.n);
    float **bufs = yan_realloc(m->lora_bufs, need * sizeof *bufs);
    if (!bufs) {
        s = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    m->lora_bufs = bufs;
    for (int k = 0; k < f.n; k++) {
        const lora_pair *p = &f.pairs[k];
        yan_mat *w = model_mat(m, p->target);
        float *buf = yan_malloc((size_t)(w->ne0 * w->ne1) * sizeof(float));
        if (!buf) {
            s = yan_fail(YAN_ERR_NOMEM, "%s: out of memory for %s", path, p->target);
            goto done;
        }
        for (int64_t r = 0; r < w->ne1; r++)
            yan_dequantize_row(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, buf + r * w->ne0, w->ne0);
        if ((s = lora_add(p, lora_scale(&f, p, scale), buf))) {
            yan_free(buf);
            goto done;
        }
        m->lora_bufs[m->n_lora++] = buf;
        m->type_count[w->type]--;
        m->type_count[YAN_T_F32]++;
        w->type = YAN_T_F32;
        w->row_bytes = (size_t)w->ne0 * sizeof(float);
        w->data = buf;
    }
done:
    lora_close(&f);
    return s;
}

YAN_API yan_status yan_lora_merge(const char *base_path, const char *adapter_path, float scale, const char *out_path) {
    if (!base_path || !adapter_path || !out_path) return yan_fail(YAN_ERR_INVALID_ARG, "lora merge: NULL argument");
    if (strcmp(base_path, out_path) == 0 || strcmp(adapter_path, out_path) == 0)
        return yan_fail(YAN_ERR_INVALID_ARG, "%s: the output must be a new file", out_path);
    yan_gguf *g = NULL;
    yan_gguf_writer *w = NULL;
    lora_file f = {0};
    void **bufs = NULL;
    float *row = NULL;
    yan_status s = yan_gguf_open(base_path, &g);
    if (s) return s;
    const char *arch;
    size_t alen;
    char archz[64];
    if (yan_gguf_get_str(g, "general.architecture", &arch, &alen) != YAN_OK || alen >= sizeof archz) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: no general.architecture", base_path);
        goto done;
    }
    memcpy(archz, arch, alen);
    archz[alen] = 0;
    if ((s = lora_open(adapter_path, archz, &f))) goto done;
    int64_t nt = yan_gguf_n_tensors(g);
    int *used = NULL;
    if (!(bufs = yan_calloc((size_t)(nt > 0 ? nt : 1), sizeof *bufs)) ||
        !(used = yan_calloc((size_t)f.n, sizeof *used))) {
        yan_free(used);
        s = yan_fail(YAN_ERR_NOMEM, "lora merge: out of memory");
        goto done;
    }
    if ((s = yan_gguf_writer_new(&w))) goto done_used;
    for (int64_t i = 0; i < yan_gguf_n_kv(g); i++) {
        size_t klen, vlen;
        const char *k = yan_gguf_key(g, i, &klen);
        char key[512];
        if (klen >= sizeof key) continue;
        memcpy(key, k, klen);
        key[klen] = 0;
        const uint8_t *v = yan_gguf_kv_raw(g, i, &vlen);
        if ((s = yan_gguf_w_set_raw(w, key, yan_gguf_kv_type(g, i), v, vlen))) goto done_used;
    }
    for (int64_t i = 0; i < nt; i++) {
        const yan_gguf_tensor *t = yan_gguf_tensor_at(g, i);
        char name[YAN_GGUF_MAX_NAME + 1];
        snprintf(name, sizeof name, "%.*s", (int)t->name_len, t->name);
        const void *data = t->data;
        for (int k = 0; k < f.n; k++) {
            const lora_pair *p = &f.pairs[k];
            if (strcmp(p->target, name) != 0) continue;
            used[k] = 1;
            int64_t in = (int64_t)t->ne[0], out = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
            if (t->n_dims != 2 || (int64_t)p->a->ne[0] != in || (int64_t)p->b->ne[1] != out) {
                s = yan_fail(YAN_ERR_FORMAT, "%s: the adapter's %s does not fit the base's shape", adapter_path, name);
                goto done_used;
            }
            if (!yan_type_supported((int)t->type)) {
                s = yan_fail(YAN_ERR_UNSUPPORTED, "%s: %s has type %s, which yan cannot decode", base_path, name,
                             yan_type_name((int)t->type));
                goto done_used;
            }
            float *full = yan_malloc((size_t)(in * out) * sizeof(float));
            size_t rb = yan_type_row_bytes((int)t->type, in);
            if (!full || !(bufs[i] = yan_malloc(rb * (size_t)out + 1))) {
                yan_free(full);
                s = yan_fail(YAN_ERR_NOMEM, "lora merge: out of memory for %s", name);
                goto done_used;
            }
            for (int64_t r = 0; r < out; r++)
                yan_dequantize_row((int)t->type, (const uint8_t *)t->data + r * rb, full + r * in, in);
            s = lora_add(p, lora_scale(&f, p, scale), full);
            for (int64_t r = 0; !s && r < out; r++)
                if (!yan_quantize_row((int)t->type, full + r * in, (uint8_t *)bufs[i] + r * rb, in))
                    s = yan_fail(YAN_ERR_UNSUPPORTED, "lora merge: cannot encode %s as %s", name,
                                 yan_type_name((int)t->type));
            yan_free(full);
            if (s) goto done_used;
            data = bufs[i];
        }
        if ((s = yan_gguf_w_add_tensor(w, name, t->type, t->n_dims, t->ne, data))) goto done_used;
    }
    for (int k = 0; k < f.n; k++)
        if (!used[k]) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: the base model has no tensor '%s'", adapter_path, f.pairs[k].target);
            goto done_used;
        }
    s = yan_gguf_w_write(w, out_path);
done_used:
    yan_free(used);
done:
    if (bufs)
        for (int64_t i = 0; i < yan_gguf_n_tensors(g); i++) yan_free(bufs[i]);
    yan_free(bufs);
    yan_free(row);
    yan_gguf_writer_free(w);
    lora_close(&f);
    yan_gguf_close(g);
    return s;
}
