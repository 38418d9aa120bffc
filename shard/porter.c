/* shard/porter.c — the Porter stemmer exactly as rouge_score applies it.
 *
 * rouge_score 0.1.2 (tokenizers.py) builds `nltk.stem.porter.PorterStemmer()`
 * with NLTK's default mode, NLTK_EXTENSIONS: Porter's 1980 algorithm plus
 * Martin Porter's later changes and NLTK's own (irregular-form pool, "ies"/"ied"
 * on 4-letter words, y->i only after a consonant, "bli"->"ble", "fulli",
 * "logi", two-letter *o).  This file re-implements that algorithm in C from
 * its rules (not a translation of any code), keeping NLTK's rule-list
 * semantics: in each step the FIRST rule whose suffix matches decides — if its
 * condition fails the word is left unchanged for that step (no fall-through
 * to a shorter suffix).  rouge_score only stems tokens longer than 3
 * characters; that rule lives in the callers (folio_stem_hash, jobs/rouge.c).
 *
 * Words are lowercase ASCII; a word with any byte outside [a-z] other than
 * digits is stemmed on its bytes as NLTK would (digits count as consonants),
 * but words with non-ASCII bytes are copied unchanged (documented in
 * shard.h). */
#include "shard.h"

#include <string.h>

/* Working word: letters in b[0..k). Capacity is the input length + slack for
 * the few rules that grow a word ("at" -> "ate", "bl" -> "ble", "iz" -> "ize",
 * "" -> "e", "ied" -> "ie"); none grows it past the original length + 1 except
 * through suffixes that were removed first, so n + 4 bytes always suffice. */
typedef struct {
    char *b;
    size_t k;
} pword_t;

static bool is_vowel_letter(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

/* Consonant test on b[0..] at i: 'y' is a consonant at the start of the word
 * or after a vowel (NLTK's _is_consonant / _consonant_flags). */
static bool cons(const char *b, size_t i)
{
    if (is_vowel_letter(b[i])) return false;
    if (b[i] != 'y') return true;
    /* run of y's ending at i: the first y of the run is a consonant iff it
     * starts the word or follows a vowel; then they alternate. */
    size_t j = i;
    while (j > 0 && b[j] == 'y') j--;
    bool flag; /* consonant flag of b[j] */
    size_t first_y;
    if (b[j] == 'y') { /* j == 0: word starts with y's */
        flag = true;
        first_y = 0;
    } else {
        flag = !is_vowel_letter(b[j]); /* b[j] is a non-y letter: its own consonant flag */
        first_y = j + 1;
        flag = !flag; /* the first y after b[j] */
    }
    /* flags alternate along the run of y's */
    size_t steps = i - first_y;
    return (steps % 2 == 0) ? flag : !flag;
}

/* Measure m of b[0..len): the number of VC sequences. */
static int measure(const char *b, size_t len)
{
    int m = 0;
    bool prev_vowel = false;
    for (size_t i = 0; i < len; i++) {
        bool c = cons(b, i);
        if (c && prev_vowel) m++;
        prev_vowel = !c;
    }
    return m;
}

static bool contains_vowel(const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!cons(b, i)) return true;
    return false;
}

static bool ends_double_cons(const char *b, size_t len)
{
    return len >= 2 && b[len - 1] == b[len - 2] && cons(b, len - 1);
}

/* *o: ends consonant-vowel-consonant, the last not w/x/y; NLTK extension: a
 * two-letter word vowel-consonant also counts (any consonant). */
static bool ends_cvc(const char *b, size_t len)
{
    if (len >= 3 && cons(b, len - 3) && !cons(b, len - 2) && cons(b, len - 1) &&
        b[len - 1] != 'w' && b[len - 1] != 'x' && b[len - 1] != 'y')
        return true;
    return len == 2 && !cons(b, 0) && cons(b, 1);
}

static bool ends_with(const pword_t *w, const char *suf, size_t *stem_len)
{
    size_t n = strlen(suf);
    if (n > w->k || memcmp(w->b + w->k - n, suf, n) != 0) return false;
    *stem_len = w->k - n;
    return true;
}

static void set_suffix(pword_t *w, size_t stem_len, const char *rep)
{
    size_t n = strlen(rep);
    memcpy(w->b + stem_len, rep, n);
    w->k = stem_len + n;
}

typedef enum { COND_NONE, COND_M_GT0, COND_M_GT1, COND_ION, COND_LOGI } cond_t;
typedef struct { const char *suf, *rep; cond_t cond; } rule_t;

static bool cond_ok(const pword_t *w, size_t stem_len, cond_t c)
{
    switch (c) {
    case COND_NONE: return true;
    case COND_M_GT0: return measure(w->b, stem_len) > 0;
    case COND_M_GT1: return measure(w->b, stem_len) > 1;
    case COND_ION:
        return measure(w->b, stem_len) > 1 && stem_len > 0 &&
               (w->b[stem_len - 1] == 's' || w->b[stem_len - 1] == 't');
    case COND_LOGI: /* NLTK: measure of the word minus "ogi" (stem + "l") > 0 */
        return measure(w->b, stem_len + 1) > 0;
    }
    return false;
}

/* First matching suffix decides (NLTK's _apply_rule_list). */
static void apply_rules(pword_t *w, const rule_t *rules, size_t n_rules)
{
    for (size_t r = 0; r < n_rules; r++) {
        size_t stem_len;
        if (!ends_with(w, rules[r].suf, &stem_len)) continue;
        if (cond_ok(w, stem_len, rules[r].cond)) set_suffix(w, stem_len, rules[r].rep);
        return;
    }
}

static void step1a(pword_t *w)
{
    size_t s;
    if (w->k == 4 && ends_with(w, "ies", &s)) { /* NLTK: "ties" -> "tie" */
        set_suffix(w, s, "ie");
        return;
    }
    static const rule_t rules[] = {
        {"sses", "ss", COND_NONE}, {"ies", "i", COND_NONE}, {"ss", "ss", COND_NONE}, {"s", "", COND_NONE},
    };
    apply_rules(w, rules, sizeof rules / sizeof rules[0]);
}

static void step1b(pword_t *w)
{
    size_t s;
    if (ends_with(w, "ied", &s)) { /* NLTK extension */
        set_suffix(w, s, w->k == 4 ? "ie" : "i");
        return;
    }
    if (ends_with(w, "eed", &s)) {
        if (measure(w->b, s) > 0) set_suffix(w, s, "ee");
        return;
    }
    bool ok = false;
    if (ends_with(w, "ed", &s) && contains_vowel(w->b, s)) ok = true;
    else if (ends_with(w, "ing", &s) && contains_vowel(w->b, s)) ok = true;
    if (!ok) return;
    w->k = s; /* the intermediate stem */
    if (ends_with(w, "at", &s)) { set_suffix(w, s, "ate"); return; }
    if (ends_with(w, "bl", &s)) { set_suffix(w, s, "ble"); return; }
    if (ends_with(w, "iz", &s)) { set_suffix(w, s, "ize"); return; }
    if (ends_double_cons(w->b, w->k)) {
        char last = w->b[w->k - 1];
        if (last != 'l' && last != 's' && last != 'z') w->k -= 1; /* hopp -> hop */
        return;
    }
    if (measure(w->b, w->k) == 1 && ends_cvc(w->b, w->k)) {
        w->b[w->k++] = 'e'; /* fil -> file */
    }
}

static void step1c(pword_t *w)
{
    /* NLTK: y -> i when preceded by a consonant that is not the whole stem */
    if (w->k >= 1 && w->b[w->k - 1] == 'y') {
        size_t s = w->k - 1;
        if (s > 1 && cons(w->b, s - 1)) w->b[s] = 'i';
    }
}

static void step2(pword_t *w)
{
    size_t s;
    /* NLTK: "alli" with m>0 -> "al", then step 2 again */
    if (ends_with(w, "alli", &s) && measure(w->b, s) > 0) {
        set_suffix(w, s, "al");
        step2(w);
        return;
    }
    static const rule_t rules[] = {
        {"ational", "ate", COND_M_GT0}, {"tional", "tion", COND_M_GT0}, {"enci", "ence", COND_M_GT0},
        {"anci", "ance", COND_M_GT0},   {"izer", "ize", COND_M_GT0},    {"bli", "ble", COND_M_GT0},
        {"alli", "al", COND_M_GT0},     {"entli", "ent", COND_M_GT0},   {"eli", "e", COND_M_GT0},
        {"ousli", "ous", COND_M_GT0},   {"ization", "ize", COND_M_GT0}, {"ation", "ate", COND_M_GT0},
        {"ator", "ate", COND_M_GT0},    {"alism", "al", COND_M_GT0},    {"iveness", "ive", COND_M_GT0},
        {"fulness", "ful", COND_M_GT0}, {"ousness", "ous", COND_M_GT0}, {"aliti", "al", COND_M_GT0},
        {"iviti", "ive", COND_M_GT0},   {"biliti", "ble", COND_M_GT0},  {"fulli", "ful", COND_M_GT0},
        {"logi", "log", COND_LOGI},
    };
    apply_rules(w, rules, sizeof rules / sizeof rules[0]);
}

static void step3(pword_t *w)
{
    static const rule_t rules[] = {
        {"icate", "ic", COND_M_GT0}, {"ative", "", COND_M_GT0}, {"alize", "al", COND_M_GT0},
        {"iciti", "ic", COND_M_GT0}, {"ical", "ic", COND_M_GT0}, {"ful", "", COND_M_GT0},
        {"ness", "", COND_M_GT0},
    };
    apply_rules(w, rules, sizeof rules / sizeof rules[0]);
}

static void step4(pword_t *w)
{
    static const rule_t rules[] = {
        {"al", "", COND_M_GT1},   {"ance", "", COND_M_GT1}, {"ence", "", COND_M_GT1}, {"er", "", COND_M_GT1},
        {"ic", "", COND_M_GT1},   {"able", "", COND_M_GT1}, {"ible", "", COND_M_GT1}, {"ant", "", COND_M_GT1},
        {"ement", "", COND_M_GT1}, {"ment", "", COND_M_GT1}, {"ent", "", COND_M_GT1}, {"ion", "", COND_ION},
        {"ou", "", COND_M_GT1},   {"ism", "", COND_M_GT1},  {"ate", "", COND_M_GT1},  {"iti", "", COND_M_GT1},
        {"ous", "", COND_M_GT1},  {"ive", "", COND_M_GT1},  {"ize", "", COND_M_GT1},
    };
    apply_rules(w, rules, sizeof rules / sizeof rules[0]);
}

static void step5a(pword_t *w)
{
    if (w->k >= 1 && w->b[w->k - 1] == 'e') {
        size_t s = w->k - 1;
        int m = measure(w->b, s);
        if (m > 1 || (m == 1 && !ends_cvc(w->b, s))) w->k = s;
    }
}

static void step5b(pword_t *w)
{
    /* "ll" -> "l" when the measure of the word minus its last letter is > 1 */
    if (w->k >= 2 && w->b[w->k - 1] == 'l' && w->b[w->k - 2] == 'l' && measure(w->b, w->k - 1) > 1)
        w->k -= 1;
}

/* NLTK_EXTENSIONS' irregular forms, looked up before any rule. */
static const char *irregular(const char *w, size_t n)
{
    static const char *const pool[][2] = {
        {"sky", "sky"},       {"skies", "sky"},   {"dying", "die"},    {"lying", "lie"},
        {"tying", "tie"},     {"news", "news"},   {"innings", "inning"}, {"inning", "inning"},
        {"outings", "outing"}, {"outing", "outing"}, {"cannings", "canning"}, {"canning", "canning"},
        {"howe", "howe"},     {"proceed", "proceed"}, {"exceed", "exceed"}, {"succeed", "succeed"},
    };
    for (size_t i = 0; i < sizeof pool / sizeof pool[0]; i++)
        if (strlen(pool[i][0]) == n && memcmp(pool[i][0], w, n) == 0) return pool[i][1];
    return NULL;
}

size_t folio_porter_stem(const char *w, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)w[i] >= 0x80) { /* non-ASCII: unchanged */
            memcpy(out, w, n);
            out[n] = '\0';
            return n;
        }
    }
    const char *irr = irregular(w, n);
    if (irr) {
        size_t m = strlen(irr);
        memcpy(out, irr, m);
        out[m] = '\0';
        return m;
    }
    if (n <= 2) {
        memcpy(out, w, n);
        out[n] = '\0';
        return n;
    }
    /* Steps shrink the word before any rule grows it by more than one byte
     * (a growth always follows removal of a longer suffix), except step1b's
     * "" -> "e" which adds one byte after removing "ed"/"ing"; so the word
     * never exceeds n bytes and out (capacity n + 1) is a safe work area. */
    memcpy(out, w, n);
    pword_t pw = {out, n};
    step1a(&pw);
    step1b(&pw);
    step1c(&pw);
    step2(&pw);
    step3(&pw);
    step4(&pw);
    step5a(&pw);
    step5b(&pw);
    out[pw.k] = '\0';
    return pw.k;
}
