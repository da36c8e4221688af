/* train_flags.c — the flags `yan train` and `yan finetune` share (see
 * train_flags.h): one parser, so the two accept them alike. Values go into
 * the yan_train_config or, when a checkpoint may replace the configuration
 * first, into cmd_train_flags for the command to apply. */
#include "train_flags.h"

#include <errno.h>
#include <stdarg.h>

cmd_train_flags cmd_train_flags_init(const char *prog, bool hint) {
    return (cmd_train_flags){.prog = prog, .hint = hint, .steps = -1, .eval_every = -1, .ckpt_every = -1,
                             .log_every = 10};
}

/* "PROG: <message>", then the pointer to --help when f->hint; returns -1. */
__attribute__((format(printf, 2, 3))) static int bad(const cmd_train_flags *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", f->prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (f->hint) fprintf(stderr, "'%s --help' lists the options\n", f->prog);
    return -1;
}

int cmd_train_f32(const cmd_train_flags *f, const char *opt, const char *val, float *out) {
    double v = cmd_float(opt, val);
    if (v > 3.0e38) return bad(f, "%s: '%s' is too large", opt, val);
    *out = (float)v;
    return 0;
}

static int parse_u64(const cmd_train_flags *f, const char *opt, const char *val, uint64_t *out) {
    char *end;
    if (!val) return bad(f, "%s needs a value", opt);
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || *end || end == val || val[0] == '-') return bad(f, "%s: '%s' is not a non-negative integer", opt, val);
    *out = (uint64_t)v;
    return 0;
}

/* The values a checkpoint fixes: 1 consumed, 0 not one of them, -1 bad value. */
static int fixed_flag(const cmd_train_flags *f, yan_train_config *c, const char *a, const char *v) {
    int rc = 0;
    if (!strcmp(a, "--batch")) c->batch = cmd_int(a, v);
    else if (!strcmp(a, "--seq")) c->seq = cmd_int(a, v);
    else if (!strcmp(a, "--accum")) c->accum = cmd_int(a, v);
    else if (!strcmp(a, "--lr")) rc = cmd_train_f32(f, a, v, &c->lr);
    else if (!strcmp(a, "--min-lr")) rc = cmd_train_f32(f, a, v, &c->min_lr);
    else if (!strcmp(a, "--warmup")) c->warmup = cmd_int(a, v);
    else if (!strcmp(a, "--wd")) rc = cmd_train_f32(f, a, v, &c->weight_decay);
    else if (!strcmp(a, "--beta2")) rc = cmd_train_f32(f, a, v, &c->beta2);
    else if (!strcmp(a, "--clip")) rc = cmd_train_f32(f, a, v, &c->clip);
    else if (!strcmp(a, "--seed")) rc = parse_u64(f, a, v, &c->seed);
    else return 0;
    return rc < 0 ? -1 : 1;
}

/* The values of this run (kept, or applied over a checkpoint's): 1 consumed,
 * 0 not one of them. */
static int run_flag(cmd_train_flags *f, yan_train_config *c, const char *a, const char *v) {
    if (!strcmp(a, "--threads") || !strcmp(a, "-t")) c->threads = cmd_int(a, v);
    else if (!strcmp(a, "--stop-after")) c->stop_after = cmd_int(a, v);
    else if (!strcmp(a, "--steps")) f->steps = cmd_int(a, v);
    else if (!strcmp(a, "--eval-every")) f->eval_every = cmd_int(a, v);
    else if (!strcmp(a, "--ckpt-every")) f->ckpt_every = cmd_int(a, v);
    else if (!strcmp(a, "--log-every")) f->log_every = cmd_int(a, v);
    else if (!strcmp(a, "--data")) f->data = v;
    else if (!strcmp(a, "-o") || !strcmp(a, "--out")) f->out = v;
    else if (!strcmp(a, "--resume")) f->resume = v;
    else return 0;
    return 1;
}

int cmd_train_flag(cmd_train_flags *f, yan_train_config *c, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    int r = fixed_flag(f, c, a, v);
    if (r > 0 && !f->fixed) f->fixed = a;
    if (r == 0) r = run_flag(f, c, a, v);
    if (r <= 0) return r;
    if (!v) return bad(f, "%s needs a value", a); /* the strings (the numbers exit in cmd_int) */
    (*i)++;
    return 1;
}
