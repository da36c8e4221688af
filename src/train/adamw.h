/* adamw.h — the AdamW optimiser over a yan_tmodel's parameter block
 * (Loshchilov & Hutter: decoupled weight decay), as torch.optim.AdamW
 * computes it:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr * wd * p                       (only tensors with decay set)
 *   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * The moments are two blocks with the parameter layout (kept in
 * checkpoints). Runs over the model's pool; the result does not depend on the
 * number of threads. */
#ifndef YAN_ADAMW_H
#define YAN_ADAMW_H

#include "train/tmodel.h"

typedef struct {
    float beta1, beta2, eps, weight_decay;
    int64_t n;        /* floats in m and v (= model n_params) */
    int64_t t;        /* steps taken */
    float *m, *v;     /* 64-byte aligned, zeroed at creation */
} yan_adamw;

/* beta1 0.9, beta2 0.95, eps 1e-8, weight_decay 0.1, moments for model m.
 * Errors: NOMEM. */
yan_status yan_adamw_init(yan_adamw *o, const yan_tmodel *m);
void yan_adamw_free(yan_adamw *o);

/* One step at learning rate lr with m->grads (grads are not cleared). */
void yan_adamw_step(yan_adamw *o, yan_tmodel *m, float lr);

/* sqrt(sum g^2) over all gradients; when max_norm > 0 and
 * max_norm / (norm + 1e-6) < 1 (torch.nn.utils.clip_grad_norm_'s rule),
 * scale the gradients by that factor. Returns the norm before clipping. */
float yan_grad_clip(yan_tmodel *m, float max_norm);

#endif /* YAN_ADAMW_H */
