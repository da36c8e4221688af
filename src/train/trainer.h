/* trainer.h — the pre-training loop behind `yan train`: a llama model
 * (tmodel.h) trained with AdamW (adamw.h) on token shards (data.h),
 * optionally data-parallel over MPI ranks (dist.h), with checkpoints that
 * resume bit-exactly (ckpt.c), a loss log (loss.csv), a loss curve
 * (loss.svg, plot.h) and the final model as a normal llama GGUF.
 *
 * One step: k micro-batches of B x T tokens, each forward + backward with the
 * gradient scaled by 1/(k R) (R ranks, each holding B/R rows of every
 * micro-batch: rank r takes rows r, r+R, ... so that R ranks see exactly the
 * batch one process would), gradients summed over ranks, clipped to a global
 * norm, then an AdamW step at the learning rate of the schedule (linear
 * warmup, then cosine decay to min_lr at the last step).
 *
 * Determinism: given the seed and the data, the losses are bit-identical run
 * to run, for any thread count, and across a checkpoint + resume. Across rank
 * counts they agree to float rounding (the summation order differs).
 *
 * The trainer never prints: it reports through an event callback, and
 * failures are yan_status codes with yan_last_error() naming the file.
 * Output files (written by rank 0 only, each atomically: temp + fsync +
 * rename, so a process killed at any moment leaves the previous version):
 *   OUT/ckpt.gguf   model + tokenizer + AdamW moments + yan.train.* state
 *   OUT/model.gguf  the model alone (llama GGUF with tokenizer and a ChatML
 *                   chat template): yan run, yan chat, llama.cpp
 *   OUT/loss.csv    step,train_loss,val_loss,val_bpb,lr,grad_norm,tokens_per_s
 *   OUT/loss.svg    train and validation loss against step
 *
 * Fine-tuning (`yan finetune`, cfg.base_path set) runs the same loop, steps,
 * schedule, logs and checkpoints on another batch source and model:
 *  - the model is the base GGUF (yan_tmodel_load_gguf: full fine-tuning), or
 *    the base frozen with LoRA adapters (yan_tmodel_load_lora, cfg.lora);
 *  - the data are chat conversations (sft.h) rendered with the base's chat
 *    template family (or cfg.chat_template): one conversation per row,
 *    padded with the end-of-text id, targets -1 outside the assistant
 *    replies; the training stream visits the conversations in a new seeded
 *    order every epoch (data_pos counts conversations);
 *  - validation is the token-weighted mean loss over every validation
 *    conversation (cfg.sft_val, or a held-out cfg.val_fraction of the data);
 *  - the output is OUT/model.gguf (full: the base's architecture, tokenizer
 *    and chat template) or OUT/adapter.gguf (LoRA, llama.cpp's format);
 *  - checkpoints hold the weights (full) or the adapters (LoRA), the
 *    optimizer, and the identity of the base (path, size and a hash of
 *    sampled blocks) and of the data: resuming against another base or
 *    other data is refused. */
#ifndef YAN_TRAINER_H
#define YAN_TRAINER_H

#include "train/adamw.h"
#include "train/data.h"
#include "train/dist.h"
#include "train/sft.h"
#include "train/tmodel.h"

#define YAN_TRAIN_PATH_MAX 1024
#define YAN_TRAIN_CKPT_VERSION 1
/* tokenizer.chat_template written into model.gguf (ChatML, so `yan chat`
 * and llama.cpp format conversations for it). */
#define YAN_TRAIN_CHAT_TEMPLATE                                                                          \
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + " \
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

/* ------------------------------------------------------------ configuration */

typedef struct {
    yan_tconfig model;        /* n_vocab 0 = the data's tokenizer */
    char data_dir[YAN_TRAIN_PATH_MAX];  /* from `yan data prepare` */
    char out_dir[YAN_TRAIN_PATH_MAX];   /* created if missing */
    char sample_prompt[256];  /* "" = start samples from BOS (or the end-of-text id) */
    int32_t batch;            /* B: sequences per micro-batch, over all ranks (8) */
    int32_t seq;              /* T: tokens per sequence (128); <= model.n_ctx */
    int32_t accum;            /* k: micro-batches per optimizer step (1) */
    int64_t steps;            /* optimizer steps in all (1000) */
    float lr;                 /* peak learning rate (1e-3) */
    float min_lr;             /* learning rate at the last step (lr / 10); < 0 = lr / 10 */
    int64_t warmup;           /* linear warmup steps; < 0 = 5% of steps, at most 1000 */
    float weight_decay;       /* AdamW decoupled decay on matrices (0.1) */
    float beta1, beta2, eps;  /* 0.9, 0.95, 1e-8 */
    float clip;               /* global gradient-norm limit; 0 = no clipping (1.0) */
    uint64_t seed;            /* initialisation and sampling (1337) */
    int64_t eval_every;       /* validation every N steps and at the end; 0 = never (100) */
    int32_t eval_batches;     /* fixed validation batches from position 0 (8) */
    int64_t sample_every;     /* a text sample every N steps; 0 = never (0) */
    int32_t sample_tokens;    /* tokens per sample (48) */
    float sample_temp;        /* sampling temperature; 0 = greedy (0.8) */
    int64_t ckpt_every;       /* checkpoint every N steps (and always at the end); 0 = end only (100) */
    /* fine-tuning (yan finetune): base_path set; data_dir unused */
    char base_path[YAN_TRAIN_PATH_MAX];  /* the model fine-tuned (llama GGUF, any weight type) */
    char sft_data[YAN_TRAIN_PATH_MAX];   /* chat JSONL (OpenAI messages) */
    char sft_val[YAN_TRAIN_PATH_MAX];    /* validation JSONL; "" = hold out val_fraction */
    char chat_template[32];   /* template family; "" = recognised in the base's tokenizer.chat_template */
    float val_fraction;       /* share of the conversations held out when sft_val is "" (0.05) */
    int64_t epochs;           /* > 0: steps = ceil(epochs * conversations / (batch * accum)) */
    yan_tlora lora;           /* rank 0 = full fine-tuning */
    bool exact_base;          /* LoRA on a quantized base: forward on dequantized tiles too (exact, slower) */
    /* per run: not kept in checkpoints */
    int threads;              /* 0 = all cores */
    int64_t stop_after;       /* end this run after step N (checkpoint, model) as if interrupted; 0 = off */
} yan_train_config;

yan_train_config yan_train_config_default(void);

/* Model shape of a preset into c->model (vocab and context untouched):
 *   tiny: 2 layers, dim 128, 4 heads, FF 384
 *   s:    4 layers, dim 256, 4 heads, FF 704
 *   m:    6 layers, dim 384, 6 heads, FF 1024
 * Errors: INVALID_ARG naming the known presets. */
yan_status yan_train_preset(yan_train_config *c, const char *name);
/* Llama's feed-forward width for a dim: 8/3 dim rounded up to a multiple of 64. */
int32_t yan_train_ff_for(int32_t dim);

/* Check a configuration (ranges, B divisible by ranks, T <= n_ctx, model
 * shape). Errors: INVALID_ARG naming the field. */
yan_status yan_train_config_check(const yan_train_config *c, int n_ranks);

/* Learning rate for optimizer step `step` (0-based): lr (step+1)/warmup during
 * warmup, then min_lr + (lr - min_lr) (1 + cos(pi p)) / 2 with p going from 0
 * at the end of warmup to 1 at the last step (held at min_lr beyond). */
float yan_train_lr_at(const yan_train_config *c, int64_t step);

/* ------------------------------------------------------------ the trainer */

/* One line of loss.csv / one point of the loss curve. */
typedef struct {
    int64_t step;             /* steps completed (1-based) */
    float train_loss;         /* mean over the step's micro-batches and ranks (nats) */
    float val_loss;           /* NaN when not evaluated at this step */
    float val_bpb;            /* bits per byte of the validation text; NaN likewise */
    float lr;
    float grad_norm;          /* before clipping */
    float tok_s;              /* training tokens per second over all ranks */
} yan_train_row;

typedef enum {
    YAN_TRAIN_EV_START = 0,   /* text: a description of the run */
    YAN_TRAIN_EV_STEP = 1,    /* row */
    YAN_TRAIN_EV_EVAL = 2,    /* row (val_loss, val_bpb set) */
    YAN_TRAIN_EV_SAMPLE = 3,  /* text: the decoded sample (rank 0 only) */
    YAN_TRAIN_EV_CKPT = 4,    /* text: the checkpoint path */
    YAN_TRAIN_EV_DONE = 5,    /* text: the model path */
} yan_train_event_kind;

typedef struct {
    yan_train_event_kind kind;
    int64_t step, steps;      /* steps completed, steps in all */
    const yan_train_row *row; /* STEP, EVAL */
    const char *text;
    double elapsed_s;         /* since this run started */
    double eta_s;             /* estimated seconds to the last step of this run */
} yan_train_event;

/* Called on every rank; return false to stop after this step (a checkpoint
 * is written first, as with stop_after). */
typedef bool (*yan_train_event_fn)(const yan_train_event *ev, void *ud);

typedef struct yan_trainer {
    yan_train_config cfg;     /* resolved (n_vocab, min_lr, warmup filled in) */
    yan_dist dist;
    yan_tmodel *m;            /* activations for (B / R) x T */
    yan_adamw opt;
    yan_tokenizer *tok;       /* DATA/tokenizer.gguf (fine-tuning: the base's) */
    yan_shards *train, *val;  /* val NULL when eval_every is 0 */
    int64_t step;             /* optimizer steps completed */
    uint64_t data_pos;        /* next position in the training stream */
    uint64_t rng;             /* sampling RNG state (xorshift64*) */
    yan_train_row *hist;      /* (n_hist) one row per completed step */
    size_t n_hist, cap_hist;
    int32_t *inputs, *targets;/* (B / R, T) this rank's rows of a micro-batch */
    int32_t *skip_in, *skip_tg;/* (T) a row that belongs to another rank */
    int64_t ckpt_step;        /* step of the last checkpoint written or loaded; -1 none */
    int64_t n_params;         /* floats in the parameter block (with alignment padding) */
    int64_t n_weights;        /* parameters proper (sum over the tensor table) */
    uint64_t data_hash;       /* fingerprint of the training stream (resuming checks it) */
    /* fine-tuning */
    bool finetune;
    yan_sft_data sft_train, sft_val; /* conversations (sft_val empty: no validation) */
    int64_t *perm;            /* (sft_train.n_examples) the order of epoch perm_epoch */
    uint64_t perm_epoch;
    char *chat_tmpl;          /* the base's tokenizer.chat_template (NULL: none) */
    char family[32];          /* the chat template family the data are rendered with */
    uint64_t base_size, base_hash; /* identity of the base file */
    int32_t pad;              /* padding id of the rows */
    int64_t n_cut;            /* conversations cut to seq tokens (training and validation) */
} yan_trainer;

/* A trainer for c: opens the data (train split; val when eval_every > 0),
 * loads its tokenizer, builds and initialises the model from c->seed.
 * Fine-tuning (c->base_path set): loads the base (and initialises the LoRA
 * adapters from c->seed), its tokenizer and chat template, and the
 * conversations; c->seq 0 = the longest conversation (at most the base's
 * context); errors name the file and line of a bad conversation.
 * d may be NULL (one process). Errors: INVALID_ARG (config), IO / FORMAT (data,
 * naming the file), NOMEM. */
yan_status yan_trainer_new(const yan_train_config *c, const yan_dist *d, yan_trainer **out);
void yan_trainer_free(yan_trainer *t); /* NULL is a no-op */

/* One optimizer step. Writes the mean loss, the gradient norm (before
 * clipping) and the learning rate used. A NaN or infinite loss or gradient
 * norm leaves the parameters, moments and step untouched and returns
 * YAN_ERR_ABORTED with a message ("training diverged ..."). Collective. */
yan_status yan_trainer_step(yan_trainer *t, float *loss, float *grad_norm, float *lr);

/* Mean loss over cfg.eval_batches fixed validation batches (from position 0
 * of the val split, the same every time) and its bits per byte. Collective. */
yan_status yan_trainer_eval(yan_trainer *t, float *loss, float *bpb);

/* Generate cfg.sample_tokens tokens after the sample prompt with the model's
 * own forward (B = 1, the last T tokens as context) at cfg.sample_temp;
 * returns the decoded text (prompt included; free with yan_free). Advances
 * t->rng. Not collective: any one rank may call it. */
yan_status yan_trainer_sample(yan_trainer *t, char **text);

/* Train from t->step to cfg.steps (or cfg.stop_after), with evaluations,
 * samples, checkpoints and the output files as configured; writes
 * OUT/model.gguf when the run ends. A divergence returns YAN_ERR_ABORTED and
 * writes neither a checkpoint nor the model (the last good checkpoint stays);
 * a stop requested by fn also returns YAN_OK after the checkpoint. fn may be
 * NULL. Collective. */
yan_status yan_trainer_run(yan_trainer *t, yan_train_event_fn fn, void *ud);

/* Output files of cfg.out_dir (rank 0 writes; others return YAN_OK). The
 * model file is model.gguf, or adapter.gguf for LoRA (yan_trainer_model_name). */
yan_status yan_trainer_write_model(const yan_trainer *t, const char *path);
const char *yan_trainer_model_name(const yan_trainer *t);
yan_status yan_trainer_write_logs(const yan_trainer *t); /* loss.csv + loss.svg */
/* "OUT/name" into buf; INVALID_ARG when it does not fit. */
yan_status yan_trainer_path(const yan_trainer *t, const char *name, char *buf, size_t cap);
/* A short model description for titles: "2 layers, dim 128, 1.23M params". */
void yan_trainer_describe(const yan_trainer *t, char *buf, size_t cap);

/* Report writers (exposed for tests). */
yan_status yan_train_csv(const yan_train_row *rows, size_t n, yan_buf *out);
yan_status yan_train_svg(const yan_train_row *rows, size_t n, const char *title, yan_buf *out);

/* ------------------------------------------------------------ checkpoints */

/* Write t's complete state to path atomically: the model exactly as
 * yan_tmodel_to_gguf writes it (LoRA: the adapters as
 * yan_tmodel_adapter_to_gguf writes them), tensors yan.opt.m and yan.opt.v
 * (1-D, n_params floats), and yan.train.* keys (format version, step,
 * optimizer t, data position, RNG, the configuration, the loss history;
 * fine-tuning: yan.ft.* with the base's identity). Rank 0 only. */
yan_status yan_ckpt_save(const yan_trainer *t, const char *path);

/* The configuration a checkpoint was written with (threads and stop_after
 * zeroed, out_dir = the checkpoint's folder). Errors: IO, FORMAT (not a yan
 * training checkpoint, missing key), UNSUPPORTED (newer format version); the
 * message names the file. */
yan_status yan_ckpt_read_config(const char *path, yan_train_config *c);

/* Restore the state saved in path into t, which must have been made with a
 * configuration of the same model shape and data (yan_ckpt_read_config +
 * yan_trainer_new). Errors: IO, FORMAT (missing or mis-shaped tensor, a
 * different model, data or fine-tuning base) naming the file; t is unusable
 * after an error. */
yan_status yan_ckpt_load(yan_trainer *t, const char *path);

#endif /* YAN_TRAINER_H */
