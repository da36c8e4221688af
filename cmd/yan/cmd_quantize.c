/* cmd_quantize.c — `yan quantize IN OUT TYPE`: rewrite a GGUF model with its
 * weights in another type (yan_model_quantize), with a progress line on
 * stderr and a size summary on stdout. */
#include "cmd.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan quantize IN.gguf OUT.gguf TYPE [--threads N] [--quiet]\n\n"
            "Writes a copy of a GGUF model with its weight matrices converted to TYPE\n"
            "(from f32, f16, bf16 or an already quantized type). The output loads in\n"
            "llama.cpp. Norms, biases and other 1-D tensors are kept as they are.\n\n"
            "TYPE:\n"
            "  q8_0            8.5 bits/weight, nearly lossless\n"
            "  q4_0            4.5 bits/weight (output.weight in q6_K, as llama.cpp)\n"
            "  q4_K_M          4.8 bits/weight: q4_K, with output and about half of the\n"
            "                  attn_v / ffn_down tensors in q6_K (llama.cpp's mix)\n"
            "  q4_K_S, q4_K    q4_K, a few early layers in q5_K\n"
            "  q5_K_M, q5_K_S, q5_K, q6_K\n"
            "  f16, bf16, f32  plain floating point\n\n"
            "  --threads N     threads (default: all cores)\n"
            "  --quiet         no progress line\n\n"
            "example: yan quantize tinyllama-f16.gguf tinyllama-q4_K_M.gguf q4_K_M\n");
}

typedef struct {
    int last;      /* last percentage printed */
    bool tty;
} progress_state;

static bool on_progress(float fraction, void *ud) {
    progress_state *ps = ud;
    int pct = (int)(fraction * 100.0f + 0.5f);
    if (!ps->tty) pct -= pct % 10; /* a log: one line per 10% */
    if (pct != ps->last) {
        ps->last = pct;
        fprintf(stderr, ps->tty ? "\rquantizing: %3d%%" : "quantizing: %3d%%\n", pct);
        if (ps->tty && pct == 100) fputc('\n', stderr);
    }
    return true;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int yan_cmd_quantize(int argc, char **argv) {
    const char *pos[3];
    int np = 0, threads = 0;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cmd_is_help(a)) { usage(stdout); return 0; }
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) threads = cmd_int(a, i + 1 < argc ? argv[++i] : NULL);
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan quantize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (np < 3) pos[np++] = a;
        else {
            fprintf(stderr, "yan quantize: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (np != 3) {
        fprintf(stderr, "yan quantize: IN, OUT and TYPE are required\n");
        usage(stderr);
        return 2;
    }
    progress_state ps = {.last = -1, .tty = isatty(2) != 0};
    double t0 = now_s();
    yan_status s = yan_model_quantize(pos[0], pos[1], pos[2], threads, quiet ? NULL : on_progress, &ps);
    if (s) {
        if (!quiet && ps.tty && ps.last >= 0) fputc('\n', stderr);
        return cmd_fail("quantize", s);
    }
    struct stat si, so;
    if (stat(pos[0], &si) == 0 && stat(pos[1], &so) == 0)
        printf("%s: %.2f MiB -> %s (%s): %.2f MiB in %.1f s\n", pos[0], (double)si.st_size / 1048576.0, pos[1], pos[2],
               (double)so.st_size / 1048576.0, now_s() - t0);
    return fflush(stdout) ? 1 : 0;
}
