/* runner.c — runs every TEST registered by the tests/unit/test_*.c files (or
 * those whose name contains one of the arguments) and closes with
 * "N passed, N failed". Exit status 1 if any failed. */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name, *file;
    yan_test_fn fn;
} test_entry;

static test_entry g_tests[1024];
static int g_n;
int yan_test_failed_checks;
static char g_tmp[256];

void yan_test_register(const char *name, const char *file, yan_test_fn fn) {
    if (g_n < (int)(sizeof g_tests / sizeof g_tests[0])) g_tests[g_n++] = (test_entry){name, file, fn};
}

const char *yan_test_data_dir(void) {
    const char *d = getenv("YAN_TEST_DATA");
    return d ? d : "tests/data";
}

const char *yan_test_tmp_dir(void) {
    if (!g_tmp[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(g_tmp, sizeof g_tmp, "%s/yan-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(g_tmp)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return g_tmp;
}

static int by_file_then_order(const void *a, const void *b) {
    const test_entry *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : (x < y ? -1 : x > y);
}

int main(int argc, char **argv) {
    qsort(g_tests, (size_t)g_n, sizeof g_tests[0], by_file_then_order);
    int passed = 0, failed = 0;
    for (int i = 0; i < g_n; i++) {
        bool run = argc < 2;
        for (int a = 1; a < argc; a++)
            if (strstr(g_tests[i].name, argv[a]) || strstr(g_tests[i].file, argv[a])) run = true;
        if (!run) continue;
        yan_test_failed_checks = 0;
        g_tests[i].fn();
        if (yan_test_failed_checks) {
            printf("FAIL %s (%s)\n", g_tests[i].name, g_tests[i].file);
            failed++;
        } else {
            printf("ok   %s\n", g_tests[i].name);
            passed++;
        }
        fflush(stdout);
    }
    if (g_tmp[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
