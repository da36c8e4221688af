/* test_chat.c — chat templates without a model: the exact text of every
 * family for system + user + assistant + user with the assistant opening,
 * system merging, trimming, family detection from small Jinja-like strings
 * written here, buffer negotiation and errors. */
#include "model/chat.h"

#include "base/base.h"
#include "test.h"

static const yan_chat_message CONV[] = {
    {"system", "You are terse."},
    {"user", "Hi!"},
    {"assistant", "Hello."},
    {"user", "2+2?"},
};
#define N_CONV (sizeof CONV / sizeof CONV[0])

/* format into a fixed buffer; returns "" and fails the check on error */
static bool fmt_is(const char *family, const yan_chat_message *m, size_t n, bool add, const char *want) {
    static char buf[4096];
    int64_t r = yan_chat_format_family(family, m, n, add, buf, sizeof buf);
    if (r < 0) {
        fprintf(stderr, "  %s: returned %lld (%s)\n", family, (long long)r, yan_last_error());
        return false;
    }
    if ((size_t)r != strlen(want) || strcmp(buf, want) != 0) {
        fprintf(stderr, "  %s:\n  got  [%s]\n  want [%s]\n", family, buf, want);
        return false;
    }
    return true;
}

TEST(chat_chatml) {
    CHECK(fmt_is("chatml", CONV, N_CONV, true,
                 "<|im_start|>system\nYou are terse.<|im_end|>\n"
                 "<|im_start|>user\nHi!<|im_end|>\n"
                 "<|im_start|>assistant\nHello.<|im_end|>\n"
                 "<|im_start|>user\n2+2?<|im_end|>\n"
                 "<|im_start|>assistant\n"));
    CHECK(fmt_is("chatml", CONV + 1, 1, false, "<|im_start|>user\nHi!<|im_end|>\n"));
    CHECK(fmt_is("chatml", NULL, 0, true, "<|im_start|>assistant\n"));
    CHECK(fmt_is("chatml", NULL, 0, false, ""));
}

TEST(chat_llama2) {
    CHECK(fmt_is("llama2", CONV, N_CONV, true,
                 "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi! [/INST] Hello. </s>"
                 "<s>[INST] 2+2? [/INST]"));
    /* without a system; contents are stripped; add_assistant adds nothing */
    const yan_chat_message m[] = {{"user", "  a b \n"}, {"assistant", "\tc "}, {"user", "d"}};
    CHECK(fmt_is("llama2", m, 3, false, "[INST] a b [/INST] c </s><s>[INST] d [/INST]"));
    CHECK(fmt_is("llama2", m, 3, true, "[INST] a b [/INST] c </s><s>[INST] d [/INST]"));
    /* with a system block only the user's right end is stripped */
    const yan_chat_message s[] = {{"system", "S"}, {"user", " u "}};
    CHECK(fmt_is("llama2", s, 2, true, "[INST] <<SYS>>\nS\n<</SYS>>\n\n u [/INST]"));
    /* a lone system message becomes a turn of its own */
    CHECK(fmt_is("llama2", s, 1, true, "[INST] <<SYS>>\nS\n<</SYS>> [/INST]"));
}

TEST(chat_llama3) {
    CHECK(fmt_is("llama3", CONV, N_CONV, true,
                 "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n"));
    const yan_chat_message m[] = {{"user", "\n x \n"}};
    CHECK(fmt_is("llama3", m, 1, false, "<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>"));
}

TEST(chat_zephyr) {
    CHECK(fmt_is("zephyr", CONV, N_CONV, true,
                 "<|system|>\nYou are terse.</s>\n"
                 "<|user|>\nHi!</s>\n"
                 "<|assistant|>\nHello.</s>\n"
                 "<|user|>\n2+2?</s>\n"
                 "<|assistant|>\n"));
}

TEST(chat_mistral) {
    CHECK(fmt_is("mistral", CONV, N_CONV, true,
                 "[INST] You are terse.\n\nHi! [/INST]Hello.</s>[INST] 2+2? [/INST]"));
    CHECK(fmt_is("mistral", CONV + 1, 3, false, "[INST] Hi! [/INST]Hello.</s>[INST] 2+2? [/INST]"));
    /* two system messages are joined; a trailing system becomes a turn */
    const yan_chat_message s[] = {{"system", "A"}, {"system", "B"}, {"user", "u"}, {"system", "C"}};
    CHECK(fmt_is("mistral", s, 4, true, "[INST] A\n\nB\n\nu [/INST][INST] C [/INST]"));
}

TEST(chat_gemma) {
    CHECK(fmt_is("gemma", CONV, N_CONV, true,
                 "<start_of_turn>user\nYou are terse.\n\nHi!<end_of_turn>\n"
                 "<start_of_turn>model\nHello.<end_of_turn>\n"
                 "<start_of_turn>user\n2+2?<end_of_turn>\n"
                 "<start_of_turn>model\n"));
    const yan_chat_message m[] = {{"user", " hi "}, {"assistant", "\nyo\n"}};
    CHECK(fmt_is("gemma", m, 2, false,
                 "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\nyo<end_of_turn>\n"));
}

TEST(chat_phi3) {
    CHECK(fmt_is("phi3", CONV, N_CONV, true,
                 "<|system|>\nYou are terse.<|end|>\n"
                 "<|user|>\nHi!<|end|>\n"
                 "<|assistant|>\nHello.<|end|>\n"
                 "<|user|>\n2+2?<|end|>\n"
                 "<|assistant|>\n"));
}

TEST(chat_no_bos_text_at_start) {
    static const char *fams[] = {"chatml", "llama2", "llama3", "zephyr", "mistral", "gemma", "phi3"};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        char buf[1024];
        CHECK(yan_chat_format_family(fams[i], CONV, N_CONV, true, buf, sizeof buf) > 0);
        CHECK(strncmp(buf, "<s>", 3) != 0 && strncmp(buf, "<|begin_of_text|>", 17) != 0 &&
              strncmp(buf, "<bos>", 5) != 0);
        CHECK(yan_chat_family_known(fams[i]));
    }
}

TEST(chat_buffer_negotiation) {
    const char *want = "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n";
    const size_t len = strlen(want);
    CHECK(yan_chat_format_family("chatml", CONV + 1, 1, true, NULL, 0) == -(int64_t)(len + 1));
    char buf[128];
    memset(buf, 'x', sizeof buf);
    size_t cap = len; /* one short: no room for the NUL */
    YAN_TESTCASE(cap == len);
    CHECK(yan_chat_format_family("chatml", CONV + 1, 1, true, buf, cap) == -(int64_t)(len + 1));
    CHECK(buf[0] == 'x' && buf[len - 1] == 'x'); /* nothing written */
    cap = len + 1; /* exactly enough */
    YAN_TESTCASE(cap == len + 1);
    CHECK(yan_chat_format_family("chatml", CONV + 1, 1, true, buf, cap) == (int64_t)len);
    CHECK(strcmp(buf, want) == 0);
}

TEST(chat_errors) {
    char buf[64];
    CHECK(yan_chat_format_family("vicuna", CONV, N_CONV, true, buf, sizeof buf) == INT64_MIN);
    CHECK(strstr(yan_last_error(), "unknown chat template 'vicuna'") != NULL);
    CHECK(strstr(yan_last_error(), "chatml") != NULL && strstr(yan_last_error(), "phi3") != NULL);
    CHECK(yan_chat_format_family(NULL, CONV, N_CONV, true, buf, sizeof buf) == INT64_MIN);
    CHECK(!yan_chat_family_known("vicuna") && !yan_chat_family_known(NULL));
    const yan_chat_message bad[] = {{NULL, "x"}};
    CHECK(yan_chat_format_family("chatml", bad, 1, true, buf, sizeof buf) == INT64_MIN);
    CHECK(yan_chat_format_family("chatml", NULL, 2, true, buf, sizeof buf) == INT64_MIN);
    /* NULL content is empty */
    const yan_chat_message empty[] = {{"user", NULL}};
    CHECK(fmt_is("chatml", empty, 1, false, "<|im_start|>user\n<|im_end|>\n"));
}

TEST(chat_detect) {
    bool rec = true;
    CHECK(strcmp(yan_chat_detect("{% for m in messages %}{{'<|im_start|>' + m.role }}{% endfor %}", &rec), "chatml") == 0 && rec);
    CHECK(strcmp(yan_chat_detect("{{ '<|start_header_id|>' + r + '<|end_header_id|>' }}", &rec), "llama3") == 0 && rec);
    CHECK(strcmp(yan_chat_detect("{{ '<start_of_turn>' + role }}", &rec), "gemma") == 0 && rec);
    CHECK(strcmp(yan_chat_detect("{{ bos_token + '[INST] <<SYS>>\\n' + s }}", &rec), "llama2") == 0 && rec);
    CHECK(strcmp(yan_chat_detect("{{ '[INST] ' + c + ' [/INST]' }}", &rec), "mistral") == 0 && rec);
    CHECK(strcmp(yan_chat_detect("{{ '<|user|>\\n' + c + eos_token }}{{ '<|assistant|>' }}", &rec), "zephyr") == 0 && rec);
    CHECK(strcmp(yan_chat_detect("{{ '<|user|>\\n' + c + '</s>' }}", &rec), "zephyr") == 0 && rec);
    CHECK(strcmp(yan_chat_detect("{{ '<|user|>\\n' + c + '<|end|>\\n' }}", &rec), "phi3") == 0 && rec);
    CHECK(strcmp(yan_chat_detect("{{'<|' + r + '|>\\n' + c + '<|end|>'}}{{ '<|assistant|>\\n' }}", &rec), "phi3") == 0 && rec);
    /* unrecognised or absent: chatml fallback, reported */
    CHECK(strcmp(yan_chat_detect("{{ 'USER: ' + c }}", &rec), "chatml") == 0 && !rec);
    rec = true;
    CHECK(strcmp(yan_chat_detect(NULL, &rec), "chatml") == 0 && !rec);
    rec = true;
    CHECK(strcmp(yan_chat_detect("", &rec), "chatml") == 0 && !rec);
    CHECK(strcmp(yan_chat_detect("<|im_start|>", NULL), "chatml") == 0);
}

TEST(chat_public_without_model) {
    /* no model and no name: the fallback family */
    char buf[128];
    CHECK(yan_chat_format(NULL, NULL, CONV + 1, 1, false, buf, sizeof buf) > 0);
    CHECK(strcmp(buf, "<|im_start|>user\nHi!<|im_end|>\n") == 0);
    CHECK(yan_chat_format(NULL, "phi3", CONV + 1, 1, false, buf, sizeof buf) > 0);
    CHECK(strcmp(buf, "<|user|>\nHi!<|end|>\n") == 0);
    bool rec = true;
    CHECK(strcmp(yan_chat_template_family(NULL, &rec), "chatml") == 0 && !rec);
}
