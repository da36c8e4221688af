/* test_trainer.c — the training loop (src/train/trainer.c, ckpt.c, plot.c):
 * the learning-rate schedule, presets and configuration checks, the CSV and
 * SVG writers (well-formed XML, gaps, escaping, empty data), determinism of
 * the losses for a seed, and the checkpoint round trip: a run resumed from a
 * checkpoint continues with bit-identical losses; corrupt, foreign and
 * mismatched checkpoints are refused with the file named. The data is a
 * small corpus prepared here (data/sample.txt with the shipped KJV
 * vocabulary). */
#include "test.h"

#include "train/plot.h"
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ----------------------------------------------------------------- helpers */

/* A minimal XML well-formedness check: every element closed in order,
 * attributes quoted, nothing outside the root but the prolog. */
static bool xml_balanced(const char *s) {
    const char *stack[64];
    size_t len[64];
    int depth = 0, roots = 0;
    while ((s = strchr(s, '<'))) {
        if (!strncmp(s, "<?", 2)) {
            if (!(s = strstr(s, "?>"))) return false;
            continue;
        }
        bool close = s[1] == '/';
        const char *name = s + 1 + close;
        size_t n = strcspn(name, " \t\n/>");
        if (!n) return false;
        const char *end = strchr(name, '>');
        if (!end) return false;
        int quotes = 0;
        for (const char *q = name; q < end; q++) quotes += *q == '"';
        if (quotes % 2) return false;
        bool self = end[-1] == '/';
        if (close) {
            if (!depth || len[depth - 1] != n || strncmp(stack[depth - 1], name, n)) return false;
            depth--;
        } else if (!self) {
            if (depth == 64) return false;
            if (!depth) roots++;
            stack[depth] = name;
            len[depth++] = n;
        } else if (!depth) {
            roots++;
        }
        s = end + 1;
    }
    return depth == 0 && roots == 1;
}

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", yan_test_tmp_dir(), name);
    return p;
}

/* A data directory from data/sample.txt, prepared once per run. */
static const char *test_data(void) {
    static char dir[512];
    static int state; /* 0 = not yet, 1 = ok, -1 = failed */
    if (state) return state > 0 ? dir : NULL;
    snprintf(dir, sizeof dir, "%s/trainer-data", yan_test_tmp_dir());
    const char *files[1] = {"data/sample.txt"};
    yan_data_prepare_params p = yan_data_prepare_params_default();
    p.tokenizer = "models/kjv-8k.tokenizer.json";
    p.files = files;
    p.n_files = 1;
    p.out_dir = dir;
    p.val_fraction = 0.2;
    p.n_threads = 1;
    yan_status s = yan_data_prepare(&p, NULL);
    if (s) fprintf(stderr, "  data prepare: %s: %s\n", yan_status_str(s), yan_last_error());
    state = s ? -1 : 1;
    return state > 0 ? dir : NULL;
}

static yan_train_config small_config(const char *out) {
    yan_train_config c = yan_train_config_default();
    c.model.n_embd = 32;
    c.model.n_layer = 1;
    c.model.n_head = 2;
    c.model.n_head_kv = 1;
    c.model.n_ff = 64;
    c.batch = 2;
    c.seq = 16;
    c.accum = 2;
    c.steps = 8;
    c.lr = 3e-3f;
    c.warmup = 2;
    c.eval_every = 4;
    c.eval_batches = 2;
    c.sample_every = 0;
    c.ckpt_every = 0;
    c.threads = 2;
    const char *d = test_data();
    snprintf(c.data_dir, sizeof c.data_dir, "%s", d ? d : "/nonexistent");
    snprintf(c.out_dir, sizeof c.out_dir, "%s", out);
    return c;
}

/* ---------------------------------------------------------------- schedule */

TEST(trainer_lr_schedule) {
    yan_train_config c = yan_train_config_default();
    c.lr = 1e-3f;
    c.min_lr = 1e-4f;
    c.warmup = 10;
    c.steps = 110;
    CHECK_NEAR(yan_train_lr_at(&c, 0), 1e-4, 1e-9);         /* (0+1)/10 of the peak */
    CHECK_NEAR(yan_train_lr_at(&c, 4), 5e-4, 1e-9);
    CHECK_NEAR(yan_train_lr_at(&c, 9), 1e-3, 1e-9);         /* warmup reaches the peak */
    CHECK_NEAR(yan_train_lr_at(&c, 10), 1e-3, 1e-9);        /* cosine starts at the peak */
    CHECK_NEAR(yan_train_lr_at(&c, 10 + 99 / 2.0), 5.5e-4, 1e-5); /* halfway: the mean */
    CHECK_NEAR(yan_train_lr_at(&c, 109), 1e-4, 1e-9);       /* the last step: min_lr */
    CHECK_NEAR(yan_train_lr_at(&c, 500), 1e-4, 1e-9);       /* held beyond */
    bool mono = true;
    for (int64_t s = 10; s < 110; s++) mono &= yan_train_lr_at(&c, s + 1) <= yan_train_lr_at(&c, s);
    CHECK(mono);
    YAN_TESTCASE(c.warmup == 0);
    c.warmup = 0;
    c.steps = 1;
    CHECK_NEAR(yan_train_lr_at(&c, 0), 1e-3, 1e-9); /* a one-step run uses the peak */
    c.min_lr = -1; /* automatic: lr / 10 */
    c.steps = 3;
    CHECK_NEAR(yan_train_lr_at(&c, 2), 1e-4, 1e-9);
}

TEST(trainer_presets_and_checks) {
    CHECK(yan_train_ff_for(128) == 384);
    CHECK(yan_train_ff_for(256) == 704);
    CHECK(yan_train_ff_for(384) == 1024);
    yan_train_config c = yan_train_config_default();
    CHECK(yan_train_preset(&c, "s") == YAN_OK);
    CHECK(c.model.n_layer == 4 && c.model.n_embd == 256 && c.model.n_head == 4 && c.model.n_ff == 704);
    CHECK(yan_train_preset(&c, "m") == YAN_OK);
    CHECK(c.model.n_layer == 6 && c.model.n_embd == 384 && c.model.n_head == 6);
    CHECK(yan_train_preset(&c, "xl") == YAN_ERR_INVALID_ARG && strstr(yan_last_error(), "tiny"));
    strcpy(c.data_dir, "d");
    strcpy(c.out_dir, "o");
    CHECK(yan_train_config_check(&c, 1) == YAN_OK);
    c.batch = 6;
    CHECK(yan_train_config_check(&c, 4) == YAN_ERR_INVALID_ARG && strstr(yan_last_error(), "divisible"));
    CHECK(yan_train_config_check(&c, 3) == YAN_OK);
    c.lr = 0;
    CHECK(yan_train_config_check(&c, 1) == YAN_ERR_INVALID_ARG && strstr(yan_last_error(), "--lr"));
    c = yan_train_config_default();
    strcpy(c.out_dir, "o");
    CHECK(yan_train_config_check(&c, 1) == YAN_ERR_INVALID_ARG && strstr(yan_last_error(), "yan data prepare"));
}

/* ------------------------------------------------------------ report files */

TEST(trainer_csv_rows) {
    yan_train_row rows[2] = {
        {.step = 1, .train_loss = 9.0f, .val_loss = NAN, .val_bpb = NAN, .lr = 1e-4f, .grad_norm = 2.5f, .tok_s = 1234.4f},
        {.step = 2, .train_loss = 8.25f, .val_loss = 8.5f, .val_bpb = 3.0f, .lr = 2e-4f, .grad_norm = 1.0f, .tok_s = 99.6f},
    };
    yan_buf b = {0};
    CHECK(yan_train_csv(rows, 2, &b) == YAN_OK);
    CHECK(b.data && strcmp(b.data, "step,train_loss,val_loss,val_bpb,lr,grad_norm,tokens_per_s\n"
                                    "1,9,,,9.99999975e-05,2.5,1234\n"
                                    "2,8.25,8.5,3,0.000199999995,1,100\n") == 0);
    /* %.9g gives back the very same float */
    float lr;
    CHECK(sscanf(strstr(b.data, "\n1,") + 7, "%f", &lr) == 1 && lr == 1e-4f);
    yan_buf_free(&b);
    CHECK(yan_train_csv(NULL, 0, &b) == YAN_OK && strchr(b.data, '\n') == b.data + b.len - 1);
    yan_buf_free(&b);
}

TEST(trainer_svg_chart) {
    yan_train_row rows[50];
    for (int i = 0; i < 50; i++) {
        rows[i] = (yan_train_row){.step = i + 1, .train_loss = 9.0f - 0.1f * (float)i, .val_loss = NAN, .val_bpb = NAN};
        if ((i + 1) % 10 == 0) rows[i].val_loss = 9.2f - 0.1f * (float)i;
    }
    yan_buf b = {0};
    CHECK(yan_train_svg(rows, 50, "yan train: 2 layers <tiny> & co", &b) == YAN_OK);
    CHECK(b.data && xml_balanced(b.data));
    CHECK(strstr(b.data, "<svg") && strstr(b.data, "</svg>\n"));
    CHECK(strstr(b.data, "2 layers &lt;tiny&gt; &amp; co"));
    CHECK(strstr(b.data, ">train loss<") && strstr(b.data, ">val loss<"));
    CHECK(strstr(b.data, ">step<"));
    CHECK(strstr(b.data, ">50<") && strstr(b.data, ">0<")); /* x ticks 0 .. 50 */
    CHECK(strstr(b.data, "<polyline") && strstr(b.data, "<circle"));
    CHECK(!strstr(b.data, "nan") && !strstr(b.data, "inf"));
    yan_buf_free(&b);
    /* one point and no point at all are still well-formed charts */
    CHECK(yan_train_svg(rows, 1, NULL, &b) == YAN_OK && xml_balanced(b.data) && !strstr(b.data, "nan"));
    yan_buf_free(&b);
    CHECK(yan_train_svg(NULL, 0, "empty", &b) == YAN_OK && xml_balanced(b.data) && strstr(b.data, "no data"));
    yan_buf_free(&b);
}

TEST(plot_nice_ticks) {
    double first, step;
    yan_plot_ticks(0, 100, 5, &first, &step);
    CHECK(step == 20 && first == 0);
    yan_plot_ticks(2.13, 9.87, 6, &first, &step);
    CHECK(step == 1 && first == 3);
    yan_plot_ticks(0.001, 0.0042, 4, &first, &step);
    CHECK_NEAR(step, 0.001, 1e-12);
    yan_plot_ticks(-7, 7, 7, &first, &step);
    CHECK(step == 2 && first == -6);
}

/* ------------------------------------------------------- training + ckpt */

static bool run_steps(yan_trainer *t, int n, float *losses) {
    for (int i = 0; i < n; i++) {
        float gn, lr;
        if (yan_trainer_step(t, &losses[i], &gn, &lr) != YAN_OK) return false;
    }
    return true;
}

TEST(trainer_deterministic_and_learns) {
    if (!test_data()) { CHECK(!"no test data"); return; }
    yan_train_config c = small_config(tmp_path("trainer-det"));
    c.steps = 20;
    c.lr = 1e-2f;
    yan_trainer *a = NULL, *b = NULL;
    CHECK(yan_trainer_new(&c, NULL, &a) == YAN_OK);
    c.threads = 1;
    CHECK(yan_trainer_new(&c, NULL, &b) == YAN_OK);
    if (!a || !b) goto out;
    CHECK(a->cfg.model.n_vocab == 8000 && a->cfg.model.n_ctx == 16 && a->cfg.min_lr == c.lr / 10);
    float la[20], lb[20];
    CHECK(run_steps(a, 20, la) && run_steps(b, 20, lb));
    CHECK(memcmp(la, lb, sizeof la) == 0); /* bit-identical, any thread count */
    CHECK((la[17] + la[18] + la[19]) / 3 < la[0] - 1.0f); /* it learns */
    float vl, bpb;
    CHECK(yan_trainer_eval(a, &vl, &bpb) == YAN_OK && isfinite(vl) && bpb > 0 && bpb < vl * 2);
    float vl2, bpb2;
    CHECK(yan_trainer_eval(a, &vl2, &bpb2) == YAN_OK && vl2 == vl); /* fixed validation batches */
    char *text = NULL;
    CHECK(yan_trainer_sample(a, &text) == YAN_OK && text);
    yan_free(text);
out:
    yan_trainer_free(a);
    yan_trainer_free(b);
}

TEST(trainer_checkpoint_round_trip) {
    if (!test_data()) { CHECK(!"no test data"); return; }
    const char *ckpt = tmp_path("trainer-rt/ckpt.gguf");
    yan_train_config c = small_config(tmp_path("trainer-rt"));
    yan_trainer *a = NULL, *b = NULL, *x = NULL;
    CHECK(yan_trainer_new(&c, NULL, &a) == YAN_OK);
    if (!a) return;
    float first[3], cont[4], resumed[4];
    CHECK(run_steps(a, 3, first));
    CHECK(mkdir(tmp_path("trainer-rt"), 0777) == 0);
    CHECK(yan_ckpt_save(a, ckpt) == YAN_OK);
    CHECK(run_steps(a, 4, cont));

    yan_train_config rc;
    CHECK(yan_ckpt_read_config(ckpt, &rc) == YAN_OK);
    CHECK(rc.model.n_embd == 32 && rc.seq == 16 && rc.accum == 2 && rc.lr == c.lr && rc.warmup == 2);
    CHECK(strcmp(rc.out_dir, tmp_path("trainer-rt")) == 0 && strcmp(rc.data_dir, c.data_dir) == 0);
    rc.threads = 1;
    CHECK(yan_trainer_new(&rc, NULL, &b) == YAN_OK);
    if (!b) goto out;
    CHECK(yan_ckpt_load(b, ckpt) == YAN_OK);
    CHECK(b->step == 3 && b->opt.t == 3 && b->data_pos == a->data_pos - 4ull * 2 * 2 * 16);
    CHECK(run_steps(b, 4, resumed));
    CHECK(memcmp(cont, resumed, sizeof cont) == 0); /* bit-identical continuation */
    CHECK(memcmp(a->m->params, b->m->params, (size_t)a->n_params * sizeof(float)) == 0);

    /* other data of the same size */
    b->data_hash ^= 1;
    CHECK(yan_ckpt_load(b, ckpt) == YAN_ERR_FORMAT && strstr(yan_last_error(), "same data"));
    b->data_hash ^= 1;
    /* a truncated checkpoint names the file */
    uint8_t *bytes = NULL;
    size_t len = 0;
    CHECK(yan_read_file(ckpt, &bytes, &len) == YAN_OK);
    const char *cut = tmp_path("trainer-cut.gguf");
    CHECK(yan_write_atomic(cut, bytes, len / 2) == YAN_OK);
    yan_free(bytes);
    CHECK(yan_ckpt_read_config(cut, &rc) != YAN_OK && strstr(yan_last_error(), "trainer-cut.gguf"));
    CHECK(yan_ckpt_load(b, cut) != YAN_OK && strstr(yan_last_error(), "trainer-cut.gguf"));
    /* a model GGUF is not a checkpoint */
    const char *model = tmp_path("trainer-model.gguf");
    CHECK(yan_trainer_write_model(a, model) == YAN_OK);
    CHECK(yan_ckpt_read_config(model, &rc) == YAN_ERR_FORMAT && strstr(yan_last_error(), "not a yan training checkpoint"));
    /* a checkpoint of another model shape */
    yan_train_config xc = c;
    xc.model.n_ff = 96;
    CHECK(yan_trainer_new(&xc, NULL, &x) == YAN_OK);
    if (x) CHECK(yan_ckpt_load(x, ckpt) == YAN_ERR_FORMAT && strstr(yan_last_error(), "ckpt.gguf"));
out:
    yan_trainer_free(a);
    yan_trainer_free(b);
    yan_trainer_free(x);
}

static bool count_events(const yan_train_event *ev, void *ud) {
    int *n = ud;
    n[ev->kind]++;
    return true;
}

TEST(trainer_run_writes_outputs_and_resumes) {
    if (!test_data()) { CHECK(!"no test data"); return; }
    /* an uninterrupted run ... */
    yan_train_config c = small_config(tmp_path("trainer-full"));
    c.ckpt_every = 3;
    c.sample_every = 4;
    c.sample_tokens = 5;
    yan_trainer *a = NULL, *b = NULL;
    int ev[6] = {0};
    CHECK(yan_trainer_new(&c, NULL, &a) == YAN_OK);
    if (!a) return;
    CHECK(yan_trainer_run(a, count_events, ev) == YAN_OK);
    CHECK(a->step == 8 && a->n_hist == 8);
    CHECK(ev[YAN_TRAIN_EV_START] == 1 && ev[YAN_TRAIN_EV_STEP] == 8 && ev[YAN_TRAIN_EV_EVAL] == 2 &&
          ev[YAN_TRAIN_EV_SAMPLE] == 2 && ev[YAN_TRAIN_EV_CKPT] == 3 && ev[YAN_TRAIN_EV_DONE] == 1);
    CHECK(isfinite(a->hist[3].val_loss) && isnan(a->hist[4].val_loss) && isfinite(a->hist[7].val_loss));
    uint8_t *csv = NULL, *svg = NULL;
    size_t n_csv = 0, n_svg = 0;
    CHECK(yan_read_file(tmp_path("trainer-full/loss.csv"), &csv, &n_csv) == YAN_OK);
    CHECK(yan_read_file(tmp_path("trainer-full/loss.svg"), &svg, &n_svg) == YAN_OK);
    if (svg) CHECK(xml_balanced((const char *)svg));
    yan_model *m = NULL;
    CHECK(yan_model_load(tmp_path("trainer-full/model.gguf"), NULL, &m) == YAN_OK);
    if (m) CHECK(yan_model_n_layer(m) == 1 && yan_model_chat_template(m) != NULL);
    yan_model_free(m);

    /* ... equals one stopped at step 5 and resumed */
    yan_train_config h = c;
    snprintf(h.out_dir, sizeof h.out_dir, "%s", tmp_path("trainer-half"));
    h.stop_after = 5;
    CHECK(yan_trainer_new(&h, NULL, &b) == YAN_OK);
    if (!b) goto out;
    CHECK(yan_trainer_run(b, NULL, NULL) == YAN_OK && b->step == 5 && b->ckpt_step == 5);
    yan_trainer_free(b);
    b = NULL;
    yan_train_config rc;
    CHECK(yan_ckpt_read_config(tmp_path("trainer-half/ckpt.gguf"), &rc) == YAN_OK && rc.stop_after == 0);
    CHECK(yan_trainer_new(&rc, NULL, &b) == YAN_OK);
    if (!b) goto out;
    CHECK(yan_ckpt_load(b, tmp_path("trainer-half/ckpt.gguf")) == YAN_OK && b->n_hist == 5);
    CHECK(yan_trainer_run(b, NULL, NULL) == YAN_OK && b->step == 8);
    for (int i = 0; i < 8; i++) {
        CHECK(a->hist[i].train_loss == b->hist[i].train_loss);
        CHECK(a->hist[i].grad_norm == b->hist[i].grad_norm);
        CHECK(a->hist[i].lr == b->hist[i].lr);
        CHECK(memcmp(&a->hist[i].val_loss, &b->hist[i].val_loss, sizeof(float)) == 0);
    }
    /* the resumed CSV has the same columns but tokens/s */
    uint8_t *csv2 = NULL;
    size_t n_csv2 = 0;
    CHECK(yan_read_file(tmp_path("trainer-half/loss.csv"), &csv2, &n_csv2) == YAN_OK);
    if (csv && csv2) {
        int lines = 0;
        for (const char *p = (const char *)csv, *q = (const char *)csv2; p && q; lines++) {
            const char *pe = strrchr(p, ','), *pn = strchr(p, '\n'), *qn = strchr(q, '\n');
            if (!pn || !qn) break;
            /* compare up to the last comma of the line */
            pe = p;
            for (const char *k = p; k < pn; k++) if (*k == ',') pe = k;
            CHECK(strncmp(p, q, (size_t)(pe - p)) == 0);
            p = pn + 1;
            q = qn + 1;
        }
        CHECK(lines == 9);
    }
    yan_free(csv2);
out:
    yan_free(csv);
    yan_free(svg);
    yan_trainer_free(a);
    yan_trainer_free(b);
}

TEST(trainer_bad_data_dir) {
    yan_train_config c = small_config(tmp_path("trainer-bad"));
    snprintf(c.data_dir, sizeof c.data_dir, "%s", tmp_path("no-such-data"));
    yan_trainer *t = NULL;
    CHECK(yan_trainer_new(&c, NULL, &t) == YAN_ERR_IO && t == NULL);
    CHECK(strstr(yan_last_error(), "no-such-data") && strstr(yan_last_error(), "yan data prepare"));
}

/* ------------------------------------------------------------ fine-tuning */

/* A base for fine-tuning: the small model trained 2 steps with a context
 * long enough for the chats, written as model.gguf is (tokenizer, ChatML). */
static const char *ft_base(const char *name, uint64_t seed, char *path, size_t cap) {
    snprintf(path, cap, "%s", tmp_path(name));
    yan_train_config c = small_config(tmp_path("ft-base-out"));
    c.model.n_ctx = 256;
    c.steps = 2;
    c.seed = seed;
    yan_trainer *t = NULL;
    if (yan_trainer_new(&c, NULL, &t) != YAN_OK) return NULL;
    float l, g, lr;
    bool ok = yan_trainer_step(t, &l, &g, &lr) == YAN_OK && yan_trainer_write_model(t, path) == YAN_OK;
    yan_trainer_free(t);
    return ok ? path : NULL;
}

static yan_train_config ft_config(const char *base, const char *out) {
    yan_train_config c = yan_train_config_default();
    snprintf(c.base_path, sizeof c.base_path, "%s", base);
    snprintf(c.sft_data, sizeof c.sft_data, "%s", "tests/train/chat_small.jsonl");
    snprintf(c.out_dir, sizeof c.out_dir, "%s", out);
    c.batch = 4;
    c.seq = 0;
    c.steps = 6;
    c.lr = 1e-2f;
    c.warmup = 1;
    c.eval_every = 3;
    c.ckpt_every = 0;
    c.threads = 2;
    c.lora = (yan_tlora){.rank = 4, .alpha = 8, .targets = YAN_LORA_ALL};
    return c;
}

TEST(trainer_finetune_lora_resumes_and_refuses) {
    if (!test_data()) { CHECK(!"no test data"); return; }
    char b1[512], b2[512];
    const char *base = ft_base("ft-base.gguf", 1, b1, sizeof b1), *other = ft_base("ft-other.gguf", 2, b2, sizeof b2);
    CHECK(base && other);
    if (!base || !other) return;
    yan_train_config c = ft_config(base, tmp_path("ft-a"));
    yan_trainer *a = NULL, *b = NULL;
    CHECK(yan_trainer_new(&c, NULL, &a) == YAN_OK);
    if (!a) return;
    CHECK(a->finetune && a->m->lora.rank == 4 && !a->m->mapped);
    CHECK(a->sft_val.n_examples == 3 && a->sft_train.n_examples == 45); /* 5% of 48 held out */
    CHECK(a->cfg.seq > 16 && a->cfg.seq <= 256 && !strcmp(a->family, "chatml"));
    CHECK(yan_trainer_run(a, NULL, NULL) == YAN_OK && a->step == 6);
    CHECK(a->hist[5].train_loss < a->hist[0].train_loss);
    CHECK(isfinite(a->hist[2].val_loss) && isnan(a->hist[2].val_bpb));
    struct stat st;
    CHECK(stat(tmp_path("ft-a/adapter.gguf"), &st) == 0 && stat(tmp_path("ft-a/model.gguf"), &st) != 0);

    /* stopped at step 4 and resumed: bit-identical */
    yan_train_config h = ft_config(base, tmp_path("ft-b"));
    h.stop_after = 4;
    CHECK(yan_trainer_new(&h, NULL, &b) == YAN_OK);
    if (!b) goto out;
    CHECK(yan_trainer_run(b, NULL, NULL) == YAN_OK && b->step == 4);
    yan_trainer_free(b);
    b = NULL;
    yan_train_config rc;
    CHECK(yan_ckpt_read_config(tmp_path("ft-b/ckpt.gguf"), &rc) == YAN_OK);
    CHECK(!strcmp(rc.base_path, base));
    CHECK(rc.lora.rank == 4 && rc.lora.targets == YAN_LORA_ALL);
    CHECK(rc.seq == a->cfg.seq);
    CHECK(yan_trainer_new(&rc, NULL, &b) == YAN_OK);
    if (!b) goto out;
    CHECK(yan_ckpt_load(b, tmp_path("ft-b/ckpt.gguf")) == YAN_OK && b->step == 4);
    CHECK(yan_trainer_run(b, NULL, NULL) == YAN_OK && b->step == 6);
    for (int i = 0; i < 6; i++) CHECK(a->hist[i].train_loss == b->hist[i].train_loss);
    CHECK(!memcmp(a->m->params, b->m->params, (size_t)a->n_params * sizeof(float)));
    yan_trainer_free(b);
    b = NULL;
    /* another base is refused, naming the checkpoint */
    snprintf(rc.base_path, sizeof rc.base_path, "%s", other);
    CHECK(yan_trainer_new(&rc, NULL, &b) == YAN_OK);
    if (b) CHECK(yan_ckpt_load(b, tmp_path("ft-b/ckpt.gguf")) == YAN_ERR_FORMAT && strstr(yan_last_error(), "another base") &&
                 strstr(yan_last_error(), "ft-b/ckpt.gguf"));
out:
    yan_trainer_free(a);
    yan_trainer_free(b);
}

TEST(trainer_finetune_full_quantized_and_bad_data) {
    if (!test_data()) { CHECK(!"no test data"); return; }
    char b1[512], q8[512];
    const char *base = ft_base("ft-base2.gguf", 3, b1, sizeof b1);
    CHECK(base != NULL);
    if (!base) return;
    /* full fine-tuning: model.gguf keeps the base's template */
    yan_train_config c = ft_config(base, tmp_path("ft-full"));
    c.lora.rank = 0;
    c.steps = 3;
    c.eval_every = 0;
    yan_trainer *t = NULL;
    CHECK(yan_trainer_new(&c, NULL, &t) == YAN_OK);
    if (t) {
        CHECK(!t->m->lora.rank && t->sft_val.n_examples == 0 && t->sft_train.n_examples == 48);
        CHECK(yan_trainer_run(t, NULL, NULL) == YAN_OK);
        yan_model *m = NULL;
        CHECK(yan_model_load(tmp_path("ft-full/model.gguf"), NULL, &m) == YAN_OK);
        if (m) CHECK(yan_model_chat_template(m) && !strcmp(yan_model_chat_template(m), t->chat_tmpl));
        yan_model_free(m);
        yan_trainer_free(t);
        t = NULL;
    }
    /* LoRA on a q8_0 base: mapped, trains */
    snprintf(q8, sizeof q8, "%s", tmp_path("ft-base2-q8.gguf"));
    CHECK(yan_model_quantize(base, q8, "q8_0", 1, NULL, NULL) == YAN_OK);
    c = ft_config(q8, tmp_path("ft-q8"));
    c.steps = 2;
    c.eval_every = 0;
    CHECK(yan_trainer_new(&c, NULL, &t) == YAN_OK);
    if (t) {
        CHECK(t->m->mapped);
        CHECK(yan_trainer_run(t, NULL, NULL) == YAN_OK && t->step == 2 && isfinite(t->hist[1].train_loss));
        yan_trainer_free(t);
        t = NULL;
    }
    /* bad conversations: file and line named, nothing made */
    char bad[512];
    snprintf(bad, sizeof bad, "%s", tmp_path("ft-bad.jsonl"));
    const char *text = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}\n"
                       "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}\n";
    CHECK(yan_write_atomic(bad, text, strlen(text)) == YAN_OK);
    c = ft_config(base, tmp_path("ft-bad"));
    snprintf(c.sft_data, sizeof c.sft_data, "%s", bad);
    CHECK(yan_trainer_new(&c, NULL, &t) == YAN_ERR_FORMAT && t == NULL);
    CHECK(strstr(yan_last_error(), "ft-bad.jsonl:2: the conversation has no assistant turn") != NULL);
    struct stat st;
    CHECK(stat(tmp_path("ft-bad"), &st) != 0);
    /* bad settings */
    c = ft_config(base, tmp_path("ft-bad"));
    c.lora.targets = 0;
    CHECK(yan_trainer_new(&c, NULL, &t) == YAN_ERR_INVALID_ARG && strstr(yan_last_error(), "targets"));
    c = ft_config(base, tmp_path("ft-bad"));
    snprintf(c.chat_template, sizeof c.chat_template, "nosuch");
    CHECK(yan_trainer_new(&c, NULL, &t) == YAN_ERR_INVALID_ARG && strstr(yan_last_error(), "chatml"));
}
