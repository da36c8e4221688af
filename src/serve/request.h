/* request.h — parsing and validating the JSON bodies of the OpenAI-style
 * endpoints into plain C structs, and the OpenAI error object.
 *
 * Every field is checked for type and range; a failure fills a yan_api_error
 * (HTTP 400, type invalid_request_error, param = the field's path such as
 * "messages[1].content", a message naming the field and what was expected).
 * Unknown fields are ignored, as OpenAI's own clients send extras. What the
 * parser cannot know (the model's name, the vocabulary size, the context)
 * is checked by the server afterwards.
 *
 * Strings are copied into the caller's arena (valid until it is reset); the
 * cJSON tree is freed before returning. Depends on cJSON and base. Pure and
 * thread-safe; fuzzed by fuzz/fuzz_serve_request.c. */
#ifndef YAN_SERVE_REQUEST_H
#define YAN_SERVE_REQUEST_H

#include "base/base.h"

typedef enum {
    YAN_RQ_CHAT = 0,       /* POST /v1/chat/completions */
    YAN_RQ_COMPLETION = 1, /* POST /v1/completions */
    YAN_RQ_EMBED = 2,      /* POST /v1/embeddings */
    YAN_RQ_TOKENIZE = 3,   /* POST /tokenize */
    YAN_RQ_DETOKENIZE = 4, /* POST /detokenize */
    YAN_RQ_MODERATION = 5, /* POST /v1/moderations */
} yan_rq_kind;

typedef struct {
    int status;          /* HTTP status */
    const char *type;    /* "invalid_request_error", "authentication_error", ... (static) */
    const char *code;    /* NULL or a static code string */
    char param[96];      /* "" = null */
    char message[512];
} yan_api_error;

/* Fill e and return YAN_ERR_INVALID_ARG (printf-style message). */
yan_status yan_api_error_set(yan_api_error *e, int status, const char *type, const char *code, const char *param,
                             const char *fmt, ...) YAN_PRINTF(6, 7);
/* Append {"error":{"message","type","param","code"}} to out. */
bool yan_api_error_json(const yan_api_error *e, yan_buf *out);

#define YAN_RQ_MAX_STOP 4       /* stop strings (OpenAI's limit) */
#define YAN_RQ_MAX_STOP_LEN 256 /* bytes per stop string */
#define YAN_RQ_MAX_N 16         /* choices (n) x prompts */
#define YAN_RQ_MAX_INPUTS 2048  /* embedding / moderation inputs */
#define YAN_RQ_MAX_TOP_LOGPROBS 20

typedef struct {
    yan_rq_kind kind;
    const char *model;            /* NULL when absent */
    bool stream, include_usage;
    int32_t max_tokens;           /* -1 = not given */
    int32_t n;                    /* choices per prompt (1..16) */
    int32_t logprobs;             /* -1 = off; else alternatives per token (chat: top_logprobs 0..20; completions 0..5) */
    bool has_temperature, has_top_p, has_top_k, has_min_p, has_repeat_penalty, has_seed;
    float temperature, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
    int32_t top_k;
    uint64_t seed;
    const char *stop[YAN_RQ_MAX_STOP];
    int n_stop;
    bool json_mode;               /* response_format {"type":"json_object"} */
    bool echo;                    /* completions: the prompt is part of the text */
    bool ignore_eos;              /* llama-server's extension: generate past end-of-generation tokens */
    const char *user;

    /* chat */
    yan_chat_message *msgs;
    size_t n_msgs;

    /* completion prompts, embedding / moderation / tokenize inputs: either
     * texts or token arrays */
    const char **texts;
    size_t *text_lens;
    const yan_token **toks;
    int32_t *tok_lens;
    int32_t n_inputs;
    bool inputs_are_tokens;

    /* embeddings */
    bool base64;
    int32_t dimensions;           /* 0 = not given */

    /* tokenize */
    bool add_special, parse_special, with_pieces;
} yan_api_req;

/* Parse body[0..len) for the endpoint. On error returns YAN_ERR_INVALID_ARG
 * with *err filled (status 400); *out is then unspecified. Allocations come
 * from a (NOMEM gives status 500). */
yan_status yan_api_parse(yan_rq_kind kind, const char *body, size_t len, yan_arena *a, yan_api_req *out,
                         yan_api_error *err);

#endif /* YAN_SERVE_REQUEST_H */
