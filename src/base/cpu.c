/* cpu.c — CPU feature detection (cpuid + xgetbv) for runtime kernel dispatch
 * and the core count. Computed once; the result is read-only afterwards. */
#include "base/base.h"

#include <pthread.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static yan_cpu g_cpu;
static char g_names[256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(1, 0, a, b, c, d);
        bool osxsave = (c >> 27) & 1;
        uint64_t xcr0 = 0;
        if (osxsave) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            xcr0 = ((uint64_t)hi << 32) | lo;
        }
        bool ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xE6) == 0xE6;
        g_cpu.fma = ymm && ((c >> 12) & 1);
        g_cpu.f16c = ymm && ((c >> 29) & 1);
        __cpuid_count(7, 0, a, b, c, d);
        g_cpu.avx2 = ymm && ((b >> 5) & 1);
        g_cpu.avx512f = zmm && ((b >> 16) & 1);
        g_cpu.avx512bw = zmm && ((b >> 30) & 1);
        g_cpu.avx512vl = zmm && ((b >> 31) & 1);
        g_cpu.avx512vbmi = zmm && ((c >> 1) & 1);
        g_cpu.avx512vnni = zmm && ((c >> 11) & 1);
        __cpuid_count(7, 1, a, b, c, d);
        g_cpu.avx512bf16 = zmm && ((a >> 5) & 1);
    }
#endif
    struct { bool on; const char *name; } f[] = {
        {g_cpu.avx512f, "avx512f"}, {g_cpu.avx512bw, "avx512bw"}, {g_cpu.avx512vl, "avx512vl"},
        {g_cpu.avx512vnni, "avx512vnni"}, {g_cpu.avx512bf16, "avx512bf16"}, {g_cpu.avx512vbmi, "avx512vbmi"},
        {g_cpu.avx2, "avx2"}, {g_cpu.fma, "fma"}, {g_cpu.f16c, "f16c"},
    };
    size_t len = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].on) len += (size_t)snprintf(g_names + len, sizeof g_names - len, "%s%s", len ? " " : "", f[i].name);
    if (!len) snprintf(g_names, sizeof g_names, "scalar");
}

const yan_cpu *yan_cpu_get(void) {
    pthread_once(&g_once, detect);
    return &g_cpu;
}

const char *yan_cpu_features(void) {
    pthread_once(&g_once, detect);
    return g_names;
}

int yan_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
