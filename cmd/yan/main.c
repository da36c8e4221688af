/* main.c — the yan command's entry point and subcommand table. */
#include "cmd.h"

#include <errno.h>

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} subcommand;

static const subcommand CMDS[] = {
    {"tokenize", yan_cmd_tokenize, "text -> token ids (or pieces, or a count)"},
    {"detokenize", yan_cmd_detokenize, "token ids -> text"},
    {"tokenizer", yan_cmd_tokenizer, "tokenizer tools: info, train, convert"},
    {"data", yan_cmd_data, "training data: tokenize a corpus into shards (prepare, info, cat)"},
    {"train", yan_cmd_train, "pre-train a llama model on prepared data (checkpoints, resume, MPI)"},
    {"finetune", yan_cmd_finetune, "fine-tune a model on chat JSONL: full or LoRA (also on a quantized base)"},
    {"run", yan_cmd_run, "generate text from a prompt with a GGUF model (streams)"},
    {"chat", yan_cmd_chat, "talk with a GGUF model (history, /reset, /exit)"},
    {"serve", yan_cmd_serve, "OpenAI-compatible API server with continuous batching (and a chat page)"},
    {"info", yan_cmd_info, "a GGUF model's architecture, tensor types and memory plan"},
    {"perplexity", yan_cmd_perplexity, "perplexity of a text, as llama.cpp computes it"},
    {"bench", yan_cmd_bench, "prompt and generation speed, like llama-bench"},
    {"quantize", yan_cmd_quantize, "convert a GGUF model's weights to q8_0, q4_0, q4_K_M, ..."},
    {"lora", yan_cmd_lora, "LoRA adapters: merge one into a model"},
    {"moderate", yan_cmd_moderate, "content moderation (OpenAI categories) and prompt-injection screen"},
    {"kb", yan_cmd_kb, "knowledge base: add documents (text, Markdown, HTML, PDF), list, remove, search"},
    {"embed", yan_cmd_embed, "embeddings of texts (bert/bge/MiniLM/gte and decoder models), as /v1/embeddings"},
    {"version", yan_cmd_version, "print the version and CPU features"},
};

static void usage(FILE *f) {
    fprintf(f, "yan %s — a complete large-language-model system in C\n\nusage: yan <command> [options]\n\ncommands:\n",
            yan_version());
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++) fprintf(f, "  %-12s %s\n", CMDS[i].name, CMDS[i].help);
    fprintf(f, "\n'yan <command> --help' describes a command.\n");
}

int cmd_fail(const char *what, yan_status s) {
    const char *detail = yan_last_error();
    fprintf(stderr, "yan: %s: %s%s%s\n", what, yan_status_str(s), detail[0] ? ": " : "", detail);
    return 1;
}

int cmd_is_help(const char *a) { return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0; }

int cmd_int(const char *opt, const char *val) {
    char *end;
    if (!val) {
        fprintf(stderr, "yan: %s needs a value\n", opt);
        exit(2);
    }
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || *end || v < 0 || v > 1000000000) {
        fprintf(stderr, "yan: %s: '%s' is not a non-negative integer\n", opt, val);
        exit(2);
    }
    return (int)v;
}

char *cmd_read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "yan: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) break;
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) {
            if (ferror(f)) {
                fprintf(stderr, "yan: %s: read error\n", path);
                free(buf);
                buf = NULL;
            }
            break;
        }
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) free(buf);
        buf = nb;
    }
    if (f != stdin) fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 2 || cmd_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) return yan_cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++)
        if (strcmp(argv[1], CMDS[i].name) == 0) return CMDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "yan: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
