/* load_hf.c — vocabulary loader for Hugging Face tokenizer.json files with a
 * byte-level "BPE" model (GPT-2, Llama 3, Qwen, ... style).
 *
 * Supported, everything else is YAN_ERR_UNSUPPORTED naming the part:
 *  - model: type "BPE" (or no type with vocab + merges), vocab {token: id} in
 *    the GPT-2 byte alphabet, merges as "a b" strings or ["a", "b"] pairs,
 *    ignore_merges, byte_fallback; no continuing_subword_prefix /
 *    end_of_word_suffix;
 *  - normalizer: null, NFC, or a Sequence of only NFC (-> t->nfc);
 *  - pre_tokenizer: ByteLevel (use_regex true, add_prefix_space false) ->
 *    gpt2; or Sequence [Split {pattern {Regex P}, behavior Isolated, not
 *    inverted}, ByteLevel {use_regex false}] -> yan_pre_from_regex(P);
 *  - the vocabulary must be byte-level (ByteLevel pre_tokenizer or decoder);
 *  - added_tokens: plain text, special -> CONTROL else USER_DEFINED; an added
 *    token's id overrides a vocab entry with the same id;
 *  - post_processor TemplateProcessing (also inside a Sequence): a special
 *    token first in "single" -> add_bos (and its id is BOS), last -> add_eos.
 * Special ids: from well-known added-token texts (<|endoftext|> -> EOS and
 * PAD, <|im_end|>/<|eot_id|> -> EOT, <|begin_of_text|>/<s> -> BOS, ...), then
 * overridden by a sibling tokenizer_config.json when one exists (bos_token,
 * eos_token, pad_token, unk_token, add_bos_token, add_eos_token).
 * Token ids must be below (entries + 65536) so hostile files cannot make us
 * allocate for huge sparse ids. Does not call yan_tok_finalize. */
#include "base/json.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok.h"

#include <stdlib.h>

#define HF_ID_SLACK 65536

typedef struct {
    yan_tokenizer *t;
    const char *path;
    uint8_t *tmp; /* unbyte scratch */
    size_t tmp_cap;
} hf;

static const char *jtype(const yan_json *v) {
    static const char *const names[] = {"null", "bool", "number", "string", "array", "object"};
    return v ? names[v->type] : "missing";
}

/* ,"type": string of an object, or "" */
static const char *type_of(const yan_json *o, size_t *n) {
    const char *s = yan_json_str(yan_json_get(o, "type"), n);
    if (!s) { *n = 0; return ""; }
    return s;
}

static bool type_is(const yan_json *o, const char *lit) { return yan_json_str_eq(yan_json_get(o, "type"), lit); }

static bool get_bool(const yan_json *o, const char *key, bool def) {
    bool b;
    return yan_json_bool(yan_json_get(o, key), &b) ? b : def;
}

static yan_status unsupported_part(const hf *h, const char *part, const yan_json *o) {
    size_t n;
    const char *ty = type_of(o, &n);
    return yan_fail(YAN_ERR_UNSUPPORTED, "%s: %s of type '%.*s' is not supported", h->path, part, (int)(n > 64 ? 64 : n), ty);
}

/* -------------------------------------------------------- pipeline parts */

static yan_status check_normalizer(hf *h, const yan_json *n) {
    if (!n || n->type == YAN_JSON_NULL) return YAN_OK;
    if (type_is(n, "NFC")) { h->t->nfc = true; return YAN_OK; }
    if (type_is(n, "Sequence")) {
        const yan_json *list = yan_json_get(n, "normalizers");
        if (!yan_json_is(list, YAN_JSON_ARRAY)) return yan_fail(YAN_ERR_FORMAT, "%s: normalizer Sequence without a normalizers array", h->path);
        for (size_t i = 0; i < yan_json_len(list); i++) {
            const yan_json *e = yan_json_at(list, i);
            if (!type_is(e, "NFC")) return unsupported_part(h, "normalizer", e);
            h->t->nfc = true;
        }
        return YAN_OK;
    }
    return unsupported_part(h, "normalizer", n);
}

static yan_status unknown_split(hf *h, const char *why) {
    return yan_fail(YAN_ERR_UNSUPPORTED, "%s: pre_tokenizer %s; the built-in pre-tokenizers are: %s", h->path, why, yan_pre_names());
}

/* Sets *byte_level when the vocabulary is in the GPT-2 byte alphabet. */
static yan_status check_pre(hf *h, const yan_json *p, bool *byte_level) {
    if (!p || p->type == YAN_JSON_NULL) return YAN_OK; /* decided by the decoder; pre chosen later */
    if (type_is(p, "ByteLevel")) {
        if (get_bool(p, "add_prefix_space", false)) return unknown_split(h, "ByteLevel with add_prefix_space is not supported");
        if (!get_bool(p, "use_regex", true)) return unknown_split(h, "ByteLevel without a regex splits nothing");
        h->t->pre = YAN_PRE_GPT2;
        *byte_level = true;
        return YAN_OK;
    }
    if (!type_is(p, "Sequence")) return unsupported_part(h, "pre_tokenizer", p);
    const yan_json *list = yan_json_get(p, "pretokenizers");
    if (!yan_json_is(list, YAN_JSON_ARRAY)) return yan_fail(YAN_ERR_FORMAT, "%s: pre_tokenizer Sequence without a pretokenizers array", h->path);
    size_t n = yan_json_len(list);
    if (n == 1 && type_is(yan_json_at(list, 0), "ByteLevel")) return check_pre(h, yan_json_at(list, 0), byte_level);
    if (n != 2 || !type_is(yan_json_at(list, 0), "Split") || !type_is(yan_json_at(list, 1), "ByteLevel"))
        return unknown_split(h, "Sequence is not [Split, ByteLevel]");
    const yan_json *split = yan_json_at(list, 0), *bl = yan_json_at(list, 1);
    if (get_bool(bl, "use_regex", true)) return unknown_split(h, "Sequence [Split, ByteLevel with use_regex] is not supported");
    if (get_bool(bl, "add_prefix_space", false)) return unknown_split(h, "ByteLevel with add_prefix_space is not supported");
    if (!yan_json_str_eq(yan_json_get(split, "behavior"), "Isolated") || get_bool(split, "invert", false))
        return unknown_split(h, "Split must have behavior Isolated and invert false");
    size_t rl;
    const char *re = yan_json_str(yan_json_get(yan_json_get(split, "pattern"), "Regex"), &rl);
    if (!re) return unknown_split(h, "Split pattern is not a {\"Regex\": ...}");
    int pre = yan_pre_from_regex(re, rl);
    if (pre < 0) {
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: pre_tokenizer regex '%.*s%s' is not one of the built-in pre-tokenizers (%s)",
                        h->path, (int)(rl > 160 ? 160 : rl), re, rl > 160 ? "..." : "", yan_pre_names());
    }
    h->t->pre = pre;
    *byte_level = true;
    return YAN_OK;
}

/* --------------------------------------------------------------- helpers */

static yan_status unbyte(hf *h, const char *s, size_t n, const uint8_t **out, size_t *on) {
    if (n > h->tmp_cap) {
        size_t nc = n < 256 ? 256 : n;
        uint8_t *p = yan_realloc(h->tmp, nc);
        if (!p) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", h->path);
        h->tmp = p;
        h->tmp_cap = nc;
    }
    long r = yan_gpt2_unbyte(s, n, h->tmp);
    if (r < 0) return YAN_ERR_FORMAT; /* caller words the message */
    *out = h->tmp;
    *on = (size_t)r;
    return YAN_OK;
}

static int32_t lookup_text(hf *h, const char *s, size_t n) {
    const uint8_t *b;
    size_t bn;
    if (unbyte(h, s, n, &b, &bn) != YAN_OK) return -1;
    return yan_tok_lookup(h->t, b, bn);
}

/* Id of a special/added token by its text (exact, plain text first). */
static int32_t find_added(hf *h, const yan_json *added, const char *s, size_t n) {
    for (size_t i = 0; i < yan_json_len(added); i++) {
        const yan_json *a = yan_json_at(added, i);
        size_t cn;
        const char *c = yan_json_str(yan_json_get(a, "content"), &cn);
        int64_t id;
        if (c && cn == n && memcmp(c, s, n) == 0 && yan_json_int(yan_json_get(a, "id"), &id)) return (int32_t)id;
    }
    return lookup_text(h, s, n);
}

static void set_special_if_unset(yan_tokenizer *t, int which, int32_t id) {
    if (t->special[which] < 0) t->special[which] = id;
}

static void guess_specials(hf *h, const yan_json *added) {
    static const struct { const char *text; int which; } known[] = {
        {"<|begin_of_text|>", YAN_SPECIAL_BOS}, {"<s>", YAN_SPECIAL_BOS}, {"<|startoftext|>", YAN_SPECIAL_BOS},
        {"<|end_of_text|>", YAN_SPECIAL_EOS},   {"</s>", YAN_SPECIAL_EOS}, {"<|endoftext|>", YAN_SPECIAL_EOS},
        {"<|endoftext|>", YAN_SPECIAL_PAD},     {"<pad>", YAN_SPECIAL_PAD}, {"<|finetune_right_pad_id|>", YAN_SPECIAL_PAD},
        {"<|im_end|>", YAN_SPECIAL_EOT},        {"<|eot_id|>", YAN_SPECIAL_EOT}, {"<|end|>", YAN_SPECIAL_EOT},
        {"<unk>", YAN_SPECIAL_UNK},             {"[UNK]", YAN_SPECIAL_UNK},
        {"[CLS]", YAN_SPECIAL_CLS},             {"[SEP]", YAN_SPECIAL_SEP}, {"[MASK]", YAN_SPECIAL_MASK},
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        for (size_t i = 0; i < yan_json_len(added); i++) {
            const yan_json *a = yan_json_at(added, i);
            int64_t id;
            if (yan_json_str_eq(yan_json_get(a, "content"), known[k].text) && yan_json_int(yan_json_get(a, "id"), &id)) {
                set_special_if_unset(h->t, known[k].which, (int32_t)id);
                break;
            }
        }
    }
}

/* post_processor TemplateProcessing: BOS/EOS from the "single" template. */
static void read_template(hf *h, const yan_json *pp) {
    if (type_is(pp, "Sequence")) {
        const yan_json *list = yan_json_get(pp, "processors");
        for (size_t i = 0; i < yan_json_len(list); i++) read_template(h, yan_json_at(list, i));
        return;
    }
    if (!type_is(pp, "TemplateProcessing")) return;
    const yan_json *single = yan_json_get(pp, "single");
    size_t n = yan_json_len(single);
    if (!yan_json_is(single, YAN_JSON_ARRAY) || n == 0) return;
    const yan_json *specials = yan_json_get(pp, "special_tokens");
    for (int end = 0; end < 2; end++) {
        const yan_json *item = yan_json_at(single, end ? n - 1 : 0);
        const yan_json *sp = yan_json_get(item, "SpecialToken");
        size_t tl;
        const char *text = yan_json_str(yan_json_get(sp, "id"), &tl);
        if (!text) continue;
        int64_t id = -1;
        const yan_json *ids = yan_json_get(yan_json_get_n(specials, text, tl), "ids");
        if (!yan_json_int(yan_json_at(ids, 0), &id)) id = -1;
        if (end) {
            h->t->add_eos = true;
            if (id >= 0) set_special_if_unset(h->t, YAN_SPECIAL_EOS, (int32_t)id);
        } else {
            h->t->add_bos = true;
            if (id >= 0) h->t->special[YAN_SPECIAL_BOS] = (int32_t)id;
        }
    }
}

/* tokenizer_config.json next to the file, if any. */
static yan_status read_config(hf *h, const yan_json *added) {
    const char *slash = strrchr(h->path, '/');
    size_t dl = slash ? (size_t)(slash - h->path) + 1 : 0;
    yan_buf p = {0};
    yan_buf_append(&p, h->path, dl);
    yan_buf_puts(&p, "tokenizer_config.json");
    if (p.oom) { yan_buf_free(&p); return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", h->path); }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (yan_read_file(p.data, &buf, &len) != YAN_OK) { /* optional */
        yan_error_clear();
        yan_buf_free(&p);
        return YAN_OK;
    }
    yan_arena a;
    yan_arena_init(&a, 64 * 1024);
    yan_json *root = NULL;
    yan_status st = yan_json_parse((const char *)buf, len, &a, &root);
    if (st == YAN_OK) {
        static const struct { const char *key; int which; } keys[] = {
            {"bos_token", YAN_SPECIAL_BOS}, {"eos_token", YAN_SPECIAL_EOS},
            {"pad_token", YAN_SPECIAL_PAD}, {"unk_token", YAN_SPECIAL_UNK},
        };
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const yan_json *v = yan_json_get(root, keys[k].key);
            if (yan_json_is(v, YAN_JSON_OBJECT)) v = yan_json_get(v, "content");
            size_t n;
            const char *s = yan_json_str(v, &n);
            if (yan_json_typeof(v) == YAN_JSON_NULL && v) h->t->special[keys[k].which] = -1;
            if (!s) continue;
            int32_t id = find_added(h, added, s, n);
            if (id >= 0) h->t->special[keys[k].which] = id;
        }
        bool b;
        if (yan_json_bool(yan_json_get(root, "add_bos_token"), &b)) h->t->add_bos = b;
        if (yan_json_bool(yan_json_get(root, "add_eos_token"), &b)) h->t->add_eos = b;
    } else {
        st = yan_fail(YAN_ERR_FORMAT, "%s: %s", p.data, yan_last_error());
    }
    yan_arena_free(&a);
    yan_free(buf);
    yan_buf_free(&p);
    return st;
}

/* ------------------------------------------------------------------ load */

static yan_status load(hf *h, const yan_json *root) {
    yan_tokenizer *t = h->t;
    yan_status st;
    if (!yan_json_is(root, YAN_JSON_OBJECT)) return yan_fail(YAN_ERR_FORMAT, "%s: not a tokenizer.json (top level is %s)", h->path, jtype(root));
    const yan_json *model = yan_json_get(root, "model");
    if (!yan_json_is(model, YAN_JSON_OBJECT)) return yan_fail(YAN_ERR_FORMAT, "%s: no \"model\" object", h->path);
    const yan_json *vocab = yan_json_get(model, "vocab"), *merges = yan_json_get(model, "merges");
    if (yan_json_get(model, "type") ? !type_is(model, "BPE") : !merges) return unsupported_part(h, "model", model);
    if (!yan_json_is(vocab, YAN_JSON_OBJECT)) return yan_fail(YAN_ERR_FORMAT, "%s: model.vocab is %s, expected an object", h->path, jtype(vocab));
    if (!yan_json_is(merges, YAN_JSON_ARRAY)) return yan_fail(YAN_ERR_FORMAT, "%s: model.merges is %s, expected an array", h->path, jtype(merges));
    size_t n;
    if (yan_json_str(yan_json_get(model, "continuing_subword_prefix"), &n) && n)
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: model.continuing_subword_prefix is not supported", h->path);
    if (yan_json_str(yan_json_get(model, "end_of_word_suffix"), &n) && n)
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: model.end_of_word_suffix is not supported", h->path);
    t->kind = YAN_TOK_BPE;
    t->merge_mode = YAN_MERGE_PAIRS;
    t->ignore_merges = get_bool(model, "ignore_merges", false);
    t->byte_fallback = get_bool(model, "byte_fallback", false);

    if ((st = check_normalizer(h, yan_json_get(root, "normalizer")))) return st;
    bool byte_level = false;
    if ((st = check_pre(h, yan_json_get(root, "pre_tokenizer"), &byte_level))) return st;
    const yan_json *dec = yan_json_get(root, "decoder");
    if (type_is(dec, "ByteLevel")) byte_level = true;
    if (!byte_level)
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: only byte-level BPE tokenizer.json files are supported (no ByteLevel pre_tokenizer or decoder)", h->path);
    if (t->pre < 0) t->pre = YAN_PRE_GPT2; /* ByteLevel decoder only: GPT-2 style */

    /* ---- ids: bound them before anything is allocated */
    const yan_json *added = yan_json_get(root, "added_tokens");
    if (added && !yan_json_is(added, YAN_JSON_ARRAY) && added->type != YAN_JSON_NULL)
        return yan_fail(YAN_ERR_FORMAT, "%s: added_tokens is %s, expected an array", h->path, jtype(added));
    size_t n_added = yan_json_len(added), n_vocab = yan_json_len(vocab);
    int64_t id_limit = (int64_t)(n_added + n_vocab) + HF_ID_SLACK;
    uint8_t *is_added = yan_calloc((size_t)id_limit, 1);
    if (!is_added) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", h->path);

    /* ---- added tokens first (they override vocab ids) */
    st = YAN_OK;
    for (size_t i = 0; st == YAN_OK && i < n_added; i++) {
        const yan_json *a = yan_json_at(added, i);
        int64_t id;
        size_t cl;
        const char *c = yan_json_str(yan_json_get(a, "content"), &cl);
        if (!c || !yan_json_int(yan_json_get(a, "id"), &id)) {
            st = yan_fail(YAN_ERR_FORMAT, "%s: added_tokens[%zu] needs an integer \"id\" and a string \"content\"", h->path, i);
            break;
        }
        if (id < 0 || id >= id_limit) {
            st = yan_fail(YAN_ERR_FORMAT, "%s: added_tokens[%zu] id %lld is out of range (0..%lld)", h->path, i, (long long)id, (long long)id_limit - 1);
            break;
        }
        if (is_added[id]) {
            st = yan_fail(YAN_ERR_FORMAT, "%s: added_tokens[%zu]: duplicate id %lld", h->path, i, (long long)id);
            break;
        }
        is_added[id] = 1;
        bool special = get_bool(a, "special", false);
        st = yan_tok_set(t, (int32_t)id, c, cl, special ? YAN_TT_CONTROL : YAN_TT_USER_DEFINED, 0.0f);
    }

    /* ---- vocab */
    for (size_t i = 0; st == YAN_OK && i < n_vocab; i++) {
        const yan_json_member *m = &vocab->u.members[i];
        int64_t id;
        if (!yan_json_int(&m->value, &id) || id < 0 || id >= id_limit) {
            st = yan_fail(YAN_ERR_FORMAT, "%s: model.vocab[\"%.*s\"] is not a token id in 0..%lld", h->path,
                          (int)(m->key_len > 64 ? 64 : m->key_len), m->key, (long long)id_limit - 1);
            break;
        }
        if (is_added[id]) continue;
        const uint8_t *b;
        size_t bn;
        st = unbyte(h, m->key, m->key_len, &b, &bn);
        if (st == YAN_ERR_FORMAT)
            st = yan_fail(YAN_ERR_FORMAT, "%s: model.vocab token \"%.*s\" (id %lld) is not in the GPT-2 byte alphabet", h->path,
                          (int)(m->key_len > 64 ? 64 : m->key_len), m->key, (long long)id);
        if (st == YAN_OK) st = yan_tok_set(t, (int32_t)id, b, bn, YAN_TT_NORMAL, 0.0f);
    }
    yan_free(is_added);
    if (st) return st;

    /* ---- merges */
    if ((st = yan_tok_index(t)) != YAN_OK) return st;
    for (size_t r = 0; r < yan_json_len(merges); r++) {
        const yan_json *m = yan_json_at(merges, r);
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (m->type == YAN_JSON_STRING) {
            const char *sp = m->n > 1 ? memchr(m->u.str + 1, ' ', m->n - 1) : NULL;
            if (sp) {
                a = m->u.str;
                la = (size_t)(sp - a);
                b = sp + 1;
                lb = m->n - la - 1;
            }
        } else if (m->type == YAN_JSON_ARRAY && m->n == 2) {
            a = yan_json_str(&m->u.items[0], &la);
            b = yan_json_str(&m->u.items[1], &lb);
        }
        if (!a || !b)
            return yan_fail(YAN_ERR_FORMAT, "%s: model.merges[%zu] is not \"a b\" or [\"a\", \"b\"]", h->path, r);
        int32_t ia = lookup_text(h, a, la), ib = lookup_text(h, b, lb);
        if (ia < 0 || ib < 0) {
            const char *bad = ia < 0 ? a : b;
            size_t bl = ia < 0 ? la : lb;
            return yan_fail(YAN_ERR_FORMAT, "%s: model.merges[%zu] names \"%.*s\", which is not in the vocabulary", h->path, r,
                            (int)(bl > 64 ? 64 : bl), bad);
        }
        if ((st = yan_tok_add_merge(t, ia, ib))) return st;
    }

    /* ---- specials and flags */
    guess_specials(h, added);
    read_template(h, yan_json_get(root, "post_processor"));
    return read_config(h, added);
}

yan_status yan_load_hf(yan_tokenizer *t, const uint8_t *buf, size_t len, const char *path) {
    hf h = {t, path ? path : "tokenizer.json", NULL, 0};
    yan_arena a;
    yan_arena_init(&a, 1 << 20);
    yan_json *root = NULL;
    yan_status st = yan_json_parse((const char *)buf, len, &a, &root);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", yan_last_error());
        st = yan_fail(st, "%s: %s", h.path, msg);
    } else {
        st = load(&h, root);
    }
    yan_free(h.tmp);
    yan_arena_free(&a);
    return st;
}
