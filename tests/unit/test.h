/* test.h — the unit-test harness: TEST(name) registers a test, CHECK and
 * CHECK_NEAR report file:line and mark the test failed, the runner (runner.c)
 * runs every registered test (or those whose name contains argv[1]) and closes
 * with "N passed, N failed". */
#ifndef YAN_TEST_H
#define YAN_TEST_H
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

typedef void (*yan_test_fn)(void);
void yan_test_register(const char *name, const char *file, yan_test_fn fn);
extern int yan_test_failed_checks; /* checks failed in the running test */
const char *yan_test_data_dir(void); /* YAN_TEST_DATA or "tests/data" */
const char *yan_test_tmp_dir(void);  /* a fresh per-run temporary folder */

#define TEST(name)                                                           \
    static void test_##name(void);                                           \
    __attribute__((constructor)) static void test_reg_##name(void) {         \
        yan_test_register(#name, __FILE__, test_##name);                     \
    }                                                                        \
    static void test_##name(void)

#define CHECK(c)                                                             \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            yan_test_failed_checks++;                                        \
        }                                                                    \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                \
    do {                                                                     \
        double a_ = (double)(a), b_ = (double)(b);                           \
        if (!(fabs(a_ - b_) <= (tol))) {                                     \
            fprintf(stderr, "  %s:%d: CHECK_NEAR failed: %s=%g %s=%g tol=%g\n", \
                    __FILE__, __LINE__, #a, a_, #b, b_, (double)(tol));       \
            yan_test_failed_checks++;                                        \
        }                                                                    \
    } while (0)

/* Boundary-condition marker (SQLite's testcase()): documents the case. */
#define YAN_TESTCASE(x) ((void)(x))
#endif
