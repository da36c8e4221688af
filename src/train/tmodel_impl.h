/* tmodel_impl.h — what tmodel.c (the model, full training, the shared
 * forward and backward) and tlora.c (LoRA mode: targets, adapters, the
 * frozen base's products) share: the activation struct, the LoRA layer
 * structs and two small helpers. Private to src/train; the contract is
 * tmodel.h. Dimension vocabulary as in tmodel.c (BT rows, C, KD, QKVD, FF,
 * V, r = the LoRA rank). */
#ifndef YAN_TRAIN_TMODEL_IMPL_H
#define YAN_TRAIN_TMODEL_IMPL_H

#include "train/tmodel.h"

#include "tensor/tensor.h"

#define ALIGN_F 16   /* floats: 64 bytes */

typedef struct {
    int64_t attn_norm, wqkv, wo, ffn_norm, wgu, wdown; /* offsets into params / grads (LoRA: into base) */
} layer_off;

/* A frozen base matrix of LoRA mode, (rows x in): f32 rows, or up to three
 * stacked row ranges in their GGUF types (the fused q|k|v and gate|up). */
typedef struct {
    const float *f32;        /* (rows, in) row-major; NULL: the parts */
    int n_parts;
    yan_mat part[3];
    int64_t rows, in;
} wref;

/* One adapted matrix W (out x in) of LoRA mode. */
typedef struct {
    int64_t a, b;            /* offsets of lora_a (r, in) and lora_b (out, r); -1: not adapted */
    int64_t in, out, row0;   /* W's shape; its first row in the group's fused output */
    float *h;                /* (BTmax, r): s x A^T of the last forward */
} adapter;

/* The four linear groups of a layer: q|k|v, o, gate|up, down (tlora.c maps
 * each to its targets). */
enum { G_QKV, G_O, G_GU, G_DOWN, N_GROUPS };

typedef struct {
    wref w[N_GROUPS];        /* (QKVD, C), (C, C), (2FF, C), (C, FF) */
    adapter ad[YAN_LORA_N_TARGETS];
} lora_layer;

/* The activations and scratch of a model, allocated when it is created
 * (create, yan_tlorai_alloc) or loaded (yan_tlorai_bind_mapped); the forward
 * and backward allocate nothing. */
struct yan_tact {
    int B, T;                /* of the last forward */
    bool has_targets;
    bool backward_done;      /* the logits of the last forward are now their gradient */
    int64_t n_targets;
    int64_t BTmax;
    int nth;
    layer_off *lo;           /* (L) */
    int64_t off_embd, off_onorm, off_out;
    int32_t *inputs, *targets; /* (BTmax) copies of the last forward's ids */
    float *rope;             /* (Tmax, HD): HD/2 cosines then HD/2 sines per position */
    float *resid;            /* (L + 1, BT, C): input of layer l; [L] = final norm input */
    float *resid_mid;        /* (L, BT, C) */
    float *xn1, *xn2;        /* (L, BT, C) */
    float *rstd1, *rstd2;    /* (L, BT) */
    float *qkv;              /* (L, BT, QKVD) */
    float *lse;              /* (L, B, NH, T) attention row log-sum-exp */
    float *att;              /* (L, BT, C) */
    float *gu;               /* (L, BT, 2FF) */
    float *h;                /* (L, BT, FF) */
    float *xnf;              /* (BT, C) */
    float *rstdf;            /* (BT) */
    float *logits;           /* (BT, V); the backward turns them into dlogits */
    float *lse_out;          /* (BT) */
    float *row_loss;         /* (BT) */
    /* backward scratch */
    float *dres;             /* (BT, C) gradient of the residual stream */
    float *dxn;              /* (BT, C) gradient of a norm output / attention output */
    float *dh;               /* (BT, FF) */
    float *dbig;             /* (BT, max(2FF, QKVD)): dgu or dqkv */
    float *dkh, *dvh;        /* (BT, C) per query head dK, dV before the GQA sum */
    float *scr;              /* (nth, scr_stride) attention scratch */
    int64_t scr_stride;
    uint8_t *block;          /* the one allocation behind the buffers above */
    /* LoRA mode */
    lora_layer *ll;          /* (L) */
    wref w_out;              /* (V, C) output projection (token_embd when tied) */
    yan_mat embd_q;          /* mapped: token_embd in its GGUF type; data NULL otherwise */
    yan_mat *bm;             /* mapped: (n_base_tensors) the matrices in the mapping */
    float *du;               /* (BTmax, r) adapter backward scratch */
    float *tile;             /* mapped: (tile_rows, max(C, FF)) dequantized rows */
    int64_t tile_rows;       /* rows per tile (<= tile_alloc) */
    int64_t tile_alloc;      /* rows the tile holds */
    bool qfwd;               /* mapped: forward with yan_matmul (quantized activations) */
    void *qact;              /* mapped: (BTmax) activation rows quantized for yan_matmul */
    uint8_t *lblock;         /* the allocation behind h, du and tile */
};

/* Items [a, b) of n for thread ith of nth: contiguous, in order. */
static inline void split(int64_t n, int ith, int nth, int64_t *a, int64_t *b) {
    *a = n * ith / nth;
    *b = n * (ith + 1) / nth;
}

/* Append a tensor to tab at *off (64-byte aligned unless fused: then it
 * directly follows the previous one), advancing *off past its floats. */
static inline void add_tensor(yan_tparam *tab, int *n_tab, int64_t *off, const char *name, int64_t ne0, int64_t ne1,
                              bool decay, bool fused) {
    yan_tparam *t = &tab[(*n_tab)++];
    size_t len = strlen(name);
    YAN_ASSERT(len < sizeof t->name);
    memcpy(t->name, name, len + 1);
    t->ne0 = ne0;
    t->ne1 = ne1;
    if (!fused) *off = (*off + ALIGN_F - 1) / ALIGN_F * ALIGN_F;
    t->offset = *off;
    t->decay = decay;
    *off += ne0 * ne1;
}

/* ------------------------------------------------------------ tlora.c */

/* INVALID_ARG for a rank outside [1, 65536], a non-positive alpha or an
 * empty or unknown target set; YAN_OK otherwise. */
yan_status yan_tlorai_check(const yan_tlora *lora);
/* The adapter table into tab (per layer, per enabled target, lora_a then
 * lora_b); returns the floats of its block. */
int64_t yan_tlorai_build_table(const yan_tconfig *c, const yan_tlora *lo, yan_tparam *tab, int *n_tab);
/* LoRA part of creating m (m->lora, m->mapped, the tables, act->lo and the
 * parameter block already set): the zeroed base block, the adapters' h, the
 * backward scratch, the tile of a mapped base, and each adapter's shape and
 * offsets; an f32 base is bound at once. false: out of memory (what was
 * allocated is in m, for yan_tmodel_free). */
bool yan_tlorai_alloc(yan_tmodel *m);
/* Whether a LoRA base from g stays mapped: any of its matrices is not f32. */
bool yan_tlorai_base_mapped(const yan_gguf *g);
/* After the loader filled act->bm of a mapped base: the quantized-activation
 * scratch, the quantized forward on, and the group matrices bound. Errors:
 * NOMEM naming path. */
yan_status yan_tlorai_bind_mapped(yan_tmodel *m, const char *path);
/* y (BT, ldy) = x (BT, in) W^T for a frozen base matrix. */
void yan_tlorai_lin_fwd(yan_tmodel *m, const wref *w, const float *x, int64_t BT, float *y, int64_t ldy);
/* dx (BT, in) = dy (BT, ldy) W for a frozen base matrix. */
void yan_tlorai_lin_dx(yan_tmodel *m, const wref *w, const float *dy, int64_t ldy, int64_t BT, float *dx);
/* Group g of layer l forward: y (BT, rows) = x W^T + the group's adapters. */
void yan_tlorai_group_fwd(yan_tmodel *m, int l, int g, const float *x, int64_t BT, float *y);
/* Group g of layer l backward, dy (BT, rows): the adapters' gradients, and
 * dx (BT, in) = dy W + sum du A when dx is not NULL. */
void yan_tlorai_group_bwd(yan_tmodel *m, int l, int g, const float *x, int64_t BT, const float *dy, float *dx);

#endif /* YAN_TRAIN_TMODEL_IMPL_H */
