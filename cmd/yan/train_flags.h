/* train_flags.h — what `yan train` (cmd_train.c) and `yan finetune`
 * (cmd_finetune.c) share: the flags both accept with the same meaning, their
 * help lines, and the training session that runs either. Each command keeps
 * its own flags, defaults and usage text; switches (-q) stay with them too,
 * since the two report a missing value differently (see cmd_train_flag). */
#ifndef YAN_CMD_TRAIN_FLAGS_H
#define YAN_CMD_TRAIN_FLAGS_H
#include "cmd.h"

#include "train/trainer.h"

/* The shared flags whose value is applied after parsing (a checkpoint may
 * replace the configuration first), and how errors are reported. The other
 * shared flags go straight into the yan_train_config. */
typedef struct {
    const char *prog;   /* "yan train" or "yan finetune": the prefix of messages */
    bool hint;          /* follow a message with "'PROG --help' lists the options" */
    const char *data;   /* --data (a directory for train, a JSONL file for finetune); NULL = not given */
    const char *out;    /* -o, --out; NULL = not given */
    const char *resume; /* --resume CKPT; NULL = not given */
    const char *fixed;  /* the first flag given that a checkpoint fixes (refused with --resume); NULL = none */
    int64_t steps;      /* --steps; -1 = not given */
    int64_t eval_every; /* --eval-every; -1 = not given */
    int64_t ckpt_every; /* --ckpt-every; -1 = not given */
    int64_t log_every;  /* --log-every (10) */
} cmd_train_flags;

cmd_train_flags cmd_train_flags_init(const char *prog, bool hint);

/* If argv[*i] is a shared flag that takes a value, consume it and its value
 * (*i is advanced past the value) into f or c and return 1; return 0 when it
 * is not one (nothing consumed). A bad value returns -1 with a message printed,
 * except that the numbers read by cmd_int and cmd_float exit(2) there with
 * theirs ("yan: --lr needs a value"), as everywhere in yan. The flags:
 *   into c: --batch --seq --accum --lr --min-lr --warmup --wd --beta2 --clip
 *           --seed (all fixed by a checkpoint: noted in f->fixed), --threads/-t,
 *           --stop-after
 *   into f: --data -o/--out --resume --steps --eval-every --ckpt-every --log-every */
int cmd_train_flag(cmd_train_flags *f, yan_train_config *c, int argc, char **argv, int *i);

/* A non-negative finite float that fits a float (the --lr kind of value):
 * 0 with *out set, or -1 with a message printed (missing or malformed values
 * exit(2) in cmd_float). */
int cmd_train_f32(const cmd_train_flags *f, const char *opt, const char *val, float *out);

/* Help lines of the shared flags that read the same for both commands
 * (fprintf format text: %% for %). The other shared flags have per-command
 * defaults and keep their own lines. */
#define CMD_TRAIN_HELP_ACCUM "  --accum K           micro-batches per optimizer step (default 1)\n"
#define CMD_TRAIN_HELP_SCHEDULE                                                                   \
    "  --min-lr X          learning rate at the last step (default lr/10)\n"                    \
    "  --warmup N          linear warmup steps, then cosine decay (default 5%% of steps)\n"
#define CMD_TRAIN_HELP_CLIP "  --clip X            gradient-norm clipping; 0 = off (default 1)\n"
#define CMD_TRAIN_HELP_EVAL_EVERY                                                                 \
    "  --eval-every N      validation loss every N steps and at the end; 0 = off (default 100)\n"
#define CMD_TRAIN_HELP_RUN                                                                        \
    "  --ckpt-every N      checkpoint every N steps; 0 = only at the end (default 100)\n"       \
    "  --log-every N       without a terminal: a progress line every N steps (default 10)\n"   \
    "  --stop-after N      end this run after step N as if interrupted (resume later)\n"       \
    "  -q, --quiet         no progress line\n"

/* Run c (resuming from resume when not NULL) with a progress line, signal
 * handling and exit codes: 0 done, 1 error, 2 bad usage, 3 diverged. prog
 * prefixes the messages. In cmd_train.c. */
int cmd_train_session(yan_train_config *c, const char *resume, bool quiet, int64_t log_every, const char *prog);
#endif
