/* rewrite.c — retrieval for answers (contract in answer.h): the question
 * alone, or RAG-Fusion — the LLM writes N other phrasings of the question,
 * each phrasing and the question are searched and the lists are fused by
 * reciprocal rank (yan_kb_fuse) — and an optional LLM rerank that orders the
 * candidates by the model's probability of answering "yes" to "does this
 * passage help answer the question?". Depends on kb.h and answer.h. */
#include "rag/answer.h"

#include <ctype.h>
#include <stdlib.h>
#include <strings.h>

#define REWRITE_MAX_BYTES 300 /* longest rewrite kept */
#define RERANK_MAX 30         /* candidates the judge reads at most */

/* -------------------------------------------------------------- rewrites */

static bool push_query(yan_rag_result *r, const char *q, size_t n) {
    char **nq = yan_realloc(r->queries, ((size_t)r->n_queries + 1) * sizeof *nq);
    if (!nq) return false;
    r->queries = nq;
    char *s = yan_strndup(q, n);
    if (!s) return false;
    r->queries[r->n_queries++] = s;
    return true;
}

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int l = yan_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (cp < 0) return false;
        i += (size_t)l;
    }
    return true;
}

/* Same words ignoring case, spaces and punctuation. */
static bool same_query(const char *a, size_t na, const char *b) {
    size_t i = 0, j = 0, nb = strlen(b);
    for (;;) {
        while (i < na && !isalnum((unsigned char)a[i]) && (unsigned char)a[i] < 0x80) i++;
        while (j < nb && !isalnum((unsigned char)b[j]) && (unsigned char)b[j] < 0x80) j++;
        if (i == na || j == nb) return i == na && j == nb;
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[j])) return false;
        i++, j++;
    }
}

int yan_rag_parse_rewrites(const char *text, size_t len, int max, yan_rag_result *r) {
    int added = 0;
    size_t i = 0;
    while (i < len && added < max) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        const char *s = text + i;
        size_t n = e - i;
        i = e + 1;
        /* trim; drop numbering ("1.", "2)", "(3)", "Q4:"), bullets and quotes */
        while (n && isspace((unsigned char)s[0])) s++, n--;
        while (n && isspace((unsigned char)s[n - 1])) n--;
        if (n >= 2 && (s[0] == 'Q' || s[0] == 'q') && isdigit((unsigned char)s[1])) s++, n--;
        if (n && s[0] == '(') s++, n--;
        size_t d = 0;
        while (d < n && isdigit((unsigned char)s[d])) d++;
        if (d && d < n && (s[d] == '.' || s[d] == ')' || s[d] == ':')) s += d + 1, n -= d + 1;
        while (n && (s[0] == '-' || s[0] == '*' || s[0] == '#' || s[0] == '>' || isspace((unsigned char)s[0])))
            s++, n--;
        if (n >= 3 && !memcmp(s, "\xe2\x80\xa2", 3)) s += 3, n -= 3; /* "•" */
        while (n && isspace((unsigned char)s[0])) s++, n--;
        while (n >= 2 && (s[0] == '"' || s[0] == '\'' || s[0] == '`') && s[n - 1] == s[0]) s++, n -= 2;
        if (n >= 3 && !memcmp(s, "\xe2\x80\x9c", 3)) { /* “...” */
            s += 3, n -= 3;
            if (n >= 3 && !memcmp(s + n - 3, "\xe2\x80\x9d", 3)) n -= 3;
        }
        if (n >= 6 && !strncasecmp(s, "query:", 6)) {
            s += 6, n -= 6;
            while (n && isspace((unsigned char)s[0])) s++, n--;
        }
        if (n < 3) continue;
        if (s[n - 1] == ':') continue; /* "Here are three queries:" */
        if (!strncasecmp(s, "here are", 8) || !strncasecmp(s, "sure", 4) || !strncasecmp(s, "alternative", 11))
            continue;
        if (n > REWRITE_MAX_BYTES || !valid_utf8(s, n)) continue;
        bool any_word = false;
        for (size_t q = 0; q < n && !any_word; q++)
            any_word = isalpha((unsigned char)s[q]) || (unsigned char)s[q] >= 0x80;
        if (!any_word) continue;
        bool dup = false;
        for (int q = 0; q < r->n_queries && !dup; q++) dup = same_query(s, n, r->queries[q]);
        if (dup) continue;
        if (!push_query(r, s, n)) break;
        added++;
    }
    return added;
}

/* Ask the LLM for n rewrites of the question; appended to r->queries. A
 * model that fails or writes nothing usable leaves the question alone
 * (logged), which is not an error. */
static yan_status write_rewrites(const yan_rag_llm *llm, const char *question, int n, yan_rag_result *r) {
    yan_buf user = {0}, out = {0};
    yan_buf_printf(&user,
                   "Write %d different search queries that would find documents answering the question below. "
                   "Use other words and synonyms than the question does. Write one query per line, with no "
                   "numbering and no other text.\n\nQuestion: %s",
                   n, question);
    if (user.oom) {
        yan_buf_free(&user);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    yan_chat_message msgs[2] = {
        {"system", "You rewrite questions into search queries for a document search engine."},
        {"user", user.data},
    };
    int32_t max = 40 * n + 16;
    if (max > 512) max = 512;
    yan_status st = llm->chat(llm->ud, msgs, 2, max, 0.0f, NULL, NULL, &out, NULL, NULL);
    if (st == YAN_ERR_NOMEM) {
        yan_buf_free(&user);
        yan_buf_free(&out);
        return st;
    }
    if (st) yan_log(YAN_LOG_WARN, "rag: the model could not write rewrites (%s: %s); searching the question alone",
                    yan_status_str(st), yan_last_error());
    int got = st ? 0 : yan_rag_parse_rewrites(out.data ? out.data : "", out.len, n, r);
    if (!st && got == 0) yan_log(YAN_LOG_WARN, "rag: the model wrote no usable rewrite; searching the question alone");
    yan_buf_free(&user);
    yan_buf_free(&out);
    return YAN_OK;
}

/* ---------------------------------------------------------------- rerank */

typedef struct {
    float score;
    int pos;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->pos - y->pos; /* stable: the retrieval order breaks ties */
}

static yan_status rerank(const yan_rag_llm *llm, const char *question, yan_kb_hit *hits, int n) {
    if (n > RERANK_MAX) n = RERANK_MAX;
    ranked *rk = yan_calloc((size_t)n + 1, sizeof *rk);
    yan_kb_hit *tmp = yan_calloc((size_t)n + 1, sizeof *tmp);
    if (!rk || !tmp) {
        yan_free(rk);
        yan_free(tmp);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    yan_status st = YAN_OK;
    for (int i = 0; i < n; i++) {
        yan_buf u = {0};
        const char *t = hits[i].text ? hits[i].text : "";
        size_t tl = strlen(t);
        if (tl > 1200) tl = 1200;
        yan_buf_printf(&u, "Question: %s\n\nPassage:\n", question);
        yan_buf_append(&u, t, tl);
        yan_buf_puts(&u, "\n\nDoes the passage help answer the question? Answer yes or no.");
        if (u.oom) {
            yan_buf_free(&u);
            st = yan_fail(YAN_ERR_NOMEM, "out of memory");
            break;
        }
        yan_chat_message msgs[2] = {
            {"system", "You judge whether a passage is relevant to a question. Answer only yes or no."},
            {"user", u.data},
        };
        float py = 0;
        st = llm->judge(llm->ud, msgs, 2, &py);
        yan_buf_free(&u);
        if (st) break;
        rk[i] = (ranked){py, i};
    }
    if (!st) {
        qsort(rk, (size_t)n, sizeof *rk, cmp_ranked);
        for (int i = 0; i < n; i++) {
            tmp[i] = hits[rk[i].pos];
            tmp[i].score = rk[i].score;
        }
        memcpy(hits, tmp, (size_t)n * sizeof *hits);
    }
    yan_free(rk);
    yan_free(tmp);
    return st;
}

/* ------------------------------------------------------------- retrieve */

yan_status yan_rag_retrieve(yan_kb *kb, const yan_rag_llm *llm, const char *question, const yan_rag_params *p,
                            yan_rag_result *r, yan_kb_hit **hits, int *n_hits) {
    *hits = NULL;
    *n_hits = 0;
    int k = p->k > 0 ? p->k : 5;
    int cand = p->candidates > 0 ? p->candidates : (4 * k > 20 ? 4 * k : 20);
    if (cand < k) cand = k;
    int first = r->n_queries;
    if (!push_query(r, question, strlen(question))) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    yan_status st = YAN_OK;
    int fusion = p->fusion > YAN_RAG_MAX_FUSION ? YAN_RAG_MAX_FUSION : p->fusion;
    if (fusion > 0 && llm && llm->chat && (st = write_rewrites(llm, question, fusion, r))) return st;
    int nq = r->n_queries - first;
    yan_kb_hit **lists = yan_calloc((size_t)nq, sizeof *lists);
    int *lens = yan_calloc((size_t)nq, sizeof *lens);
    if (!lists || !lens) {
        st = yan_fail(YAN_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int q = 0; q < nq; q++)
        if ((st = yan_kb_search(kb, r->queries[first + q], p->mode, cand, &lists[q], &lens[q]))) goto out;
    if (nq == 1) {
        *hits = lists[0], *n_hits = lens[0];
        lists[0] = NULL, lens[0] = 0;
    } else if ((st = yan_kb_fuse((yan_kb_hit *const *)lists, lens, nq, cand, hits, n_hits))) {
        goto out;
    }
    if (p->rerank && llm && llm->judge && *n_hits > 1 && (st = rerank(llm, question, *hits, *n_hits))) goto out;
out:
    for (int q = 0; lists && q < nq; q++) yan_kb_hits_free(lists[q], lens[q]);
    yan_free(lists);
    yan_free(lens);
    if (st) {
        yan_kb_hits_free(*hits, *n_hits);
        *hits = NULL;
        *n_hits = 0;
    }
    return st;
}
