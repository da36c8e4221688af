/* cmd_lora.c — `yan lora merge BASE ADAPTER -o OUT [--scale S]`: write a
 * model with a LoRA adapter merged into its weights (yan_lora_merge). */
#include "cmd.h"

static void usage(FILE *f) {
    fprintf(f, "usage: yan lora merge BASE.gguf ADAPTER.gguf -o OUT.gguf [--scale S]\n"
               "  Writes BASE with the adapter merged into its weights (W + S * alpha / r * B A),\n"
               "  each matrix kept in its own type (quantized types re-encoded).\n"
               "  --scale S   adapter scale (default 1)\n");
}

int yan_cmd_lora(int argc, char **argv) {
    if (argc < 2 || cmd_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "merge") != 0) {
        fprintf(stderr, "yan lora: unknown subcommand '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    const char *base = NULL, *adapter = NULL, *out = NULL;
    float scale = 1.0f;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) { usage(stdout); return 0; }
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && v) { out = v; i++; }
        else if (!strcmp(a, "--scale")) { scale = (float)cmd_float(a, v); i++; }
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan lora merge: unknown option '%s' (or it needs a value)\n", a);
            return 2;
        } else if (!base) base = a;
        else if (!adapter) adapter = a;
        else {
            fprintf(stderr, "yan lora merge: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!base || !adapter || !out) {
        usage(stderr);
        return 2;
    }
    yan_status s = yan_lora_merge(base, adapter, scale, out);
    if (s) return cmd_fail("lora merge", s);
    fprintf(stderr, "yan lora merge: wrote %s\n", out);
    return 0;
}
