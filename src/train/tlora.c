/* tlora.c — LoRA mode of the trainable model (tmodel.h): the target names,
 * the adapter table and its buffers, the frozen base (an f32 block, or
 * matrices kept in their GGUF types inside the file mapping), the base and
 * adapter products of the forward and backward, and the adapter files.
 *
 * LoRA mode changes only the linear layers: each of the four per-layer
 * products (q|k|v, o, gate|up, down) becomes the frozen base product
 * (yan_tlorai_lin_fwd / _lin_dx: yan_sgemm on the f32 base; for a mapped
 * base yan_matmul or dequantized tiles of rows forward, the tiles backward)
 * plus, per adapted matrix in the group,
 * h = s x A^T (kept, (BT, r)) and y[:, rows] += h B^T; its backward
 * dB += dy^T h, du = s dy B, dA += du^T x, dx += du A (s = alpha / r). The
 * norms, the attention, SwiGLU and the loss are shared with full training;
 * the base gets no gradient. The full-training path does not go through any
 * of it.
 *
 * What this file does not do: the layer loop (tmodel.c's forward and
 * backward_lora call the group products here in place of their GEMMs), nor
 * reading the base's tensors (tmodel.c's loader fills base and act->bm,
 * then calls yan_tlorai_bind_mapped). Like tmodel.c, every product splits
 * its work so that the thread count changes no result.
 * Dependencies: tmodel_impl.h, gemm.h, pool.h, gguf.h, tensor.h (yan_matmul,
 * dequantize). */
#include "train/tmodel_impl.h"

#include <math.h>

#include "tensor/gemm.h"
#include "tensor/tensor.h"

/* ------------------------------------------------------------ LoRA targets */

static const char *const TARGET_NAME[YAN_LORA_N_TARGETS] = {"q", "k", "v", "o", "gate", "up", "down"};
static const char *const TARGET_TENSOR[YAN_LORA_N_TARGETS] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                              "ffn_gate", "ffn_up", "ffn_down"};

const char *yan_tlora_target_name(int i) { return i >= 0 && i < YAN_LORA_N_TARGETS ? TARGET_NAME[i] : "?"; }
const char *yan_tlora_target_tensor(int i) { return i >= 0 && i < YAN_LORA_N_TARGETS ? TARGET_TENSOR[i] : "?"; }

yan_status yan_tlora_parse_targets(const char *list, uint32_t *out) {
    *out = 0;
    if (!list) return yan_fail(YAN_ERR_INVALID_ARG, "no LoRA targets given");
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *w = p;
        size_t wn = n;
        while (wn && (*w == ' ' || *w == '\t')) w++, wn--;
        while (wn && (w[wn - 1] == ' ' || w[wn - 1] == '\t')) wn--;
        if (wn) {
            int k = -1;
            for (int i = 0; i < YAN_LORA_N_TARGETS && k < 0; i++)
                if ((wn == strlen(TARGET_NAME[i]) && !memcmp(w, TARGET_NAME[i], wn)) ||
                    (wn == strlen(TARGET_TENSOR[i]) && !memcmp(w, TARGET_TENSOR[i], wn)))
                    k = i;
            if (k >= 0) *out |= 1u << k;
            else if (wn == 3 && !memcmp(w, "all", 3)) *out |= YAN_LORA_ALL;
            else {
                *out = 0;
                return yan_fail(YAN_ERR_INVALID_ARG,
                                "unknown LoRA target '%.*s' (known: q, k, v, o, gate, up, down, or all)",
                                (int)(wn > 64 ? 64 : wn), w);
            }
        }
        p += n;
        if (*p == ',') p++;
    }
    if (!*out) return yan_fail(YAN_ERR_INVALID_ARG, "no LoRA targets given (known: q, k, v, o, gate, up, down, all)");
    return YAN_OK;
}

void yan_tlora_targets_str(uint32_t targets, char *buf, size_t cap) {
    size_t o = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < YAN_LORA_N_TARGETS; i++)
        if (targets & (1u << i)) {
            int n = snprintf(buf + o, cap > o ? cap - o : 0, "%s%s", o ? "," : "", TARGET_NAME[i]);
            if (n > 0) o += (size_t)n;
            if (o >= cap) break;
        }
}

/* (in, out, first row in the fused group) of LoRA target k */
static void target_shape(const yan_tconfig *c, int k, int64_t *in, int64_t *out, int64_t *row0) {
    const int64_t C = c->n_embd, KD = (int64_t)c->n_head_kv * (C / c->n_head), FF = c->n_ff;
    static const int kind[YAN_LORA_N_TARGETS] = {0, 1, 1, 0, 2, 2, 3};
    *in = k == 6 ? FF : C;
    *out = kind[k] == 0 ? C : kind[k] == 1 ? KD : kind[k] == 2 ? FF : C;
    *row0 = k == 1 ? C : k == 2 ? C + KD : k == 5 ? FF : 0;
}

int64_t yan_tlorai_build_table(const yan_tconfig *c, const yan_tlora *lo, yan_tparam *tab, int *n_tab) {
    int64_t off = 0;
    char b[96];
    *n_tab = 0;
    for (int l = 0; l < c->n_layer; l++)
        for (int k = 0; k < YAN_LORA_N_TARGETS; k++) {
            if (!(lo->targets & (1u << k))) continue;
            int64_t in, out, row0;
            target_shape(c, k, &in, &out, &row0);
            snprintf(b, sizeof b, "blk.%d.%s.weight.lora_a", l, TARGET_TENSOR[k]);
            add_tensor(tab, n_tab, &off, b, in, lo->rank, true, false);
            snprintf(b, sizeof b, "blk.%d.%s.weight.lora_b", l, TARGET_TENSOR[k]);
            add_tensor(tab, n_tab, &off, b, lo->rank, out, true, false);
        }
    return (off + ALIGN_F - 1) / ALIGN_F * ALIGN_F;
}

/* ------------------------------------------------------------ LoRA setup */

yan_status yan_tlorai_check(const yan_tlora *lora) {
    if (lora->rank < 1 || lora->rank > 65536)
        return yan_fail(YAN_ERR_INVALID_ARG, "LoRA rank %d is out of range [1, 65536]", lora->rank);
    if (!(lora->alpha > 0) || !isfinite(lora->alpha))
        return yan_fail(YAN_ERR_INVALID_ARG, "LoRA alpha must be a positive number");
    if (!lora->targets || (lora->targets & ~(uint32_t)YAN_LORA_ALL))
        return yan_fail(YAN_ERR_INVALID_ARG, "LoRA targets: none or unknown bits (0x%x)", lora->targets);
    return YAN_OK;
}

static int base_index(const yan_tmodel *m, const char *name) {
    for (int i = 0; i < m->n_base_tensors; i++)
        if (!strcmp(m->base_tensors[i].name, name)) return i;
    return -1;
}

/* Point the LoRA wrefs at the base: f32 rows of the block, or the mapped
 * matrices (a->bm, filled by the loader). */
static void bind(yan_tmodel *m) {
    yan_tact *a = m->act;
    const yan_tconfig *c = &m->cfg;
    const int64_t C = c->n_embd, KD = (int64_t)c->n_head_kv * (C / c->n_head), FF = c->n_ff, V = c->n_vocab;
    static const char *const parts[N_GROUPS][3] = {{"attn_q", "attn_k", "attn_v"}, {"attn_output"},
                                                   {"ffn_gate", "ffn_up"}, {"ffn_down"}};
    const int64_t rows[N_GROUPS] = {C + 2 * KD, C, 2 * FF, C}, ins[N_GROUPS] = {C, C, C, FF};
    char b[64];
    for (int l = 0; l < c->n_layer; l++) {
        const layer_off *o = &a->lo[l];
        const int64_t off[N_GROUPS] = {o->wqkv, o->wo, o->wgu, o->wdown};
        for (int g = 0; g < N_GROUPS; g++) {
            wref *w = &a->ll[l].w[g];
            memset(w, 0, sizeof *w);
            w->rows = rows[g];
            w->in = ins[g];
            if (!m->mapped) {
                w->f32 = m->base + off[g];
                continue;
            }
            for (int p = 0; p < 3 && parts[g][p]; p++) {
                snprintf(b, sizeof b, "blk.%d.%s.weight", l, parts[g][p]);
                int i = base_index(m, b);
                YAN_ASSERT(i >= 0);
                w->part[w->n_parts++] = a->bm[i];
            }
        }
    }
    memset(&a->w_out, 0, sizeof a->w_out);
    a->w_out.rows = V;
    a->w_out.in = C;
    if (!m->mapped) {
        a->w_out.f32 = m->base + a->off_out;
        return;
    }
    int ie = base_index(m, "token_embd.weight"), io = base_index(m, "output.weight");
    a->embd_q = a->bm[ie];
    a->w_out.n_parts = 1;
    a->w_out.part[0] = a->bm[c->tied_output ? ie : io];
}

bool yan_tlorai_alloc(yan_tmodel *m) {
    yan_tact *a = m->act;
    const yan_tconfig *cfg = &m->cfg;
    const yan_tlora *lora = &m->lora;
    const bool mapped = m->mapped;
    const int L = cfg->n_layer;
    /* the base block, the adapters' h, the backward scratch and the tile */
    const int64_t r = lora->rank, BTm = a->BTmax;
    const int64_t max_in = cfg->n_ff > cfg->n_embd ? cfg->n_ff : cfg->n_embd;
    int n_ad = 0;
    for (int k = 0; k < YAN_LORA_N_TARGETS; k++) n_ad += (lora->targets >> k) & 1;
    const int64_t hbytes = (BTm * r * (int64_t)sizeof(float) + 63) & ~(int64_t)63;
    int64_t tile_floats = 0;
    if (mapped) {
        const int64_t C = cfg->n_embd, KD = (int64_t)cfg->n_head_kv * (C / cfg->n_head);
        int64_t max_rows = cfg->n_vocab;
        if (C + 2 * KD > max_rows) max_rows = C + 2 * KD;
        if (2 * (int64_t)cfg->n_ff > max_rows) max_rows = 2 * (int64_t)cfg->n_ff;
        a->tile_rows = YAN_TMODEL_TILE_FLOATS / max_in;
        if (a->tile_rows < 1) a->tile_rows = 1;
        if (a->tile_rows > max_rows) a->tile_rows = max_rows;
        tile_floats = a->tile_rows * max_in;
        a->tile_alloc = a->tile_rows;
    }
    size_t lbytes = (size_t)(hbytes * ((int64_t)n_ad * L + 1)) + (size_t)tile_floats * sizeof(float);
    m->base = yan_malloc64((size_t)(m->n_base ? m->n_base : 1) * sizeof(float));
    a->lblock = yan_malloc64(lbytes);
    a->ll = yan_calloc((size_t)L, sizeof *a->ll);
    if (mapped) a->bm = yan_calloc((size_t)m->n_base_tensors, sizeof *a->bm);
    if (!m->base || !a->lblock || !a->ll || (mapped && !a->bm)) return false;
    memset(m->base, 0, (size_t)m->n_base * sizeof(float));
    uint8_t *pos = a->lblock;
    a->du = (float *)pos;
    pos += hbytes;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < YAN_LORA_N_TARGETS; k++) {
            adapter *ad = &a->ll[l].ad[k];
            target_shape(cfg, k, &ad->in, &ad->out, &ad->row0);
            ad->a = ad->b = -1;
            if (!(lora->targets & (1u << k))) continue;
            char b[96];
            snprintf(b, sizeof b, "blk.%d.%s.weight.lora_a", l, TARGET_TENSOR[k]);
            ad->a = yan_tmodel_find(m, b)->offset;
            snprintf(b, sizeof b, "blk.%d.%s.weight.lora_b", l, TARGET_TENSOR[k]);
            ad->b = yan_tmodel_find(m, b)->offset;
            ad->h = (float *)pos;
            pos += hbytes;
        }
    a->tile = mapped ? (float *)pos : NULL;
    if (!mapped) bind(m);
    return true;
}

const yan_tparam *yan_tmodel_find_base(const yan_tmodel *m, const char *name) {
    int i = m->base_tensors ? base_index(m, name) : -1;
    return i >= 0 ? &m->base_tensors[i] : NULL;
}

static bool is_matrix_name(const char *name) {
    return strcmp(name, "token_embd.weight") == 0 || strcmp(name, "output.weight") == 0 ||
           (strncmp(name, "blk.", 4) == 0 && !strstr(name, "_norm."));
}

bool yan_tlorai_base_mapped(const yan_gguf *g) {
    bool mapped = false;
    for (int64_t i = 0; i < yan_gguf_n_tensors(g); i++) {
        const yan_gguf_tensor *gt = yan_gguf_tensor_at(g, i);
        char name[YAN_GGUF_MAX_NAME + 1];
        snprintf(name, sizeof name, "%.*s", (int)gt->name_len, gt->name);
        if (gt->type != YAN_GGML_F32 && is_matrix_name(name)) mapped = true;
    }
    return mapped;
}

yan_status yan_tlorai_bind_mapped(yan_tmodel *m, const char *path) {
    size_t qb = 0;
    for (int i = 0; i < m->n_base_tensors; i++)
        if (m->base_tensors[i].offset < 0) {
            size_t b = yan_matmul_scratch_bytes(&m->act->bm[i], (int)m->act->BTmax);
            qb = b > qb ? b : qb;
        }
    if (!(m->act->qact = yan_malloc64(qb ? qb : 1)))
        return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
    m->act->qfwd = true;
    bind(m);
    return YAN_OK;
}

void yan_tmodel_set_mapped_forward(yan_tmodel *m, bool quantized) {
    if (m->mapped) m->act->qfwd = quantized;
}

void yan_tmodel_set_tile_rows(yan_tmodel *m, int64_t rows) {
    yan_tact *a = m->act;
    if (!m->mapped) return;
    if (rows < 1) rows = 1;
    if (rows > a->tile_alloc) rows = a->tile_alloc;
    a->tile_rows = rows;
}

/* ------------------------------------------------------------ LoRA products */

static const int GROUP_FIRST[N_GROUPS + 1] = {0, 3, 4, 6, 7}; /* targets of group g: [first[g], first[g+1]) */

typedef struct {
    const wref *w;
    int64_t r0, n;     /* rows [r0, r0 + n) of w */
    float *tile;       /* (n, w->in) */
} deq_job;

/* tile = rows [r0, r0 + n) of a mapped matrix, decoded to f32 (rows split) */
static void ph_dequant(void *ud, int ith, int nth) {
    const deq_job *j = ud;
    const wref *w = j->w;
    int64_t a, b;
    split(j->n, ith, nth, &a, &b);
    for (int64_t i = a; i < b; i++) {
        int64_t row = j->r0 + i;
        int p = 0;
        while (row >= w->part[p].ne1) row -= w->part[p++].ne1;
        const yan_mat *q = &w->part[p];
        yan_dequantize_row(q->type, (const uint8_t *)q->data + (size_t)row * q->row_bytes, j->tile + i * w->in,
                           w->in);
    }
}

typedef struct {
    yan_pool *pool;
    const yan_mat *w;
    const float *x;    /* (T, w->ne0) */
    int T;
    void *scr;         /* the quantized activations */
    float *y;
    int64_t ldy;
} qmm_job;

/* y = x W^T with the inference kernels: activations quantized by token
 * ranges, barrier, then output rows split over the threads (each element is
 * computed alone: the thread count changes nothing). */
static void ph_qmatmul(void *ud, int ith, int nth) {
    const qmm_job *j = ud;
    int64_t a, b;
    split(j->T, ith, nth, &a, &b);
    yan_matmul_prepare(j->w, j->x, j->T, (int)a, (int)b, j->scr);
    yan_pool_barrier(j->pool);
    const int64_t blocks = (j->w->ne1 + 15) / 16; /* row ranges start at multiples of 16, as the engine's */
    split(blocks, ith, nth, &a, &b);
    a *= 16;
    b = b * 16 < j->w->ne1 ? b * 16 : j->w->ne1;
    if (a < b) yan_matmul_rows(j->w, j->scr, j->x, j->T, j->y, j->ldy, a, b);
}

/* Whether yan_matmul is the fast way to multiply by w: the types and row
 * lengths its SIMD kernels take whole (q8_0 / q4_0 in groups of 128 values,
 * k-quants); anything else (f16, bf16, f32, short rows) goes through the
 * dequantized tiles, which were measured faster there. */
static bool qmatmul_fast(const yan_mat *w) {
    switch (w->type) {
    case YAN_T_Q4_0:
    case YAN_T_Q8_0: return w->ne0 % 128 == 0;
    case YAN_T_Q4_K:
    case YAN_T_Q5_K:
    case YAN_T_Q6_K: return true;
    default: return false;
    }
}

/* y (BT, ldy) = x (BT, in) W^T for a frozen base matrix: yan_sgemm on f32
 * rows; on a mapped matrix part by part, with yan_matmul (qfwd and a fast
 * kernel) or on dequantized tiles of rows. */
void yan_tlorai_lin_fwd(yan_tmodel *m, const wref *w, const float *x, int64_t BT, float *y, int64_t ldy) {
    if (w->f32) {
        yan_sgemm(m->pool, false, true, BT, w->rows, w->in, x, w->in, w->f32, w->in, 0.0f, y, ldy);
        return;
    }
    yan_tact *a = m->act;
    int64_t row = 0;
    for (int p = 0; p < w->n_parts; p++) {
        const yan_mat *q = &w->part[p];
        if (a->qfwd && qmatmul_fast(q)) {
            qmm_job j = {m->pool, q, x, (int)BT, a->qact, y + row, ldy};
            yan_pool_run(m->pool, ph_qmatmul, &j);
        } else {
            for (int64_t r0 = row; r0 < row + q->ne1; r0 += a->tile_rows) {
                deq_job j = {w, r0, row + q->ne1 - r0 < a->tile_rows ? row + q->ne1 - r0 : a->tile_rows, a->tile};
                yan_pool_run(m->pool, ph_dequant, &j);
                yan_sgemm(m->pool, false, true, BT, j.n, w->in, x, w->in, a->tile, w->in, 0.0f, y + r0, ldy);
            }
        }
        row += q->ne1;
    }
}

/* dx (BT, in) = dy (BT, ldy) W for a frozen base matrix. */
void yan_tlorai_lin_dx(yan_tmodel *m, const wref *w, const float *dy, int64_t ldy, int64_t BT, float *dx) {
    if (w->f32) {
        yan_sgemm(m->pool, false, false, BT, w->in, w->rows, dy, ldy, w->f32, w->in, 0.0f, dx, w->in);
        return;
    }
    yan_tact *a = m->act;
    for (int64_t r0 = 0; r0 < w->rows; r0 += a->tile_rows) {
        deq_job j = {w, r0, w->rows - r0 < a->tile_rows ? w->rows - r0 : a->tile_rows, a->tile};
        yan_pool_run(m->pool, ph_dequant, &j);
        yan_sgemm(m->pool, false, false, BT, w->in, j.n, dy + r0, ldy, a->tile, w->in, r0 ? 1.0f : 0.0f, dx, w->in);
    }
}

static inline float lora_scale(const yan_tmodel *m) { return m->lora.alpha / (float)m->lora.rank; }

/* Group g of layer l forward: y (BT, rows) = x W^T + the group's adapters. */
void yan_tlorai_group_fwd(yan_tmodel *m, int l, int g, const float *x, int64_t BT, float *y) {
    lora_layer *ll = &m->act->ll[l];
    const wref *w = &ll->w[g];
    const int64_t r = m->lora.rank;
    const float s = lora_scale(m);
    yan_tlorai_lin_fwd(m, w, x, BT, y, w->rows);
    for (int k = GROUP_FIRST[g]; k < GROUP_FIRST[g + 1]; k++) {
        const adapter *ad = &ll->ad[k];
        if (ad->a < 0) continue;
        yan_sgemm(m->pool, false, true, BT, r, ad->in, x, ad->in, m->params + ad->a, ad->in, 0.0f, ad->h, r);
        for (int64_t i = 0; i < BT * r; i++) ad->h[i] *= s;
        yan_sgemm(m->pool, false, true, BT, ad->out, r, ad->h, r, m->params + ad->b, r, 1.0f, y + ad->row0, w->rows);
    }
}

/* Group g of layer l backward, dy (BT, rows): the adapters' gradients, and
 * dx (BT, in) = dy W + sum du A when dx is not NULL. */
void yan_tlorai_group_bwd(yan_tmodel *m, int l, int g, const float *x, int64_t BT, const float *dy, float *dx) {
    lora_layer *ll = &m->act->ll[l];
    const wref *w = &ll->w[g];
    const int64_t r = m->lora.rank;
    const float s = lora_scale(m);
    float *du = m->act->du;
    if (dx) yan_tlorai_lin_dx(m, w, dy, w->rows, BT, dx);
    for (int k = GROUP_FIRST[g]; k < GROUP_FIRST[g + 1]; k++) {
        const adapter *ad = &ll->ad[k];
        if (ad->a < 0) continue;
        const float *dyk = dy + ad->row0;
        yan_sgemm(m->pool, true, false, ad->out, r, BT, dyk, w->rows, ad->h, r, 1.0f, m->grads + ad->b, r);
        yan_sgemm(m->pool, false, false, BT, r, ad->out, dyk, w->rows, m->params + ad->b, r, 0.0f, du, r);
        for (int64_t i = 0; i < BT * r; i++) du[i] *= s;
        yan_sgemm(m->pool, true, false, r, ad->in, BT, du, r, x, ad->in, 1.0f, m->grads + ad->a, ad->in);
        if (dx) yan_sgemm(m->pool, false, false, BT, ad->in, r, du, r, m->params + ad->a, ad->in, 1.0f, dx, ad->in);
    }
}

/* ------------------------------------------------------------ adapters */

yan_status yan_tmodel_adapter_to_gguf(const yan_tmodel *m, const char *name, yan_gguf_writer *w) {
    if (!m->lora.rank) return yan_fail(YAN_ERR_INVALID_ARG, "the model has no LoRA adapters");
    yan_status st;
    if ((st = yan_gguf_w_set_str(w, "general.architecture", "llama", 5))) return st;
    if ((st = yan_gguf_w_set_str(w, "general.type", "adapter", 7))) return st;
    if (name && (st = yan_gguf_w_set_str(w, "general.name", name, strlen(name)))) return st;
    if ((st = yan_gguf_w_set_str(w, "adapter.type", "lora", 4))) return st;
    if ((st = yan_gguf_w_set_f32(w, "adapter.lora.alpha", m->lora.alpha))) return st;
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        uint64_t dims[2] = {(uint64_t)t->ne0, (uint64_t)t->ne1};
        if ((st = yan_gguf_w_add_tensor(w, t->name, YAN_GGML_F32, 2, dims, m->params + t->offset))) return st;
    }
    return YAN_OK;
}

static bool gguf_str_is(const yan_gguf *g, const char *key, const char *want) {
    const char *s;
    size_t n;
    return yan_gguf_get_str(g, key, &s, &n) == YAN_OK && n == strlen(want) && !memcmp(s, want, n);
}

yan_status yan_tmodel_adapter_load(yan_tmodel *m, const char *path) {
    if (!m->lora.rank) return yan_fail(YAN_ERR_INVALID_ARG, "the model has no LoRA adapters to load into");
    yan_gguf *g = NULL;
    float *tmp = NULL;
    yan_status st = yan_gguf_open(path, &g);
    if (st) return st;
    float alpha;
    if (!gguf_str_is(g, "general.type", "adapter") || !gguf_str_is(g, "adapter.type", "lora")) {
        st = yan_fail(YAN_ERR_FORMAT, "%s: not a LoRA adapter (needs general.type = adapter, adapter.type = lora)", path);
        goto done;
    }
    if (!gguf_str_is(g, "general.architecture", "llama")) {
        st = yan_fail(YAN_ERR_FORMAT, "%s: the adapter is not for a llama model", path);
        goto done;
    }
    if (yan_gguf_get_f32(g, "adapter.lora.alpha", &alpha) != YAN_OK || alpha != m->lora.alpha) {
        st = yan_fail(YAN_ERR_FORMAT, "%s: adapter.lora.alpha is missing or not %g", path, (double)m->lora.alpha);
        goto done;
    }
    if (yan_gguf_n_tensors(g) != m->n_tensors) {
        st = yan_fail(YAN_ERR_FORMAT, "%s: %lld adapter tensors, the model has %d (other targets or layers?)", path,
                      (long long)yan_gguf_n_tensors(g), m->n_tensors);
        goto done;
    }
    if (!(tmp = yan_malloc((size_t)m->n_params * sizeof(float)))) {
        st = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    memcpy(tmp, m->params, (size_t)m->n_params * sizeof(float));
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *p = &m->tensors[i];
        const yan_gguf_tensor *gt = yan_gguf_find_tensor(g, p->name);
        if (!gt) {
            st = yan_fail(YAN_ERR_FORMAT, "%s: adapter tensor '%s' is missing", path, p->name);
            goto done;
        }
        if (gt->n_dims != 2 || gt->ne[0] != (uint64_t)p->ne0 || gt->ne[1] != (uint64_t)p->ne1 ||
            !yan_type_supported((int)gt->type)) {
            st = yan_fail(YAN_ERR_FORMAT, "%s: adapter tensor '%s' is %s [%llu, %llu], expected [%lld, %lld]", path,
                          p->name, yan_type_name((int)gt->type), (unsigned long long)gt->ne[0],
                          (unsigned long long)gt->ne[1], (long long)p->ne0, (long long)p->ne1);
            goto done;
        }
        size_t rb = yan_type_row_bytes((int)gt->type, p->ne0);
        float *dst = tmp + p->offset;
        for (int64_t r = 0; r < p->ne1; r++) yan_dequantize_row((int)gt->type, gt->data + (size_t)r * rb, dst + r * p->ne0, p->ne0);
        for (int64_t k = 0; k < p->ne0 * p->ne1; k++)
            if (!isfinite(dst[k])) {
                st = yan_fail(YAN_ERR_FORMAT, "%s: adapter tensor '%s' has a non-finite value", path, p->name);
                goto done;
            }
    }
    memcpy(m->params, tmp, (size_t)m->n_params * sizeof(float));
done:
    yan_free(tmp);
    yan_gguf_close(g);
    return st;
}
