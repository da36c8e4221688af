/* yan.h — the one public header of libyan, the yan LLM system.
 *
 * Conventions (see docs and ../shared/STYLE.md):
 *  - every exported name starts with yan_ / YAN_;
 *  - handles are opaque; each create/load has one free that accepts NULL;
 *  - fallible calls return a yan_status (0 = ok, negative = error); the detail
 *    of the last failure on the calling thread is yan_last_error();
 *  - functions that fill caller buffers return the count written, or the
 *    negative of the size needed when the buffer is too small (nothing written);
 *  - enums are append-only; the ABI grows by adding fields at the end of
 *    params structs and bumping YAN_ABI_VERSION.
 */
#ifndef YAN_H
#define YAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define YAN_API __declspec(dllexport)
#else
#define YAN_API __attribute__((visibility("default")))
#endif

#define YAN_VERSION_STRING "0.1.0"
#define YAN_ABI_VERSION 1

/* ------------------------------------------------------------------ status */

typedef enum {
    YAN_OK = 0,
    YAN_ERR_NOMEM = -1,        /* an allocation failed */
    YAN_ERR_IO = -2,           /* open/read/write/fsync/rename failed */
    YAN_ERR_FORMAT = -3,       /* malformed input file or data */
    YAN_ERR_UNSUPPORTED = -4,  /* well-formed but not supported (unknown pre-tokenizer, type) */
    YAN_ERR_CONTEXT_FULL = -5, /* the context cannot hold the request */
    YAN_ERR_ABORTED = -6,      /* a callback asked to stop */
    YAN_ERR_INVALID_ARG = -7,  /* a caller passed a bad argument */
    YAN_ERR_TOO_SMALL = -8,    /* a caller buffer is too small */
    YAN_ERR_NOT_FOUND = -9,    /* a named thing does not exist */
} yan_status;

/* A static, human-readable name for a status. Never NULL. */
YAN_API const char *yan_status_str(yan_status s);

/* Detail of the last failure on the calling thread ("file: problem ..."),
 * or "" when there was none. Valid until the next failing call on this thread. */
YAN_API const char *yan_last_error(void);

YAN_API const char *yan_version(void);

/* ----------------------------------------------------------------- logging */

typedef enum { YAN_LOG_DEBUG = 0, YAN_LOG_INFO = 1, YAN_LOG_WARN = 2, YAN_LOG_ERROR = 3 } yan_log_level;
typedef void (*yan_log_fn)(yan_log_level level, const char *msg, void *ud);

/* Route library log messages to fn (NULL = discard, the default) for messages
 * at or above min_level. Set it once at start-up, before other threads use yan. */
YAN_API void yan_log_set(yan_log_fn fn, void *ud, yan_log_level min_level);

/* --------------------------------------------------------------------- cpu */

/* Space-separated list of the SIMD features yan detected and will dispatch to,
 * e.g. "avx512f avx512bw avx512vnni avx512bf16 avx2 fma f16c". Static string. */
YAN_API const char *yan_cpu_features(void);
/* Number of online cores. */
YAN_API int yan_cpu_count(void);

/* --------------------------------------------------------------- tokenizer */

typedef int32_t yan_token;
typedef struct yan_tokenizer yan_tokenizer;

typedef struct {
    const char *pre;   /* pre-tokenizer name ("gpt2", "cl100k", "o200k", "qwen2", ...);
                          NULL = from the file (required for a .tiktoken file that is
                          not one of the standard encodings) */
    int n_threads;     /* threads for large inputs; 0 = all cores */
} yan_tokenizer_params;

YAN_API yan_tokenizer_params yan_tokenizer_params_default(void);

/* Load a vocabulary. The format is recognised from the content:
 *  - GGUF (tokenizer.ggml.* metadata; model "gpt2", "llama" or "bert" = WordPiece),
 *  - Hugging Face tokenizer.json (BPE model),
 *  - tiktoken rank file ("<base64> <rank>" lines),
 *  - GPT-2 encoder.json (vocab.bpe is read from the same folder).
 * On error *out is NULL and yan_last_error() names the file and the problem. */
YAN_API yan_status yan_tokenizer_load(const char *path, const yan_tokenizer_params *p,
                                      yan_tokenizer **out);
/* Free a tokenizer; NULL is a no-op. */
YAN_API void yan_tokenizer_free(yan_tokenizer *tok);

YAN_API int32_t yan_tokenizer_n_vocab(const yan_tokenizer *tok);
/* "bpe" (byte-level BPE), "spm" (SentencePiece-style BPE with scores) or
 * "wpm" (WordPiece, BERT: lowercasing/accents per the file, [CLS] ... [SEP]). */
YAN_API const char *yan_tokenizer_kind(const yan_tokenizer *tok);
/* Pre-tokenizer name, e.g. "cl100k"; "none" for spm and wpm. */
YAN_API const char *yan_tokenizer_pre(const yan_tokenizer *tok);
/* Names of the built-in pre-tokenizers, comma separated. */
YAN_API const char *yan_pretokenizer_names(void);

typedef enum {
    YAN_SPECIAL_BOS = 0, YAN_SPECIAL_EOS = 1, YAN_SPECIAL_EOT = 2, YAN_SPECIAL_UNK = 3,
    YAN_SPECIAL_PAD = 4, YAN_SPECIAL_SEP = 5, YAN_SPECIAL_CLS = 6, YAN_SPECIAL_MASK = 7,
    YAN_SPECIAL_COUNT = 8
} yan_special;
/* Id of a special token, or -1 when the vocabulary has none. */
YAN_API yan_token yan_tokenizer_special(const yan_tokenizer *tok, yan_special which);
/* Id of the token whose text is exactly s (special or normal), or -1. */
YAN_API yan_token yan_tokenizer_find(const yan_tokenizer *tok, const char *s, size_t len);

enum {
    YAN_TOKENIZE_SPECIAL = 1u << 0, /* recognise special/added tokens in the text */
    YAN_TOKENIZE_ADD_BOS = 1u << 1, /* prepend BOS when the vocabulary asks for it */
};

/* Encode len bytes of text (any bytes; invalid UTF-8 is kept byte-level).
 * Writes at most cap ids to out and returns the number written; when cap is too
 * small returns -(number needed) and writes nothing. Returns INT64_MIN on an
 * internal failure (allocation; see yan_last_error()).
 * Thread-safe: many threads may encode with one tokenizer at once. */
YAN_API int64_t yan_tokenize(const yan_tokenizer *tok, const char *text, size_t len,
                             yan_token *out, size_t cap, uint32_t flags);

/* Encode into a new array (free it with yan_free_tokens). */
YAN_API yan_status yan_tokenize_alloc(const yan_tokenizer *tok, const char *text, size_t len,
                                      uint32_t flags, yan_token **out, size_t *n_out);
YAN_API void yan_free_tokens(yan_token *ids);

/* Raw bytes of one token (for spm, "▁" becomes a space; byte tokens become the byte).
 * Returns the byte count, or -(needed) when cap is too small; an id out of range
 * returns INT64_MIN. Not NUL-terminated. */
YAN_API int64_t yan_token_to_piece(const yan_tokenizer *tok, yan_token id, char *buf, size_t cap);

/* Decode ids to text. Writes the bytes and a terminating NUL; returns the byte
 * count (without the NUL), or -(bytes needed including the NUL). Ids out of range
 * return INT64_MIN. Special tokens are written as their text unless
 * skip_special is set. */
YAN_API int64_t yan_detokenize(const yan_tokenizer *tok, const yan_token *ids, size_t n,
                               char *buf, size_t cap, bool skip_special);

/* Streaming decoder: push one token at a time and get only complete UTF-8
 * characters back; bytes of a character split across tokens are held until it
 * completes. A decoder must not outlive its tokenizer. Not thread-safe. */
typedef struct yan_decoder yan_decoder;
YAN_API yan_status yan_decoder_new(const yan_tokenizer *tok, yan_decoder **out);
YAN_API void yan_decoder_free(yan_decoder *dec);
/* Returns bytes written to buf (NUL-terminated), or -(needed incl. NUL): the
 * token is then not consumed; INT64_MIN for an id out of range. */
YAN_API int64_t yan_decoder_push(yan_decoder *dec, yan_token id, char *buf, size_t cap);
/* Emit held bytes (an incomplete character at the end of a stream) as they are. */
YAN_API int64_t yan_decoder_flush(yan_decoder *dec, char *buf, size_t cap);

/* ------------------------------------------------------- tokenizer trainer */

typedef bool (*yan_progress_fn)(float fraction, void *ud); /* return false to abort */

typedef struct {
    int32_t n_vocab;        /* tokens written: 256 + learned + specials */
    int32_t n_learned;      /* distinct learned tokens */
    size_t n_merges;
    size_t n_words;         /* distinct pre-tokenized pieces */
    uint64_t n_pieces;      /* pieces in the corpus */
    uint64_t n_bytes;       /* corpus bytes */
    uint64_t n_skipped;     /* bytes in pieces too long to learn from (> 64 KiB) */
    uint64_t n_tokens;      /* tokens the learned vocabulary splits the corpus into */
    double seconds_count;   /* reading + pre-tokenizing + counting */
    double seconds_learn;   /* learning the merges */
    double seconds_total;
} yan_train_tokenizer_stats;

typedef struct {
    int32_t vocab_size;        /* total size including the 256 byte tokens and specials */
    const char *pre;           /* pre-tokenizer used to split the corpus; NULL = "cl100k" */
    const char *const *special;/* special tokens appended to the vocabulary */
    int n_special;
    int n_threads;             /* 0 = all cores */
    int32_t min_frequency;     /* merges of pairs seen fewer times stop training; 0 = 2 */
    yan_progress_fn progress;  /* may be NULL */
    void *progress_ud;
    yan_train_tokenizer_stats *stats; /* filled on success when non-NULL */
} yan_train_tokenizer_params;

YAN_API yan_train_tokenizer_params yan_train_tokenizer_params_default(void);

/* Learn a byte-level BPE vocabulary from the files and write a Hugging Face
 * compatible tokenizer.json to out_path (atomically). */
YAN_API yan_status yan_tokenizer_train(const char *const *files, int n_files,
                                       const yan_train_tokenizer_params *p, const char *out_path);


/* ------------------------------------------------------------------- model */

typedef struct yan_model yan_model;
typedef struct yan_context yan_context;

/* How the weights get into memory. */
typedef enum {
    YAN_LOAD_AUTO = 0, /* COPY when huge pages are on and the file takes at most half of the
                        * available memory, else MMAP (the default) */
    YAN_LOAD_MMAP = 1, /* map the file read-only: instant, shared with other processes
                        * through the page cache, but 4 KiB pages make decoding slower */
    YAN_LOAD_COPY = 2, /* read the file into private huge-page memory (several threads) */
} yan_load_mode;

typedef struct {
    yan_progress_fn progress;  /* loading progress 0..1; return false to abort (may be NULL) */
    void *progress_ud;
    yan_load_mode load;        /* YAN_LOAD_AUTO by default */
    bool check_tensors;        /* scan weights for NaN/Inf while loading (slow; default false) */
} yan_model_params;

YAN_API yan_model_params yan_model_params_default(void);

/* Load a GGUF model (weights stay in the file mapping; nothing is copied).
 * Architectures: llama (Llama 2/3, TinyLlama, Mistral, SmolLM), qwen2, qwen3,
 * gpt2, and bert (BERT-family embedding models: bge, all-MiniLM, gte, with
 * a WordPiece vocabulary; no output layer, so yan_eval refuses them and
 * only yan_embed works). Weight types: f32, f16, bf16, q8_0, q4_0, q4_K,
 * q5_K, q6_K.
 * On error *out is NULL and yan_last_error() names the file and the problem. */
YAN_API yan_status yan_model_load(const char *path, const yan_model_params *p, yan_model **out);
YAN_API void yan_model_free(yan_model *m);

/* The model's tokenizer (owned by the model; valid while the model lives). */
YAN_API const yan_tokenizer *yan_model_tokenizer(const yan_model *m);
YAN_API const char *yan_model_arch(const yan_model *m);     /* "llama", "qwen2", ..., "bert" */
YAN_API const char *yan_model_name(const yan_model *m);     /* general.name or "" */
YAN_API int32_t yan_model_n_ctx_train(const yan_model *m);
YAN_API int32_t yan_model_n_embd(const yan_model *m);
YAN_API int32_t yan_model_n_layer(const yan_model *m);
YAN_API int32_t yan_model_n_vocab(const yan_model *m);      /* rows of the output matrix */
YAN_API uint64_t yan_model_n_params(const yan_model *m);
YAN_API uint64_t yan_model_weight_bytes(const yan_model *m);
/* tokenizer.chat_template, or NULL when the file has none */
YAN_API const char *yan_model_chat_template(const yan_model *m);
/* Human-readable description: architecture, sizes, tensor types and counts.
 * Returns bytes written (NUL-terminated) or -(bytes needed). */
YAN_API int64_t yan_model_describe(const yan_model *m, char *buf, size_t cap);

/* Apply a LoRA adapter (llama.cpp's GGUF adapter format: general.type =
 * adapter, adapter.type = lora, adapter.lora.alpha, tensors <name>.lora_a and
 * <name>.lora_b) to a loaded model: each adapted matrix W becomes an f32 copy
 * of W + scale * alpha / r * B A. Call before creating contexts; several
 * adapters may be applied one after the other. Errors name the file: not an
 * adapter, another architecture, a tensor the model lacks, shapes that do not
 * fit (the model is unchanged then). */
YAN_API yan_status yan_model_apply_lora(yan_model *m, const char *adapter_path, float scale);

/* Write base + adapter as one model (atomically, to a new file): every
 * adapted matrix becomes W + scale * alpha / r * B A, stored in W's own type
 * (quantized types are re-encoded); everything else is copied. */
YAN_API yan_status yan_lora_merge(const char *base_path, const char *adapter_path, float scale,
                                  const char *out_path);

/* Rewrite the GGUF model at in_path with its weight matrices in another type
 * and write it atomically to out_path (a different file). type is one of
 * "q8_0", "q4_0", "q4_K_M", "q4_K_S" (= "q4_K"), "q5_K_M", "q5_K_S" (= "q5_K"),
 * "q6_K", "f16", "bf16", "f32" (case-insensitive). Quantized types use
 * llama.cpp's mixes (e.g. q4_K_M keeps the output and, in about half the
 * layers, attn_v and ffn_down in q6_K); norms, biases and other 1-D tensors
 * are copied as they are; all metadata is copied and general.file_type /
 * general.quantization_version are set. llama.cpp loads the result.
 * n_threads: 0 = all cores. progress (may be NULL) gets the fraction of input
 * bytes done; returning false aborts with YAN_ERR_ABORTED (nothing written).
 * Converted tensors are held in memory until the file is written. */
YAN_API yan_status yan_model_quantize(const char *in_path, const char *out_path, const char *type, int n_threads,
                                      yan_progress_fn progress, void *ud);

typedef enum { YAN_KV_F16 = 0, YAN_KV_F32 = 1 } yan_kv_type;

typedef struct {
    int32_t n_ctx;       /* tokens of context; 0 = the model's training context */
    int32_t n_batch;     /* most tokens evaluated per internal step; 0 = 512 */
    int n_threads;       /* 0 = all cores */
    yan_kv_type kv_type; /* default f16 */
} yan_context_params;

YAN_API yan_context_params yan_context_params_default(void);

/* Memory a context would take (KV cache + scratch), before creating it. */
YAN_API uint64_t yan_context_bytes(const yan_model *m, const yan_context_params *p);

/* A context holds the KV cache and scratch of one sequence. It must not
 * outlive its model. Not thread-safe: one thread uses a context at a time
 * (it runs its own worker threads inside yan_eval). */
YAN_API yan_status yan_context_new(yan_model *m, const yan_context_params *p, yan_context **out);
YAN_API void yan_context_free(yan_context *ctx);
YAN_API int32_t yan_context_n_ctx(const yan_context *ctx);
YAN_API int32_t yan_context_n_past(const yan_context *ctx);   /* tokens in the KV cache */
/* Forget the cache from position n_past on (0 = start over). */
YAN_API yan_status yan_context_truncate(yan_context *ctx, int32_t n_past);

/* Evaluate n tokens at positions n_past.. and append them to the cache.
 * Returns YAN_ERR_CONTEXT_FULL (and evaluates nothing) when they do not fit,
 * YAN_ERR_UNSUPPORTED for a model without an output layer (bert).
 * Afterwards yan_logits(ctx, i) gives the logits after token i of this call
 * when all_logits is set, else only i = n - 1 (or -1) is available. */
YAN_API yan_status yan_eval(yan_context *ctx, const yan_token *tokens, size_t n, bool all_logits);
/* Logits (n_vocab floats) after token i of the last yan_eval; -1 = last.
 * NULL when not available. Valid until the next yan_eval. */
YAN_API const float *yan_logits(const yan_context *ctx, int32_t i);

/* How the hidden states of a text's tokens become one embedding; numbered
 * as llama.cpp's llama_pooling_type (GGUF key <arch>.pooling_type). */
typedef enum {
    YAN_POOLING_MODEL = -1, /* the model's own (yan_model_pooling) */
    YAN_POOLING_MEAN = 1,   /* mean over all tokens (BERT's [CLS] and [SEP] included) */
    YAN_POOLING_CLS = 2,    /* the first token's state ([CLS]) */
    YAN_POOLING_LAST = 3,   /* the last token's state (Qwen3-Embedding style decoders) */
} yan_pooling;

/* The model's pooling: <arch>.pooling_type from the file (1 mean, 2 cls,
 * 3 last; 0 "none" counts as mean), MEAN when the file has none. */
YAN_API yan_pooling yan_model_pooling(const yan_model *m);
/* "mean", "cls", "last"; NULL for other values. */
YAN_API const char *yan_pooling_name(yan_pooling p);

/* Embedding of a text: the model's final hidden states (after the output
 * norm; for bert after the last layer's LayerNorm) for tokens[0..n), pooled
 * as the model says (yan_model_pooling) and L2-normalised; n_embd floats
 * into out (cap >= yan_model_n_embd, else YAN_ERR_TOO_SMALL, nothing
 * written). Pass the tokens yan_tokenize gives with YAN_TOKENIZE_ADD_BOS
 * (for bert: [CLS] text [SEP]). The tokens are evaluated from position 0 in
 * this context, in steps of n_batch (bert: in one step; every token attends
 * to all of them): this CLEARS the context's cache (afterwards
 * yan_context_n_past is 0 and no logits are available). Errors: INVALID_ARG
 * (no tokens, an id outside the vocabulary), CONTEXT_FULL (n > n_ctx; the
 * cache is then left as it was), NOMEM. Not thread-safe (it uses the context). */
YAN_API yan_status yan_embed(yan_context *ctx, const yan_token *tokens, size_t n, float *out, size_t cap);
/* yan_embed with another pooling (YAN_POOLING_MODEL = as yan_embed). An
 * unknown pooling value is INVALID_ARG. */
YAN_API yan_status yan_embed_pooled(yan_context *ctx, const yan_token *tokens, size_t n, yan_pooling pooling,
                                    float *out, size_t cap);

/* ----------------------------------------------------------------- sampler */

typedef struct {
    float temperature;        /* 0 = greedy (default 0.8) */
    int32_t top_k;            /* 0 = off (default 40) */
    float top_p;              /* 1 = off (default 0.95) */
    float min_p;              /* 0 = off (default 0.05) */
    float repeat_penalty;     /* 1 = off (default 1.0) */
    int32_t repeat_last_n;    /* tokens of history the penalties see (default 64) */
    float presence_penalty;   /* 0 = off */
    float frequency_penalty;  /* 0 = off */
    uint64_t seed;            /* same seed, same choices */
} yan_sampler_params;

YAN_API yan_sampler_params yan_sampler_params_default(void);

typedef struct yan_sampler yan_sampler;
typedef struct {
    yan_token token;
    float logprob;            /* log-probability under the model's distribution (before sampling filters) */
} yan_token_logprob;

YAN_API yan_status yan_sampler_new(const yan_sampler_params *p, int32_t n_vocab, yan_sampler **out);
YAN_API void yan_sampler_free(yan_sampler *s);
/* Forget the token history (penalties) and reseed. */
YAN_API void yan_sampler_reset(yan_sampler *s, uint64_t seed);
/* Add a token to the history the penalties look at (prompt tokens too). */
YAN_API void yan_sampler_accept(yan_sampler *s, yan_token t);
/* Choose the next token from logits (n_vocab floats; not modified). When top
 * is non-NULL, writes the chosen token's logprob as top[0] followed by the
 * n_top - 1 most likely tokens. The choice is also accepted into the history. */
YAN_API yan_token yan_sampler_sample(yan_sampler *s, const float *logits, yan_token_logprob *top, int n_top);

/* -------------------------------------------------------------- generation */

typedef enum { YAN_FINISH_STOP = 0, YAN_FINISH_LENGTH = 1, YAN_FINISH_ABORTED = 2 } yan_finish_reason;

/* Called with each piece of text as it becomes complete UTF-8 (stop strings
 * already held back). Return false to stop. */
typedef bool (*yan_text_fn)(const char *text, size_t len, void *ud);

typedef struct {
    int32_t max_tokens;         /* 0 = until the context is full */
    const char *const *stop;    /* stop strings (not included in the output) */
    int n_stop;
    bool stop_at_eos;           /* stop at end-of-generation tokens (default true) */
    yan_text_fn on_text;        /* may be NULL */
    void *ud;
} yan_generate_params;

YAN_API yan_generate_params yan_generate_params_default(void);

typedef struct {
    int32_t n_prompt;           /* prompt tokens evaluated */
    int32_t n_generated;
    yan_finish_reason finish;
    double prompt_seconds, generate_seconds;
} yan_generate_result;

/* Evaluate the prompt (appended to what the context holds) and sample until a
 * stop condition. Checks first that prompt + max_tokens fit the context:
 * YAN_ERR_CONTEXT_FULL otherwise, with nothing evaluated. */
YAN_API yan_status yan_generate(yan_context *ctx, yan_sampler *s, const yan_token *prompt, size_t n_prompt,
                                const yan_generate_params *p, yan_generate_result *res);

/* -------------------------------------------------------------------- chat */

typedef struct {
    const char *role;     /* "system", "user", "assistant" */
    const char *content;
} yan_chat_message;

/* Format messages with a chat template: name is a family name ("chatml",
 * "llama2", "llama3", "zephyr", "mistral", "gemma", "phi3") or NULL to use the
 * model's tokenizer.chat_template (recognised by its content). add_assistant
 * appends the assistant turn's opening. Returns bytes written (NUL-terminated),
 * or -(bytes needed); INT64_MIN with yan_last_error() when the template is
 * unknown. */
YAN_API int64_t yan_chat_format(const yan_model *m, const char *name, const yan_chat_message *msgs, size_t n,
                                bool add_assistant, char *buf, size_t cap);
/* The family yan recognises in the model's template ("chatml", ...), or the
 * fallback it uses ("chatml") when unrecognised; *recognised tells which. */
YAN_API const char *yan_chat_template_family(const yan_model *m, bool *recognised);

/* ------------------------------------------------------------------ safety */

/* Content moderation by rules the operator controls: a text file of phrases
 * and small patterns per category (format in data/safety/README.md; the
 * built-in default set is compiled into the library). Text is matched after
 * normalisation: case, full-width forms, accents, styled and compatibility
 * letters, invisible characters; Latin words match whole, CJK as substrings;
 * separators inside words ("k.i.l.l", "k i l l"), repeated letters
 * ("kiiill") and leetspeak (0->o 1->i 3->e 4->a 5->s 7->t @->a $->s, and
 * Cyrillic/Greek look-alikes, only in matches that also hold a real Latin
 * letter) are seen through. Categories are OpenAI's moderation categories. */

typedef enum {
    YAN_MOD_HARASSMENT = 0,
    YAN_MOD_HARASSMENT_THREATENING = 1,
    YAN_MOD_HATE = 2,
    YAN_MOD_HATE_THREATENING = 3,
    YAN_MOD_ILLICIT = 4,
    YAN_MOD_ILLICIT_VIOLENT = 5,
    YAN_MOD_SELF_HARM = 6,
    YAN_MOD_SELF_HARM_INTENT = 7,
    YAN_MOD_SELF_HARM_INSTRUCTIONS = 8,
    YAN_MOD_SEXUAL = 9,
    YAN_MOD_SEXUAL_MINORS = 10,
    YAN_MOD_VIOLENCE = 11,
    YAN_MOD_VIOLENCE_GRAPHIC = 12,
    YAN_MOD_COUNT = 13
} yan_mod_category;

/* OpenAI's name of a category ("harassment/threatening"), NULL when out of range. */
YAN_API const char *yan_mod_category_name(int c);
/* The category with that name (case-insensitive), or -1. */
YAN_API int yan_mod_category_find(const char *name);

typedef struct yan_moderator yan_moderator;

typedef struct {
    const char *rules_path; /* rules file; NULL = rules_text */
    const char *rules_text; /* rules in memory when rules_path is NULL; NULL too = the built-in rules */
    size_t rules_len;       /* bytes of rules_text */
} yan_moderator_params;

YAN_API yan_moderator_params yan_moderator_params_default(void);

/* Load and compile the rules (and the built-in prompt-injection rules). On
 * error *out is NULL and yan_last_error() names the file and line
 * ("rules.txt:12: unknown section 'violance' ..."). The moderator is
 * immutable: any number of threads may use it at once. */
YAN_API yan_status yan_moderator_new(const yan_moderator_params *p, yan_moderator **out);
YAN_API void yan_moderator_free(yan_moderator *m);
YAN_API size_t yan_moderator_n_rules(const yan_moderator *m);
/* The built-in rules text (static; *len may be NULL). */
YAN_API const char *yan_moderator_default_rules(size_t *len);

typedef struct {
    const char *rule;            /* the rule as written (owned by the moderator); NULL = no match */
    const char *source;          /* its file, "<default>" for the built-in rules */
    int32_t line;                /* 1-based line in source */
    yan_mod_category category;   /* the rule's own category */
    float weight;
    uint64_t start, end;         /* matched bytes of the text [start, end) (streams: from the start) */
} yan_mod_match;

typedef struct {
    bool flagged;                          /* any category flagged */
    bool categories[YAN_MOD_COUNT];        /* score >= the category's threshold (and > 0) */
    float scores[YAN_MOD_COUNT];           /* [0, 1]: 1 - prod(1 - weight) over the distinct
                                              rules matched; a parent category (harassment)
                                              takes at least its subcategories' scores */
    yan_mod_match matches[YAN_MOD_COUNT];  /* earliest match per category (or its subcategories) */
    yan_mod_match first;                   /* the explanation: earliest match in a flagged
                                              category, else earliest match at all */
    int32_t n_matched;                     /* distinct rules matched */
} yan_moderation;

/* Moderate len bytes of text (any bytes; invalid UTF-8 counts as separators).
 * Time is linear in len; memory does not grow with len.
 * Thread-safe. Returns YAN_ERR_NOMEM when scratch cannot be allocated. */
YAN_API yan_status yan_moderate(const yan_moderator *m, const char *text, size_t len, yan_moderation *res);

/* Streaming moderation of generated text: feed chunks as they come (split
 * anywhere, even inside a UTF-8 character); a rule that spans chunks is found.
 * Memory is fixed at creation (no text is kept). After each feed, res (may be
 * NULL) holds the result so far, flagged as soon as a rule match is decided: a
 * match ending exactly at the end of the chunk, where the word may go on
 * ("kill" + "er"), is decided by the next feed or by finish.
 * A stream must not outlive its moderator; one thread uses a stream at a time. */
typedef struct yan_moderate_stream yan_moderate_stream;
YAN_API yan_status yan_moderate_stream_new(const yan_moderator *m, yan_moderate_stream **out);
YAN_API void yan_moderate_stream_free(yan_moderate_stream *s);
/* Start over with a new text (keeps the memory). */
YAN_API void yan_moderate_stream_reset(yan_moderate_stream *s);
YAN_API yan_status yan_moderate_stream_feed(yan_moderate_stream *s, const char *text, size_t len,
                                            yan_moderation *res);
/* End of the text; the stream takes no more chunks until reset. */
YAN_API yan_status yan_moderate_stream_finish(yan_moderate_stream *s, yan_moderation *res);

/* Prompt-injection screen: weighted signals summed into a score (at most 1)
 * and compared with a threshold (0.5 in the built-in rules). */
typedef enum {
    YAN_INJ_OVERRIDE = 0,    /* "ignore all previous instructions", "忽略之前的指令" */
    YAN_INJ_PERSONA = 1,     /* "you are now DAN", "act as ... without restrictions" */
    YAN_INJ_REVEAL = 2,      /* "print your system prompt", "输出你的系统提示" */
    YAN_INJ_ROLE_MARKER = 3, /* "<|im_start|>system", "[INST]", "<<SYS>>", "### System:", "system:" at a line start */
    YAN_INJ_ENCODED = 4,     /* a base64 block that decodes to one of the above */
    YAN_INJ_COUNT = 5
} yan_injection_signal;

/* "override", "persona", "reveal", "role_marker", "encoded"; NULL when out of range. */
YAN_API const char *yan_injection_signal_name(int s);

typedef struct {
    float score;                         /* [0, 1] */
    float threshold;
    bool flagged;                        /* score >= threshold */
    uint32_t signals;                    /* bit 1u << yan_injection_signal per signal that fired */
    float signal_scores[YAN_INJ_COUNT];  /* each signal's share of the score */
    char reason[512];                    /* 'override: "ignore all previous instructions"; ...', "" if none */
} yan_injection_result;

/* Screen len bytes of user input. m may be NULL: the built-in rules are then
 * compiled for this call. Thread-safe. */
YAN_API yan_status yan_injection_check(const yan_moderator *m, const char *text, size_t len,
                                       yan_injection_result *res);

/* Write the OpenAI /v1/moderations response for n inputs:
 * {"id": id, "model": "yan-moderation", "results": [{"flagged", "categories",
 * "category_scores", "category_applied_input_types", "injection": {...},
 * "matches": [...]}]}; inj may be NULL (no "injection" objects). Returns the
 * bytes written (NUL-terminated), -(bytes needed including the NUL) when cap
 * is too small (nothing written), INT64_MIN when memory runs out. */
YAN_API int64_t yan_moderation_to_json(const char *id, const yan_moderation *res, const yan_injection_result *inj,
                                       size_t n, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* YAN_H */
