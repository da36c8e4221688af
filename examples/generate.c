/* generate.c — text generation with the yan SDK: load a GGUF model, create a
 * context and a sampler, tokenize a prompt and stream the continuation.
 *   cc examples/generate.c $(pkg-config --cflags --libs yan) -o generate
 *   ./generate model.gguf "Once upon a time" 64                          */
#include <yan.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* called with each complete piece of UTF-8 text as it is generated */
static bool print_text(const char *text, size_t len, void *ud) {
    (void)ud;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true; /* false would stop the generation */
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT [N_TOKENS]\n", argv[0]);
        return 2;
    }
    const char *prompt = argv[2];
    int n_tokens = argc > 3 ? atoi(argv[3]) : 64;

    yan_model *model = NULL;
    yan_context *ctx = NULL;
    yan_sampler *sampler = NULL;
    yan_token *ids = NULL;
    size_t n_ids = 0;
    int rc = 1;

    yan_status s = yan_model_load(argv[1], NULL, &model);
    if (s != YAN_OK) goto fail;

    yan_context_params cp = yan_context_params_default();
    cp.n_ctx = 2048;
    if ((s = yan_context_new(model, &cp, &ctx)) != YAN_OK) goto fail;

    yan_sampler_params sp = yan_sampler_params_default();
    sp.temperature = 0.7f;
    sp.seed = 42; /* same seed, same text */
    if ((s = yan_sampler_new(&sp, yan_model_n_vocab(model), &sampler)) != YAN_OK) goto fail;

    s = yan_tokenize_alloc(yan_model_tokenizer(model), prompt, strlen(prompt), YAN_TOKENIZE_ADD_BOS, &ids, &n_ids);
    if (s != YAN_OK) goto fail;

    yan_generate_params gp = yan_generate_params_default();
    gp.max_tokens = n_tokens;
    gp.on_text = print_text;
    yan_generate_result res;
    fputs(prompt, stdout);
    if ((s = yan_generate(ctx, sampler, ids, n_ids, &gp, &res)) != YAN_OK) goto fail;
    printf("\n");
    fprintf(stderr, "%d prompt tokens, %d generated (%.1f tok/s)\n", res.n_prompt, res.n_generated,
            res.generate_seconds > 0 ? res.n_generated / res.generate_seconds : 0.0);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "error: %s: %s\n", yan_status_str(s), yan_last_error());
    yan_free_tokens(ids);
    yan_sampler_free(sampler);
    yan_context_free(ctx);
    yan_model_free(model);
    return rc;
}
