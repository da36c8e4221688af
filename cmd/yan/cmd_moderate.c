/* cmd_moderate.c — `yan moderate`: classify text with the moderation rules
 * (OpenAI's categories) and screen it for prompt injection; prints a table,
 * or the /v1/moderations JSON. --lines moderates each line separately (for
 * measuring false positives on a corpus). Exit status 0 = nothing flagged,
 * 1 = flagged, 2 = usage or error. */
#include "cmd.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan moderate [options] [TEXT... | -f FILE | -]\n\n"
            "Classifies text with the moderation rules (OpenAI's categories: harassment,\n"
            "hate, illicit, self-harm, sexual, violence and their subcategories) and\n"
            "screens it for prompt injection. The text is the arguments joined by spaces,\n"
            "a FILE, or stdin ('-', the default when no text is given).\n\n"
            "  --rules FILE     rules file (default: the built-in rules); errors name the line\n"
            "  --json           print the OpenAI /v1/moderations response\n"
            "  --lines          moderate each line on its own: print the flagged lines and\n"
            "                   a summary with the flag rate\n"
            "  --no-injection   skip the prompt-injection screen\n"
            "  --default-rules  print the built-in rules (a starting point for --rules)\n"
            "  --check          load the rules, print how many there are, and exit\n\n"
            "exit status: 0 nothing flagged, 1 flagged, 2 usage or error\n\n"
            "example: yan moderate --json 'I will kill you'\n");
}

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

/* A one-line excerpt of text[start, end), at most 80 bytes. */
static void put_excerpt(FILE *out, const char *text, size_t len, uint64_t start, uint64_t end) {
    if (start > len) start = len;
    if (end > len || end < start) end = len;
    size_t n = (size_t)(end - start);
    if (n > 80) {
        n = 80;
        while (n > 0 && ((unsigned char)text[start + n] & 0xC0) == 0x80) n--;
    }
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[start + i];
        fputc(c < 0x20 || c == 0x7F ? ' ' : c, out);
    }
    fputc('"', out);
}

static void print_table(const char *text, size_t len, const yan_moderation *r, const yan_injection_result *inj) {
    printf("flagged: %s\n", r->flagged || (inj && inj->flagged) ? "yes" : "no");
    printf("  %-24s %6s  %s\n", "category", "score", "flagged");
    for (int c = 0; c < YAN_MOD_COUNT; c++)
        printf("  %-24s %6.3f  %s\n", yan_mod_category_name(c), (double)r->scores[c], r->categories[c] ? "yes" : "");
    if (r->first.rule) {
        printf("why: ");
        put_excerpt(stdout, text, len, r->first.start, r->first.end);
        printf(" matched rule \"%s\" (%s:%d, %s, weight %.2f)\n", r->first.rule, r->first.source, (int)r->first.line,
               yan_mod_category_name((int)r->first.category), (double)r->first.weight);
    }
    if (inj)
        printf("injection: %s (score %.2f, threshold %.2f)%s%s\n", inj->flagged ? "flagged" : "not flagged",
               (double)inj->score, (double)inj->threshold, inj->reason[0] ? ": " : "", inj->reason);
}

static int print_json(const char *id, const yan_moderation *r, const yan_injection_result *inj, size_t n) {
    int64_t need = yan_moderation_to_json(id, r, inj, n, NULL, 0);
    if (need == INT64_MIN) return cmd_fail("moderate", YAN_ERR_NOMEM) + 1;
    char *buf = malloc((size_t)-need);
    if (!buf || yan_moderation_to_json(id, r, inj, n, buf, (size_t)-need) < 0) {
        free(buf);
        return cmd_fail("moderate", YAN_ERR_NOMEM) + 1;
    }
    puts(buf);
    free(buf);
    return 0;
}

/* One text: table or JSON. */
static int moderate_one(const yan_moderator *m, const char *text, size_t len, bool json, bool injection) {
    yan_moderation r;
    yan_injection_result inj;
    yan_status s = yan_moderate(m, text, len, &r);
    if (!s && injection) s = yan_injection_check(m, text, len, &inj);
    if (s) return cmd_fail("moderate", s) + 1;
    if (json) {
        char id[32];
        snprintf(id, sizeof id, "modr-%016llx", (unsigned long long)fnv1a(text, len));
        int rc = print_json(id, &r, injection ? &inj : NULL, 1);
        if (rc) return rc;
    } else {
        print_table(text, len, &r, injection ? &inj : NULL);
    }
    return r.flagged || (injection && inj.flagged) ? 1 : 0;
}

/* Each line on its own: flagged lines, then "N lines, F flagged (P%)". */
static int moderate_lines(const yan_moderator *m, const char *text, size_t len, bool json, bool injection) {
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++) n_lines += text[i] == '\n';
    if (len && text[len - 1] != '\n') n_lines++;
    yan_moderation *rs = json ? calloc(n_lines + 1, sizeof *rs) : NULL;
    yan_injection_result *is = json && injection ? calloc(n_lines + 1, sizeof *is) : NULL;
    if (json && (!rs || (injection && !is))) {
        free(rs);
        free(is);
        return cmd_fail("moderate", YAN_ERR_NOMEM) + 1;
    }
    size_t flagged = 0, inj_flagged = 0, per_cat[YAN_MOD_COUNT] = {0}, line = 0;
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        size_t j = i;
        while (j < len && text[j] != '\n') j++;
        yan_moderation r;
        yan_injection_result inj = {0};
        yan_status s = yan_moderate(m, text + i, j - i, &r);
        if (!s && injection) s = yan_injection_check(m, text + i, j - i, &inj);
        if (s) {
            rc = cmd_fail("moderate", s) + 1;
            break;
        }
        if (json) {
            rs[line] = r;
            if (is) is[line] = inj;
        }
        line++;
        if (r.flagged || inj.flagged) {
            flagged += r.flagged;
            inj_flagged += inj.flagged;
            for (int c = 0; c < YAN_MOD_COUNT; c++) per_cat[c] += r.categories[c];
            if (!json) {
                printf("%zu:", line);
                for (int c = 0; c < YAN_MOD_COUNT; c++)
                    if (r.categories[c]) printf(" %s", yan_mod_category_name(c));
                if (inj.flagged) printf(" injection");
                printf(" | ");
                if (r.first.rule) {
                    put_excerpt(stdout, text + i, j - i, r.first.start, r.first.end);
                    printf(" (rule \"%s\", line %d) | ", r.first.rule, (int)r.first.line);
                }
                if (inj.flagged) printf("%s | ", inj.reason);
                put_excerpt(stdout, text + i, j - i, 0, j - i);
                putchar('\n');
            }
        }
        i = j + 1;
    }
    if (!rc && json) {
        char id[32];
        snprintf(id, sizeof id, "modr-%016llx", (unsigned long long)fnv1a(text, len));
        rc = print_json(id, rs, is, line);
    } else if (!rc) {
        printf("%zu lines, %zu flagged (%.3f%%)", line, flagged, line ? 100.0 * (double)flagged / (double)line : 0.0);
        for (int c = 0; c < YAN_MOD_COUNT; c++)
            if (per_cat[c]) printf(", %s %zu", yan_mod_category_name(c), per_cat[c]);
        if (injection)
            printf("; injection %zu (%.3f%%)", inj_flagged,
                   line ? 100.0 * (double)inj_flagged / (double)line : 0.0);
        putchar('\n');
    }
    free(rs);
    free(is);
    if (rc) return rc;
    return flagged || inj_flagged ? 1 : 0;
}

int yan_cmd_moderate(int argc, char **argv) {
    const char *rules = NULL, *file = NULL;
    bool json = false, lines = false, injection = true, check = false;
    size_t cap = 0, len = 0;
    char *text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cmd_is_help(a)) { usage(stdout); free(text); return 0; }
        else if (!strcmp(a, "--rules") && i + 1 < argc) rules = argv[++i];
        else if (!strcmp(a, "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--lines")) lines = true;
        else if (!strcmp(a, "--no-injection")) injection = false;
        else if (!strcmp(a, "--check")) check = true;
        else if (!strcmp(a, "--default-rules")) {
            size_t n;
            const char *d = yan_moderator_default_rules(&n);
            fwrite(d, 1, n, stdout);
            free(text);
            return fflush(stdout) ? 2 : 0;
        } else if (!strcmp(a, "-")) file = "-";
        else if (a[0] == '-' && a[1] && !(a[1] == '-' && !a[2])) {
            fprintf(stderr, "yan moderate: unknown option or missing value '%s'\n", a);
            usage(stderr);
            free(text);
            return 2;
        } else {
            size_t n = strlen(a);
            if (len + n + 2 > cap) {
                cap = (len + n + 2) * 2;
                char *t = realloc(text, cap);
                if (!t) { free(text); return cmd_fail("moderate", YAN_ERR_NOMEM) + 1; }
                text = t;
            }
            if (len) text[len++] = ' ';
            memcpy(text + len, a, n);
            len += n;
            text[len] = 0;
        }
    }
    if (text && file) {
        fprintf(stderr, "yan moderate: give TEXT or -f FILE, not both\n");
        free(text);
        return 2;
    }
    yan_moderator_params mp = yan_moderator_params_default();
    mp.rules_path = rules;
    yan_moderator *m;
    yan_status s = yan_moderator_new(&mp, &m);
    if (s) {
        free(text);
        return cmd_fail("cannot load the moderation rules", s) + 1;
    }
    if (check) {
        printf("%s: %zu rules\n", rules ? rules : "<default>", yan_moderator_n_rules(m));
        yan_moderator_free(m);
        free(text);
        return 0;
    }
    if (!text) {
        text = cmd_read_all(file ? file : "-", &len);
        if (!text) {
            yan_moderator_free(m);
            return 2;
        }
    }
    int rc = lines ? moderate_lines(m, text, len, json, injection) : moderate_one(m, text, len, json, injection);
    yan_moderator_free(m);
    free(text);
    if (fflush(stdout) != 0) rc = 2;
    return rc;
}
