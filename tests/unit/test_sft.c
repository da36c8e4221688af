/* test_sft.c — supervised fine-tuning data (src/train/sft.c): the trained
 * mask covers exactly the assistant replies and their end-of-turn markers,
 * batches shift targets by one and hide untrained ones, long examples are
 * cut, and malformed lines are reported with their line number. */
#include "test.h"

#include "train/sft.h"
#include "yan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static yan_tokenizer *kjv_tok(void) {
    yan_tokenizer_params p = yan_tokenizer_params_default();
    yan_tokenizer *t = NULL;
    if (yan_tokenizer_load("models/kjv-8k.tokenizer.json", &p, &t) != YAN_OK) return NULL;
    return t;
}

static char *write_tmp(const char *name, const char *text) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", yan_test_tmp_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

/* decode the tokens of example ex whose mask equals want */
static void decode_masked(const yan_tokenizer *t, const yan_sft_data *d, int64_t ex, int want, char *out,
                          size_t cap) {
    size_t o = 0;
    for (int64_t i = d->start[ex]; i < d->start[ex + 1]; i++) {
        if (d->trained[i] != want) continue;
        int64_t n = yan_token_to_piece(t, d->tokens[i], out + o, cap - o - 1);
        if (n > 0) o += (size_t)n;
    }
    out[o] = 0;
}

TEST(sft_mask_covers_assistant_replies) {
    yan_tokenizer *t = kjv_tok();
    CHECK(t != NULL);
    if (!t) return;
    const char *path = write_tmp("chat.jsonl",
        "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Who begat Enos?\"},"
        "{\"role\":\"assistant\",\"content\":\"Seth begat Enos.\"},"
        "{\"role\":\"user\",\"content\":\"And then?\"},"
        "{\"role\":\"assistant\",\"content\":\"Enos begat Cainan.\"}]}\n"
        "\n"
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Say amen\"},{\"role\":\"assistant\",\"content\":\"Amen.\"}]}\n");
    yan_sft_data d;
    CHECK(yan_sft_load(path, t, "chatml", 0, &d) == YAN_OK);
    CHECK(d.n_examples == 2);
    char buf[2048];
    decode_masked(t, &d, 0, 1, buf, sizeof buf);
    CHECK(strcmp(buf, "Seth begat Enos.<|im_end|>\nEnos begat Cainan.<|im_end|>\n") == 0);
    decode_masked(t, &d, 0, 0, buf, sizeof buf);
    CHECK(strcmp(buf, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho begat Enos?<|im_end|>\n"
                      "<|im_start|>assistant\n<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n") == 0);
    decode_masked(t, &d, 1, 1, buf, sizeof buf);
    CHECK(strcmp(buf, "Amen.<|im_end|>\n") == 0);

    /* batches: inputs are the tokens, targets the next token when trained */
    int T = 64;
    int32_t in[2 * 64], tg[2 * 64];
    uint64_t pos = 1;
    yan_sft_batch(&d, NULL, &pos, 2, T, 7999, in, tg);
    CHECK(pos == 1);
    int64_t n1 = d.start[2] - d.start[1];
    int64_t counted = 0;
    for (int i = 0; i < T; i++) {
        CHECK(in[i] == (i < n1 ? d.tokens[d.start[1] + i] : 7999));
        if (tg[i] >= 0) {
            counted++;
            CHECK(i + 1 < n1 && d.trained[d.start[1] + i + 1] && tg[i] == d.tokens[d.start[1] + i + 1]);
        }
    }
    int64_t want = 0;
    for (int64_t i = d.start[1] + 1; i < d.start[2]; i++) want += d.trained[i];
    CHECK(counted == want);
    CHECK(in[T] == d.tokens[0]); /* row 1 wraps to example 0 */
    yan_sft_free(&d);

    /* cut to 12 tokens: still trains something in example 0? if not, an error */
    yan_status s = yan_sft_load(path, t, "chatml", 4, &d);
    CHECK(s == YAN_ERR_FORMAT);
    CHECK(strstr(yan_last_error(), ":1:") != NULL);

    /* the llama3 family renders consistently too */
    CHECK(yan_sft_load(path, t, "llama3", 0, &d) == YAN_OK);
    decode_masked(t, &d, 1, 1, buf, sizeof buf);
    CHECK(strcmp(buf, "Amen.<|eot_id|>") == 0);
    yan_sft_free(&d);
    yan_tokenizer_free(t);
}

TEST(sft_bad_input) {
    yan_tokenizer *t = kjv_tok();
    CHECK(t != NULL);
    if (!t) return;
    yan_sft_data d;
    const char *ok = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}\n";
    char text[1024];
    struct { const char *line; const char *want; } cases[] = {
        {"{\"messages\": [}", "3: invalid JSON"},
        {"{\"msgs\": []}", ":3: no \"messages\""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", ":3: the conversation has no assistant"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":5},{\"role\":\"assistant\",\"content\":\"b\"}]}",
         ":3: message 0 needs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "%s%s%s\n", ok, ok, cases[i].line);
        const char *path = write_tmp("bad.jsonl", text);
        CHECK(yan_sft_load(path, t, "chatml", 0, &d) == YAN_ERR_FORMAT);
        CHECK(strstr(yan_last_error(), cases[i].want) != NULL);
        CHECK(strstr(yan_last_error(), "bad.jsonl") != NULL);
        CHECK(d.tokens == NULL && d.n_examples == 0);
    }
    CHECK(yan_sft_load(write_tmp("empty.jsonl", "\n\n"), t, "chatml", 0, &d) == YAN_ERR_FORMAT);
    CHECK(yan_sft_load("/nonexistent/x.jsonl", t, "chatml", 0, &d) != YAN_OK);
    CHECK(yan_sft_load(write_tmp("ok.jsonl", ok), t, "nosuch", 0, &d) == YAN_ERR_UNSUPPORTED);
    yan_tokenizer_free(t);
}

TEST(sft_shuffle_is_a_permutation) {
    int64_t *p = yan_sft_shuffle(1000, 42), *q = yan_sft_shuffle(1000, 42);
    CHECK(p && q);
    if (!p || !q) return;
    char seen[1000] = {0};
    int moved = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK(p[i] >= 0 && p[i] < 1000 && !seen[p[i]]);
        seen[p[i]] = 1;
        CHECK(p[i] == q[i]);
        moved += p[i] != i;
    }
    CHECK(moved > 900);
    yan_free(p);
    yan_free(q);
}
