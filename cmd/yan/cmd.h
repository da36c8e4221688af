/* cmd.h — the yan command: one file per subcommand, each a thin shell over
 * include/yan.h. Shared helpers for argument parsing and input reading. */
#ifndef YAN_CMD_H
#define YAN_CMD_H
#include "yan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int yan_cmd_version(int argc, char **argv);
int yan_cmd_tokenize(int argc, char **argv);
int yan_cmd_detokenize(int argc, char **argv);
int yan_cmd_tokenizer(int argc, char **argv);
int yan_cmd_tokenizer_train(int argc, char **argv);
int yan_cmd_data(int argc, char **argv);
int yan_cmd_train(int argc, char **argv);
int yan_cmd_finetune(int argc, char **argv);
int yan_cmd_run(int argc, char **argv);
int yan_cmd_chat(int argc, char **argv);
int yan_cmd_serve(int argc, char **argv);
int yan_cmd_info(int argc, char **argv);
int yan_cmd_perplexity(int argc, char **argv);
int yan_cmd_quantize(int argc, char **argv);
int yan_cmd_bench(int argc, char **argv);
int yan_cmd_lora(int argc, char **argv);
int yan_cmd_moderate(int argc, char **argv);
int yan_cmd_kb(int argc, char **argv);
int yan_cmd_embed(int argc, char **argv);

/* Print "yan: <what>: <status>: <detail>" to stderr; returns 1. */
int cmd_fail(const char *what, yan_status s);
/* Read a whole stream or file (path "-" = stdin) into a malloc'ed buffer. */
char *cmd_read_all(const char *path, size_t *len);
/* True if arg is "-h" or "--help". */
int cmd_is_help(const char *arg);
/* Parse a non-negative int option value; exits with a message on error. */
int cmd_int(const char *opt, const char *val);

/* Shared by the inference commands (run, chat, perplexity, bench; in cmd_run.c). */
#define CMD_DEFAULT_MODEL_FILE "yan-default.gguf" /* in models/ of the source tree */
#define CMD_DEFAULT_CTX 4096 /* context when --ctx is not given: the model's, at most this */
/* Parse a non-negative finite number; exits with a message on error. */
double cmd_float(const char *opt, const char *val);
/* If argv[*i] is a sampler option (--temp, --top-k, --top-p, --min-p,
 * --repeat-penalty, --repeat-last-n, --presence-penalty, --frequency-penalty,
 * --seed), consume it and its value into sp (and set *seeded for --seed) and
 * return 1; else return 0. */
int cmd_sampler_option(int argc, char **argv, int *i, yan_sampler_params *sp, bool *seeded);
/* --help lines for the sampler options. */
const char *cmd_sampler_help(void);
/* Parse f16|f32 into *out; exits with a message on error. */
int cmd_kv_type(const char *opt, const char *val, yan_kv_type *out);
/* requested > 0, else the model's training context capped at CMD_DEFAULT_CTX. */
int32_t cmd_default_ctx(const yan_model *m, int32_t requested);
/* The built-in default model (used when run/chat get no MODEL): $YAN_MODEL,
 * else models/yan-default.gguf next to the yan binary's folder (the source
 * tree: build/yan -> models/), else <prefix>/share/yan/yan-default.gguf for an
 * installed yan. NULL (with a message printed) when none exists. */
const char *cmd_default_model(void);
/* A seed from the clock and the process id (when --seed is not given). */
uint64_t cmd_clock_seed(void);
#endif
