/* cmd_train.c — `yan train`: pre-train a small llama model on a data
 * directory from `yan data prepare`, or resume from a checkpoint. A thin
 * shell over src/train/trainer.h: parses the flags into a yan_train_config
 * (those shared with `yan finetune` in train_flags.c),
 * prints the trainer's events (a live progress line on stderr, evaluations,
 * samples and checkpoints on stdout; only MPI rank 0 prints) and maps
 * failures to exit codes: 0 done, 1 error, 2 bad usage, 3 training diverged.
 * The first Ctrl-C (SIGINT/SIGTERM) stops after the current step with a
 * checkpoint; a second one ends the process at once.
 * `yan finetune` (cmd_finetune.c) runs through the same session
 * (cmd_train_session): the same progress, signals and exit codes. */
#include "train_flags.h"

#include <math.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan train --data DIR -o OUT [options]\n"
            "       yan train --resume OUT/ckpt.gguf [--steps N] [options]\n\n"
            "Pre-trains a llama model on the token shards of DIR (made by `yan data prepare`)\n"
            "and writes into OUT:\n"
            "  model.gguf   the model (llama GGUF with the tokenizer and a ChatML template):\n"
            "               yan run, yan chat, llama.cpp\n"
            "  ckpt.gguf    model + optimizer state, every --ckpt-every steps and at the end\n"
            "  loss.csv     step, train loss, val loss, val bits per byte, lr, grad norm, tokens/s\n"
            "  loss.svg     the loss curves\n\n"
            "model (a preset, then any of the shape flags on top of it):\n"
            "  --preset P          tiny (2 layers, dim 128), s (4 layers, dim 256) or m (6 layers,\n"
            "                      dim 384); default tiny\n"
            "  --layers N, --dim N, --heads N\n"
            "  --kv-heads N        key/value heads for grouped-query attention (default --heads)\n"
            "  --ff N              feed-forward width (default 8/3 dim rounded up to 64)\n"
            "  --ctx N             context length written into the model (default --seq)\n"
            "  --tied              share the embedding and output matrices\n"
            "training:\n"
            "  --batch B           sequences per micro-batch, over all processes (default 8)\n"
            "  --seq T             tokens per sequence (default 128)\n"
            CMD_TRAIN_HELP_ACCUM
            "  --steps N           optimizer steps in all (default 1000)\n"
            "  --lr X              peak learning rate (default 1e-3)\n"
            CMD_TRAIN_HELP_SCHEDULE
            "  --wd X              AdamW weight decay (default 0.1)\n"
            "  --beta2 X           AdamW beta2 (default 0.95)\n"
            CMD_TRAIN_HELP_CLIP
            "  --seed N            initialisation and sampling seed (default 1337)\n"
            "  --threads N         threads per process (default: all cores, shared among the\n"
            "                      processes of an MPI job on one machine)\n"
            "reporting:\n"
            CMD_TRAIN_HELP_EVAL_EVERY
            "  --eval-batches N    validation batches, always the same ones (default 8)\n"
            "  --sample-every N    print a generated sample every N steps; 0 = off (default 0)\n"
            "  --sample-tokens N   tokens per sample (default 48)\n"
            "  --sample-temp X     sampling temperature; 0 = greedy (default 0.8)\n"
            "  --sample-prompt S   text the samples continue (default: a new document)\n"
            CMD_TRAIN_HELP_RUN
            "resuming:\n"
            "  --resume CKPT       continue the run saved in CKPT: the same model, data and\n"
            "                      hyper-parameters; the losses are bit-identical to an\n"
            "                      uninterrupted run. --steps (a new total; it reshapes the\n"
            "                      schedule from there), --data (moved data), -o, --threads and\n"
            "                      the reporting flags may be given; outputs go to CKPT's folder\n"
            "                      unless -o says otherwise.\n\n"
            "Data parallel: built with `make MPI=1`, `mpirun -np R yan train ...` splits every\n"
            "batch over R processes (--batch must be divisible by R); same curve as one process.\n\n"
            "Exit status: 0 done, 1 error, 2 bad usage, 3 the loss or gradient became NaN or\n"
            "infinite (the last good checkpoint is kept).\n\n"
            "example: yan data prepare -o data/kjv --tokenizer models/kjv-8k.tokenizer.json kjv.txt\n"
            "         yan train --data data/kjv --preset tiny --steps 2000 -o out/kjv\n"
            "         yan run out/kjv/model.gguf -p 'In the beginning' -n 40\n");
}

/* ---------------------------------------------------------------- options */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    if (g_stop) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_stop = 1;
}

static int64_t opt_i64(const char *opt, const char *val) { return (int64_t)cmd_int(opt, val); }

static void opt_str(const char *opt, const char *val, char *dst, size_t cap) {
    if (!val) {
        fprintf(stderr, "yan train: %s needs a value\n", opt);
        exit(2);
    }
    if (strlen(val) >= cap) {
        fprintf(stderr, "yan train: %s: the value is too long (at most %zu bytes)\n", opt, cap - 1);
        exit(2);
    }
    strcpy(dst, val);
}

/* ---------------------------------------------------------------- printing */

typedef struct {
    const char *prog; /* "yan train" or "yan finetune" */
    bool lead;        /* rank 0: the one that prints */
    bool tty;         /* stderr is a terminal: redraw the progress line in place */
    bool quiet;
    bool drawn;       /* a progress line is on the terminal */
    int64_t log_every;
    double last_draw;
} printer;

static void fmt_dur(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, cap, "%ldh%02ldm", v / 3600, v / 60 % 60);
    else if (v >= 60) snprintf(buf, cap, "%ldm%02lds", v / 60, v % 60);
    else snprintf(buf, cap, "%lds", v);
}

static void fmt_rate(char *buf, size_t cap, double r) {
    if (r >= 1e6) snprintf(buf, cap, "%.2fM", r / 1e6);
    else if (r >= 1e3) snprintf(buf, cap, "%.1fk", r / 1e3);
    else snprintf(buf, cap, "%.0f", r);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Take the progress line off the terminal before other output. */
static void clear_progress(printer *p) {
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->drawn = false;
    }
}

static bool on_event(const yan_train_event *ev, void *ud) {
    printer *p = ud;
    if (!p->lead) return !g_stop;
    char a[32], b[32];
    switch (ev->kind) {
    case YAN_TRAIN_EV_START:
        printf("%s\n", ev->text);
        fflush(stdout);
        break;
    case YAN_TRAIN_EV_STEP: {
        if (p->quiet) break;
        const yan_train_row *r = ev->row;
        bool last = ev->step == ev->steps;
        double t = now_s();
        if (p->tty) {
            if (!last && t - p->last_draw < 0.1) break;
        } else if (!(ev->step % p->log_every == 0 || last || ev->step == 1)) {
            break;
        }
        p->last_draw = t;
        fmt_rate(a, sizeof a, r->tok_s);
        fmt_dur(b, sizeof b, ev->eta_s);
        int w = snprintf(NULL, 0, "%lld", (long long)ev->steps);
        fprintf(stderr, "%sstep %*lld/%lld | loss %.4f | lr %.2e | grad norm %.3f | %s tok/s | ETA %s%s",
                p->tty ? "\r" : "", w, (long long)ev->step, (long long)ev->steps, (double)r->train_loss,
                (double)r->lr, (double)r->grad_norm, a, b, p->tty ? "\033[K" : "\n");
        fflush(stderr);
        p->drawn = p->tty;
        break;
    }
    case YAN_TRAIN_EV_EVAL:
        clear_progress(p);
        if (isfinite(ev->row->val_bpb))
            printf("step %lld: val loss %.4f, %.4f bits per byte (train loss %.4f)\n", (long long)ev->step,
                   (double)ev->row->val_loss, (double)ev->row->val_bpb, (double)ev->row->train_loss);
        else
            printf("step %lld: val loss %.4f (train loss %.4f)\n", (long long)ev->step, (double)ev->row->val_loss,
                   (double)ev->row->train_loss);
        fflush(stdout);
        break;
    case YAN_TRAIN_EV_SAMPLE:
        clear_progress(p);
        printf("step %lld sample:\n", (long long)ev->step);
        size_t n = strlen(ev->text);
        while (n && (ev->text[n - 1] == '\n' || ev->text[n - 1] == ' ')) n--;
        for (size_t i = 0; i < n; i++) {
            if (i == 0 || ev->text[i - 1] == '\n') fputs("  | ", stdout);
            fputc(ev->text[i], stdout);
        }
        fputc('\n', stdout);
        fflush(stdout);
        break;
    case YAN_TRAIN_EV_CKPT:
        if (!p->quiet && !p->tty) {
            printf("step %lld: checkpoint %s\n", (long long)ev->step, ev->text);
            fflush(stdout);
        }
        break;
    case YAN_TRAIN_EV_DONE:
        clear_progress(p);
        fmt_dur(a, sizeof a, ev->elapsed_s);
        printf("done: step %lld of %lld in %s", (long long)ev->step, (long long)ev->steps, a);
        if (ev->row) {
            printf("; train loss %.4f", (double)ev->row->train_loss);
            if (isfinite(ev->row->val_loss)) printf(", val loss %.4f", (double)ev->row->val_loss);
        }
        printf("\nwrote %s\n", ev->text);
        fflush(stdout);
        break;
    }
    if (g_stop && p->lead && ev->kind == YAN_TRAIN_EV_STEP) {
        clear_progress(p);
        fprintf(stderr, "%s: stopping after step %lld (checkpoint); interrupt again to quit at once\n", p->prog,
                (long long)ev->step);
    }
    return !g_stop;
}

/* ------------------------------------------------------------------- main */

/* This command's flags that fix the numbers of a run: not accepted with
 * --resume (cmd_train_flag notes the shared ones). */
static const char *const FIXED[] = {"--preset", "--layers", "--dim", "--heads",
                                    "--kv-heads", "--ff", "--ctx", "--tied"};

static int default_threads(void) {
    /* processes of an MPI job on this machine share its cores */
    const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!ls) ls = getenv("MPI_LOCALNRANKS");
    int n = ls ? atoi(ls) : 1;
    if (n < 1) n = 1;
    int t = yan_cpu_count() / n;
    return t < 1 ? 1 : t;
}

int yan_cmd_train(int argc, char **argv) {
    yan_train_config c = yan_train_config_default();
    cmd_train_flags f = cmd_train_flags_init("yan train", false);
    const char *preset = NULL;
    int64_t layers = -1, dim = -1, heads = -1, kv_heads = -1, ff = -1, ctx = -1;
    bool tied = false, quiet = false;
    /* reporting flags given on the command line (applied over a checkpoint's) */
    int64_t eval_batches = -1, sample_every = -1, sample_tokens = -1;
    float sample_temp = -1;
    const char *sample_prompt = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) {
            usage(stdout);
            return 0;
        }
        for (size_t k = 0; k < sizeof FIXED / sizeof FIXED[0]; k++)
            if (!strcmp(a, FIXED[k]) && !f.fixed) f.fixed = FIXED[k];
        int r = cmd_train_flag(&f, &c, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--tied")) {
            tied = true;
            continue;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
            continue;
        }
        if (!strcmp(a, "--preset")) preset = v;
        else if (!strcmp(a, "--layers")) layers = opt_i64(a, v);
        else if (!strcmp(a, "--dim")) dim = opt_i64(a, v);
        else if (!strcmp(a, "--heads")) heads = opt_i64(a, v);
        else if (!strcmp(a, "--kv-heads")) kv_heads = opt_i64(a, v);
        else if (!strcmp(a, "--ff")) ff = opt_i64(a, v);
        else if (!strcmp(a, "--ctx")) ctx = opt_i64(a, v);
        else if (!strcmp(a, "--eval-batches")) eval_batches = opt_i64(a, v);
        else if (!strcmp(a, "--sample-every")) sample_every = opt_i64(a, v);
        else if (!strcmp(a, "--sample-tokens")) sample_tokens = opt_i64(a, v);
        else if (!strcmp(a, "--sample-temp")) {
            if (cmd_train_f32(&f, a, v, &sample_temp)) return 2;
        } else if (!strcmp(a, "--sample-prompt")) sample_prompt = v;
        else {
            if (a[0] == '-' && a[1]) fprintf(stderr, "yan train: unknown option '%s'\n", a);
            else fprintf(stderr, "yan train: unexpected argument '%s'\n", a);
            fprintf(stderr, "'yan train --help' lists the options\n");
            return 2;
        }
        if (!v) {
            fprintf(stderr, "yan train: %s needs a value\n", a);
            return 2;
        }
        i++;
    }
    if (f.log_every < 1) f.log_every = 1;

    /* the configuration: from a checkpoint or from the flags */
    const char *resume = f.resume;
    if (resume) {
        if (f.fixed) {
            fprintf(stderr,
                    "yan train: %s cannot be changed when resuming: the checkpoint fixes the model and the "
                    "hyper-parameters (start a new run instead)\n",
                    f.fixed);
            return 2;
        }
        /* per-run values parsed from the flags survive reading the checkpoint */
        const int threads = c.threads;
        const int64_t stop_after = c.stop_after;
        yan_status s = yan_ckpt_read_config(resume, &c);
        if (s) return cmd_fail("cannot resume", s);
        if (c.base_path[0]) {
            fprintf(stderr, "yan train: %s is a fine-tuning checkpoint: resume it with yan finetune --resume\n", resume);
            return 2;
        }
        c.threads = threads;
        c.stop_after = stop_after;
    } else {
        if (!f.data) {
            fprintf(stderr, "yan train: --data DIR is required (a directory made by `yan data prepare`), "
                            "or --resume CKPT\n");
            return 2;
        }
        if (!f.out) {
            fprintf(stderr, "yan train: -o OUT (the output directory) is required\n");
            return 2;
        }
        if (preset && yan_train_preset(&c, preset)) {
            fprintf(stderr, "yan train: --preset: %s\n", yan_last_error());
            return 2;
        }
        if (dim > 0) {
            c.model.n_embd = (int32_t)dim;
            if (ff < 0) c.model.n_ff = yan_train_ff_for((int32_t)dim);
        }
        if (layers >= 0) c.model.n_layer = (int32_t)layers;
        if (heads >= 0) {
            c.model.n_head = (int32_t)heads;
            if (kv_heads < 0) c.model.n_head_kv = (int32_t)heads;
        }
        if (kv_heads >= 0) c.model.n_head_kv = (int32_t)kv_heads;
        if (ff >= 0) c.model.n_ff = (int32_t)ff;
        if (ctx >= 0) c.model.n_ctx = (int32_t)ctx;
        if (tied) c.model.tied_output = true;
    }
    if (f.data) opt_str("--data", f.data, c.data_dir, sizeof c.data_dir);
    if (f.out) opt_str("-o", f.out, c.out_dir, sizeof c.out_dir);
    if (f.steps >= 0) c.steps = f.steps;
    if (f.eval_every >= 0) c.eval_every = f.eval_every;
    if (eval_batches >= 0) c.eval_batches = (int32_t)eval_batches;
    if (sample_every >= 0) c.sample_every = sample_every;
    if (sample_tokens >= 0) c.sample_tokens = (int32_t)sample_tokens;
    if (sample_temp >= 0) c.sample_temp = sample_temp;
    if (sample_prompt) opt_str("--sample-prompt", sample_prompt, c.sample_prompt, sizeof c.sample_prompt);
    if (f.ckpt_every >= 0) c.ckpt_every = f.ckpt_every;
    return cmd_train_session(&c, resume, quiet, f.log_every, "yan train");
}

int cmd_train_session(yan_train_config *cfg, const char *resume, bool quiet, int64_t log_every, const char *prog) {
    yan_train_config c = *cfg;
    if (!c.threads) c.threads = default_threads();
    if (log_every < 1) log_every = 1;
    yan_dist d;
    yan_status s = yan_dist_init(NULL, NULL, &d);
    if (s) return cmd_fail("MPI", s);
    int rc = 1;
    yan_trainer *t = NULL;
    printer pr = {.prog = prog, .lead = d.rank == 0, .tty = isatty(2) != 0, .quiet = quiet, .log_every = log_every};

    if ((s = yan_trainer_new(&c, &d, &t))) {
        if (pr.lead) cmd_fail(s == YAN_ERR_INVALID_ARG ? "bad configuration" : "cannot start training", s);
        rc = s == YAN_ERR_INVALID_ARG ? 2 : 1;
        goto out;
    }
    if (resume) {
        if ((s = yan_ckpt_load(t, resume))) {
            if (pr.lead) cmd_fail("cannot resume", s);
            goto out;
        }
        if (pr.lead) {
            printf("resuming %s at step %lld of %lld\n", resume, (long long)t->step, (long long)t->cfg.steps);
            if (t->step >= t->cfg.steps)
                printf("the checkpoint has reached its last step; writing the model (give --steps N to train on)\n");
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    s = yan_trainer_run(t, on_event, &pr);
    clear_progress(&pr);
    if (s == YAN_ERR_ABORTED) {
        if (pr.lead) {
            fprintf(stderr, "%s: %s\n", prog, yan_last_error());
            char path[YAN_TRAIN_PATH_MAX + 32];
            yan_trainer_path(t, "ckpt.gguf", path, sizeof path);
            if (t->ckpt_step >= 0)
                fprintf(stderr, "%s: the last good checkpoint is kept: %s (step %lld)\n", prog, path,
                        (long long)t->ckpt_step);
            else
                fprintf(stderr, "%s: no checkpoint was written before that (lower --ckpt-every to get one)\n", prog);
        }
        rc = 3;
        goto out;
    }
    if (s) {
        if (pr.lead) cmd_fail("training failed", s);
        if (d.size > 1) {
            fflush(NULL);
            yan_dist_abort(&d, 1);
        }
        goto out;
    }
    if (g_stop && pr.lead) printf("stopped at step %lld; continue with: %s --resume %s/ckpt.gguf\n",
                                  (long long)t->step, prog, t->cfg.out_dir);
    rc = 0;
out:
    yan_trainer_free(t);
    if (rc == 1 && d.size > 1) {
        fflush(NULL);
        yan_dist_abort(&d, 1);
    }
    yan_dist_finalize(&d);
    return rc;
}
