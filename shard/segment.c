/* shard/segment.c — sentences and sections of a tokenized document.
 *
 * Works on lines that hold tokens ("token lines"); lines without tokens
 * (blank, "=====", "* * *") are separators.  Three passes:
 *
 *  1. Lines: trimmed span, tokens, and shape flags (how the line ends and
 *     starts, all-caps, enumeration label), plus "strong" headings that need
 *     no context: markdown "#", legal keywords ("SECTION 1.", "SEC. 2.",
 *     "ARTICLE IV", "Chapter 3", "TITLE I--"), and "§ 101".
 *     The document mode is decided here: line-oriented ("one sentence or one
 *     paragraph per line": of >= 3 token lines, >= 80% end with sentence
 *     punctuation or ':', or >= 25% are longer than 100 bytes, which wrapped
 *     text never is; e.g. pubmed, sciqa, most SPDX texts) or wrapped prose
 *     (billsum, plain-text licences), where a single newline is just space.
 *     Wrapped prose is the safe default: punctuation still splits there.
 *  2. "Weak" headings that need their neighbours: numbered ("1. Introduction",
 *     "2.1 Methods", "IV. Remedies"; not a wrapped paragraph opener such as
 *     "4. Redistribution. You may ..."), all-caps lines that are not part of
 *     an all-caps paragraph, and short title-like lines standing alone (blank
 *     line after them in prose; in line mode a new paragraph may follow; or
 *     a much longer capitalized line follows).  A keyword heading wrapped
 *     onto further all-caps lines keeps them.  Runs of three or more
 *     same-kind headings with nothing between (tables of contents, "#"
 *     comment blocks) are demoted to ordinary lines.
 *  3. Sentences: a boundary between two tokens when
 *       - a separator line (blank line) lies between them;
 *       - either token's line is a heading (a heading is its own sentence,
 *         never split inside);
 *       - line mode and a newline lies between them;
 *       - the next line starts with an enumeration label ("(1)", "(a)", "•")
 *         and the line before ends with ':' ';' or sentence punctuation;
 *       - sentence punctuation (. ! ? …) followed by white space and a token
 *         that can start a sentence (capital, digit, or an opening quote or
 *         bracket; in a document without capitals any word), unless the '.'
 *         ends an abbreviation ("U.S.C.", "e.g.", "et al.", "Fig.", "No.",
 *         initials "J."), an enumeration label at the start of a line or
 *         sentence ("1. The ...", "Sec. 1. Short title"), or a weak
 *         abbreviation ("Inc.", "etc.") before a non-capital;
 *       - citation numbers glued to a period ("the hand.1,2 However");
 *       - a sentence reached FOLIO_SENT_MAX_TOKENS: cut at the last ',', ';',
 *         ':' or line break in its second half, else right there.
 *     Spans: from the first token (or the first non-space byte of its line
 *     when the token opens the line, so "(1)", "§", "#" are kept) to the last
 *     token plus the punctuation glued to it ('.', '."', '.)').
 *
 * Sections: each heading line starts a section; text before the first
 * heading is section 0 (level 0, untitled) when it has sentences.  Levels are
 * ranked: distinct heading kinds present in the document, ordered
 * (markdown depth, PART/TITLE > ARTICLE/CHAPTER > SECTION/§ > numbered by
 * depth / all-caps / title-like), become 1, 2, 3...  Sections partition the
 * sentences and the bytes of the text.
 */
#define _GNU_SOURCE /* memrchr */
#include "shard_internal.h"

#include <stdlib.h>
#include <string.h>

enum {
    LF_END_TERM = 1 << 0,   /* ends with . ! ? … (closers skipped)   */
    LF_END_CONT = 1 << 1,   /* ends with , or ;                       */
    LF_END_COLON = 1 << 2,  /* ends with :                            */
    LF_CAPS = 1 << 3,       /* >= 3 capitals, no lower-case ASCII    */
    LF_UPPER = 1 << 4,      /* first token starts with a capital     */
    LF_LOWER = 1 << 5,      /* first token starts lower-case         */
    LF_ENUM = 1 << 6,       /* starts with "(1)", "a)", "•", "-", "*" */
    LF_SEP_BEFORE = 1 << 7, /* a separator line (or the start) precedes */
    LF_SEP_AFTER = 1 << 8,  /* a separator line (or the end) follows  */
    LF_STRONG = 1 << 9,     /* heading by pass 1                      */
    LF_TITLE = 1 << 10,     /* heading by the title-like rule         */
    LF_HCONT = 1 << 11,     /* second line of a wrapped heading       */
    LF_MD = 1 << 12,        /* markdown heading: title after the #s   */
};

typedef struct {
    uint32_t start, end;          /* trimmed line bytes                  */
    uint32_t tok_begin, tok_end;  /* tokens on the line                  */
    uint16_t flags;
    uint8_t raw;                  /* heading raw level, 0 = not a heading */
} line_t;

typedef struct {
    const char *text;
    const unsigned char *s;
    size_t len;
    const folio_span_t *tok;
    uint32_t n_tok;
    line_t *lines;
    uint32_t n_lines;
    bool line_mode;
    bool has_upper;
} seg_t;

/* ------------------------------------------------------------ helpers */

static inline bool is_ws_at(const unsigned char *s, size_t len, size_t i, size_t *sz)
{
    if (s[i] < 0x80) { *sz = 1; return folio_shard_ascii_class[s[i]] & SHARD_C_SPACE; }
    return shard_is_space_cp(shard_decode(s, len, i, sz));
}

static inline bool is_space_byte(unsigned char c) { return c < 0x80 && (folio_shard_ascii_class[c] & SHARD_C_SPACE); }
static inline bool is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static inline bool is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Closing characters that may follow sentence punctuation: " ' ) ] ` and
 * the curly quotes ” ’ » (UTF-8 E2 80 9D / E2 80 99, C2 BB). Returns the byte
 * length of a closer ending at s[i-1] (0 if none), for backward scans. */
static size_t closer_before(const unsigned char *s, size_t lo, size_t i)
{
    if (i <= lo) return 0;
    unsigned char c = s[i - 1];
    if (c == '"' || c == '\'' || c == ')' || c == ']' || c == '`' || c == '*' || c == '_') return 1;
    if (i >= lo + 3 && s[i - 3] == 0xE2 && s[i - 2] == 0x80 && (c == 0x9D || c == 0x99)) return 3;
    if (i >= lo + 2 && s[i - 2] == 0xC2 && c == 0xBB) return 2;
    return 0;
}

/* Lower-cased copy of token t into buf (cap 32); returns its length or 0 if
 * longer. */
static size_t tok_lower(const seg_t *g, uint32_t t, char *buf)
{
    size_t n = g->tok[t].end - g->tok[t].start;
    if (n >= 32) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = g->s[g->tok[t].start + i];
        buf[i] = (char)(is_upper(c) ? c + 32 : c);
    }
    buf[n] = 0;
    return n;
}

/* Binary search in a sorted, NULL-terminated word list. */
static bool in_list(const char *w, const char *const *list, size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(w, list[mid]);
        if (c == 0) return true;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return false;
}
#define IN_LIST(w, list) in_list(w, list, sizeof list / sizeof list[0] - 1)

/* Abbreviations after which "." never ends a sentence (sorted). */
static const char *const ABBR_STRONG[] = {
    "al", "amend", "approx", "apr", "art", "arts", "assn", "aug", "av", "ave", "blvd", "ca", "capt", "cf",
    "ch", "chap", "cit", "cl", "col", "dec", "dept", "div", "dr", "e.g", "ed", "eds", "eq", "eqs", "est",
    "et", "feb", "fig", "figs", "gen", "hon", "i.e", "ibid", "id", "incl", "jan", "jul", "jun", "lt", "mar",
    "max", "min", "mr", "mrs", "ms", "mt", "no", "nos", "nov", "oct", "op", "p", "para", "paras", "pp",
    "prof", "pt", "pub", "ref", "refs", "rep", "resp", "rev", "sec", "secs", "sen", "sep", "sept", "seq",
    "sgt", "st", "stat", "subch", "subsec", "supp", "tab", "u.s", "u.s.c", "univ", "v", "viz", "vol", "vols",
    "vs",
    NULL,
};
/* Abbreviations that often end a sentence too: split only before a capital
 * (sorted). */
static const char *const ABBR_WEAK[] = {
    "bros", "co", "corp", "esq", "etc", "gmbh", "inc", "jr", "llc", "ltd", "plc", "sr",
    NULL,
};

/* Heading keywords (upper-case or title-case as written) and raw levels. */
#define KW(up, ti, raw) { up, ti, sizeof(up) - 1, raw }
static const struct { const char *upper, *title; size_t len; uint8_t raw; } KEYWORDS[] = {
    KW("TITLE", "Title", 11),
    KW("DIVISION", "Division", 11),
    KW("SUBTITLE", "Subtitle", 12),
    KW("PART", "Part", 13),
    KW("SUBPART", "Subpart", 14),
    KW("ARTICLE", "Article", 15),
    KW("CHAPTER", "Chapter", 15),
    KW("SUBCHAPTER", "Subchapter", 16),
    KW("SECTION", "Section", 17),
    KW("SEC", "Sec", 17),
    KW("APPENDIX", "Appendix", 11),
    KW("SCHEDULE", "Schedule", 11),
    KW("EXHIBIT", "Exhibit", 11),
    KW("ANNEX", "Annex", 11),
};
#undef KW
#define RAW_SECTION 17
#define RAW_NUMBERED 20 /* + depth */
#define RAW_PLAIN 21    /* all-caps and title-like: like a top-level number */

static bool is_roman(const unsigned char *p, size_t n)
{
    if (n == 0 || n > 7) return false;
    bool up = is_upper(p[0]);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (up ? !is_upper(c) : !is_lower(c)) return false;
        if (!strchr("IVXLCDM", up ? c : c - 32)) return false;
    }
    return true;
}

/* "12", "2.1", "101A": digits with optional dots and one trailing letter;
 * *depth = number of numeric components. */
static bool is_number_label(const unsigned char *p, size_t n, int *depth)
{
    if (n == 0 || !is_digit(p[0])) return false;
    int d = 1, run = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_digit(p[i])) { if (++run > 4) return false; }
        else if (p[i] == '.' && i + 1 < n && is_digit(p[i + 1])) { d++; run = 0; }
        else if (i == n - 1 && (is_upper(p[i]) || is_lower(p[i]))) { /* 101A */ }
        else return false;
    }
    if (depth) *depth = d;
    return true;
}

/* Share of capitalized words among the words of >= 4 ASCII letters of
 * tokens [a, b); 1 when there are none. */
static double cap_ratio(const seg_t *g, uint32_t a, uint32_t b)
{
    int words = 0, caps = 0;
    for (uint32_t t = a; t < b; t++) {
        const unsigned char *p = g->s + g->tok[t].start;
        size_t n = g->tok[t].end - g->tok[t].start;
        if (n < 4) continue;
        bool letters = true;
        for (size_t i = 0; i < n && letters; i++) letters = is_upper(p[i]) || is_lower(p[i]);
        if (!letters) continue;
        words++;
        caps += is_upper(p[0]);
    }
    return words ? (double)caps / words : 1.0;
}

/* ------------------------------------------------------------ pass 1 */

static void line_shape(seg_t *g, line_t *L)
{
    const unsigned char *s = g->s;
    /* ending: skip closers, then look at the last character */
    size_t e = L->end;
    size_t k;
    while ((k = closer_before(s, L->start, e)) != 0) e -= k;
    if (e > L->start) {
        unsigned char c = s[e - 1];
        if (c == '.' || c == '!' || c == '?') L->flags |= LF_END_TERM;
        else if (e >= L->start + 3 && s[e - 3] == 0xE2 && s[e - 2] == 0x80 && c == 0xA6) L->flags |= LF_END_TERM;
        else if (c == ',' || c == ';') L->flags |= LF_END_CONT;
        else if (c == ':') L->flags |= LF_END_COLON;
        else if (c == '-' && e >= L->start + 2 && s[e - 2] == '-') L->flags |= LF_END_COLON; /* "if--" */
        else if (e >= L->start + 3 && s[e - 3] == 0xE2 && s[e - 2] == 0x80 && c == 0x94) L->flags |= LF_END_COLON;
    }
    unsigned char f = s[g->tok[L->tok_begin].start];
    if (is_upper(f)) L->flags |= LF_UPPER;
    else if (is_lower(f)) L->flags |= LF_LOWER;
    /* caps */
    int up = 0, lo = 0;
    for (uint32_t i = L->start; i < L->end; i++) { up += is_upper(s[i]); lo += is_lower(s[i]); }
    if (up >= 3 && lo == 0) L->flags |= LF_CAPS;
    /* enumeration label at the start: "(1)" "(a)" "(iv)" "1)" "a)" bullets */
    const unsigned char *p = s + L->start;
    size_t n = L->end - L->start;
    /* quoted amendments open with quotes: ``(d)(1) / "(a) */
    while (n > 1 && (p[0] == '`' || p[0] == '"' || p[0] == '\'')) { p++; n--; }
    const folio_span_t t0 = g->tok[L->tok_begin];
    size_t tl = t0.end - t0.start;
    size_t off = (size_t)(p - s);
    if (n >= 3 && p[0] == '(' && t0.start == off + 1 && tl <= 4 && t0.end < L->end && s[t0.end] == ')')
        L->flags |= LF_ENUM;
    else if (t0.start == off && tl <= 3 && t0.end < L->end && s[t0.end] == ')')
        L->flags |= LF_ENUM;
    else if (t0.start == off && tl <= 4 && t0.end + 1 < L->end && s[t0.end] == '.' &&
             (s[t0.end + 1] == ' ' || s[t0.end + 1] == '\t') &&
             (is_number_label(s + t0.start, tl, NULL) || is_roman(s + t0.start, tl) || tl == 1))
        L->flags |= LF_ENUM; /* "c. ", "12. ", "iv. " */
    else if (n >= 2 && (p[0] == '-' || p[0] == '*' || p[0] == '+') && (p[1] == ' ' || p[1] == '\t'))
        L->flags |= LF_ENUM;
    else if (n >= 3 && ((p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA2 || p[2] == 0x93 || p[2] == 0x94)) ||
                        (p[0] == 0xC2 && p[1] == 0xB7)))
        L->flags |= LF_ENUM; /* • – — · */
}

/* After the label token: EOL, or punctuation/space then (a capital or an
 * all-caps line).  Returns true when the rest of the line fits a heading. */
static bool label_tail_ok(const seg_t *g, const line_t *L, uint32_t label_tok, bool need_dot)
{
    const unsigned char *s = g->s;
    uint32_t e = g->tok[label_tok].end;
    if (label_tok + 1 >= L->tok_end) {
        /* nothing but punctuation after the label */
        return !need_dot || (e < L->end && s[e] == '.');
    }
    unsigned char c = s[e];
    if (need_dot && c != '.') return false;
    if (!(c == '.' || c == ':' || c == ' ' || c == '\t' || c == '-' || c == ')' || c == 0xE2)) return false;
    unsigned char f = s[g->tok[label_tok + 1].start];
    /* the heading text starts with a capital, a quote or a digit */
    return is_upper(f) || is_digit(f) || (L->flags & LF_CAPS) || s[g->tok[label_tok + 1].start - 1] == '"';
}

static void strong_heading(seg_t *g, line_t *L)
{
    const unsigned char *s = g->s;
    size_t n = L->end - L->start;
    const unsigned char *p = s + L->start;
    uint32_t tb = L->tok_begin, ntok = L->tok_end - L->tok_begin;
    /* markdown ATX heading */
    if (p[0] == '#') {
        size_t k = 0;
        while (k < n && p[k] == '#') k++;
        if (k <= 6 && k < n && (p[k] == ' ' || p[k] == '\t')) {
            L->raw = (uint8_t)(10 * k);
            L->flags |= LF_MD;
            return;
        }
    }
    /* § 101 */
    if (n >= 3 && p[0] == 0xC2 && p[1] == 0xA7 && n <= 150 && g->tok[tb].start <= L->start + 6) {
        const unsigned char *q = s + g->tok[tb].start;
        if (is_number_label(q, g->tok[tb].end - g->tok[tb].start, NULL) && label_tail_ok(g, L, tb, false)) {
            L->raw = RAW_SECTION;
            return;
        }
    }
    /* legal keywords */
    if (ntok >= 2 && g->tok[tb].start == L->start && n <= 200) {
        size_t kl = g->tok[tb].end - g->tok[tb].start;
        for (size_t k = 0; k < sizeof KEYWORDS / sizeof KEYWORDS[0] && kl >= 3 && kl <= 10 && is_upper(p[0]); k++) {
            if (KEYWORDS[k].len != kl || KEYWORDS[k].upper[0] != p[0]) continue;
            bool up = !memcmp(p, KEYWORDS[k].upper, kl);
            bool ti = !up && !memcmp(p, KEYWORDS[k].title, kl);
            if (!up && !ti) continue;
            if (ti && n > 100) return;
            bool is_sec = !strcmp(KEYWORDS[k].upper, "SEC");
            if (is_sec && (kl >= n || p[kl] != '.')) return;
            uint32_t lt = tb + 1;
            const unsigned char *q = s + g->tok[lt].start;
            size_t ql = g->tok[lt].end - g->tok[lt].start;
            bool label = is_number_label(q, ql, NULL) || is_roman(q, ql) || (ql == 1 && is_upper(q[0]));
            if (!label) return;
            /* title-case "Section 5" must be "Section 5." or "Section 5" alone:
             * "Section 1867 of the Act" is prose. */
            if (!label_tail_ok(g, L, lt, ti && lt + 1 < L->tok_end)) return;
            if (L->flags & LF_END_CONT) return;
            L->raw = KEYWORDS[k].raw;
            return;
        }
    }
}

/* ------------------------------------------------------------ pass 2 */

static void weak_heading(seg_t *g, uint32_t li)
{
    line_t *L = &g->lines[li];
    const line_t *P = li > 0 ? &g->lines[li - 1] : NULL;
    const line_t *N = li + 1 < g->n_lines ? &g->lines[li + 1] : NULL;
    const unsigned char *s = g->s;
    size_t n = L->end - L->start;
    uint32_t tb = L->tok_begin, ntok = L->tok_end - L->tok_begin;
    if (L->flags & (LF_END_CONT | LF_END_COLON)) return;
    bool sep_after = (L->flags & LF_SEP_AFTER) != 0;
    bool sep_before = (L->flags & LF_SEP_BEFORE) != 0;
    /* a following line that continues this one (wrapped prose) */
    bool continued = !sep_after && N && (N->flags & LF_LOWER);

    /* numbered: "1. Introduction", "2.1 Methods", "IV. Remedies", "A. Scope" */
    if (g->tok[tb].start == L->start && ntok >= 2 && n <= 80 && ntok <= 11 && !continued) {
        const unsigned char *q = s + g->tok[tb].start;
        size_t ql = g->tok[tb].end - g->tok[tb].start;
        int depth = 1;
        bool num = is_number_label(q, ql, &depth);
        bool rom = !num && ((is_roman(q, ql) && is_upper(q[0])) || (ql == 1 && is_upper(q[0])));
        if (num || rom) {
            uint32_t e = g->tok[tb].end;
            size_t k = e;
            if (k < L->end && (s[k] == '.' || s[k] == ')')) k++;
            bool dot = k > e;
            bool sp = k < L->end && (s[k] == ' ' || s[k] == '\t');
            unsigned char f = s[g->tok[tb + 1].start];
            bool quote = g->tok[tb + 1].start > 0 && (s[g->tok[tb + 1].start - 1] == '"' ||
                                                      s[g->tok[tb + 1].start - 1] == 0x9C);
            if ((dot || (num && depth > 1)) && sp && (is_upper(f) || quote) && (num || dot)) {
                /* wrapped paragraph openers are not headings:
                 * "4. Redistribution. You may reproduce and distribute copies of the" */
                bool ok = sep_after || g->line_mode || cap_ratio(g, tb + 1, L->tok_end) >= 0.6;
                for (uint32_t t = tb + 1; ok && t + 1 < L->tok_end; t++) {
                    uint32_t e = g->tok[t].end;
                    if (e + 1 < g->tok[t + 1].start && s[e] == '.' && is_upper(s[g->tok[t + 1].start])) ok = false;
                }
                if (ok && (L->flags & LF_END_TERM)) {
                    /* "1. Definitions." is a heading, "2. You must give credit." is not */
                    double cr = cap_ratio(g, tb + 1, L->tok_end);
                    ok = (ntok - 1 <= 6 && cr >= 0.5) || (sep_after && cr >= 0.6);
                }
                if (ok) {
                    L->raw = (uint8_t)(RAW_NUMBERED + (depth > 5 ? 5 : depth));
                    return;
                }
            }
        }
    }
    /* all-caps line that is not inside an all-caps paragraph */
    bool word = false; /* a real word, not only "INLINEFORM0" */
    for (uint32_t t = tb; t < L->tok_end && !word; t++) {
        size_t k = g->tok[t].start, e = g->tok[t].end;
        while (k < e && (is_upper(s[k]) || is_lower(s[k]))) k++;
        word = k == e && e - g->tok[t].start >= 2;
    }
    if ((L->flags & LF_CAPS) && word && n <= 100 && ntok <= 12 && s[L->start] != '(') {
        bool caps_before = P && !sep_before && (P->flags & LF_CAPS) && !P->raw;
        /* the last line of a wrapped prose paragraph: "U.S.C. 1002))." */
        bool prose_before = P && !sep_before && !P->raw && !(P->flags & (LF_END_TERM | LF_END_COLON));
        bool caps_after = N && !sep_after && (N->flags & LF_CAPS) && !(N->flags & LF_STRONG);
        if (!caps_before && !caps_after && !prose_before) {
            L->raw = RAW_PLAIN;
            return;
        }
    }
    /* short title-like line standing alone */
    if ((L->flags & LF_UPPER) && !(L->flags & (LF_END_TERM | LF_ENUM)) && n <= 80 && ntok <= 10 &&
        g->tok[tb].start == L->start) {
        /* not right under another heading: "Version 3, 29 June 2007" */
        bool before_ok = sep_before || (P && (P->flags & LF_END_TERM) && !P->raw) ||
                         (g->line_mode && P && !P->raw);
        /* a word first: not "INLINEFORM0", "[leftmargin=4mm]" */
        const unsigned char *q = s + g->tok[tb].start;
        size_t ql = g->tok[tb].end - g->tok[tb].start, k = 0;
        while (k < ql && (is_upper(q[k]) || is_lower(q[k]))) k++;
        if (k < ql || ql < 2) before_ok = false;
        bool after_ok = sep_after || (g->line_mode && N && (N->flags & (LF_UPPER | LF_ENUM | LF_STRONG))) ||
                        /* "Introduction\nSocial media platforms have made ..." */
                        (N && (N->flags & LF_UPPER) && N->end - N->start >= 2 * n + 20);
        if (before_ok && after_ok && cap_ratio(g, tb, L->tok_end) >= 0.5) {
            L->raw = RAW_PLAIN;
            L->flags |= LF_TITLE;
        }
    }
}

/* ------------------------------------------------------------ lines */

static folio_status_t build_lines(seg_t *g)
{
    const unsigned char *s = g->s;
    size_t cap = 64;
    g->lines = malloc(cap * sizeof *g->lines);
    FOLIO_CHECK_ALLOC(g->lines);
    g->n_lines = 0;
    size_t scan = 0;      /* bytes before scan belong to finished lines */
    size_t cur_end = 0;   /* end (the '\n' or len) of the current line  */
    size_t prev_end = 0;
    for (uint32_t t = 0; t < g->n_tok; t++) {
        if (g->n_lines > 0 && g->tok[t].start < cur_end) {
            g->lines[g->n_lines - 1].tok_end = t + 1;
            continue;
        }
        size_t ts = g->tok[t].start;
        const unsigned char *nl = scan < ts ? memrchr(s + scan, '\n', ts - scan) : NULL;
        size_t ls = nl ? (size_t)(nl - s) + 1 : scan;
        const unsigned char *ne = memchr(s + g->tok[t].end, '\n', g->len - g->tok[t].end);
        size_t le = ne ? (size_t)(ne - s) : g->len;
        bool sep = g->n_lines == 0 ||
                   ls > prev_end + 1; /* a whole line lies between the two token lines */
        if (g->n_lines == cap) {
            cap *= 2;
            line_t *p = realloc(g->lines, cap * sizeof *p);
            FOLIO_CHECK_ALLOC(p);
            g->lines = p;
        }
        line_t *L = &g->lines[g->n_lines++];
        memset(L, 0, sizeof *L);
        size_t a = ls, b = le, sz;
        while (a < b && is_ws_at(s, g->len, a, &sz)) a += sz;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r' || s[b - 1] == '\f' ||
                         s[b - 1] == '\v')) b--;
        L->start = (uint32_t)a;
        L->end = (uint32_t)b;
        L->tok_begin = t;
        L->tok_end = t + 1;
        if (sep) L->flags |= LF_SEP_BEFORE;
        if (sep && g->n_lines > 1) g->lines[g->n_lines - 2].flags |= LF_SEP_AFTER;
        prev_end = le;
        cur_end = le;
        scan = le;
    }
    if (g->n_lines) g->lines[g->n_lines - 1].flags |= LF_SEP_AFTER;
    return FOLIO_OK;
}

/* ------------------------------------------------------------ sentences */

/* Is there a sentence boundary between tokens t and t+1 on the same line, or
 * on wrapped lines of one paragraph in prose mode? */
/* Citation numbers glued to the period of the sentence they close, as
 * medical papers write them: "the knee and hand.1,2 However, ..." — token t
 * is the number, white space follows it. */
static bool citation_boundary(const seg_t *g, uint32_t t)
{
    const unsigned char *s = g->s;
    /* the numbers: "1,2", "3-5", "12" (tokens of digits glued by ',' or '-') */
    uint32_t k = t;
    for (;;) {
        for (uint32_t i = g->tok[k].start; i < g->tok[k].end; i++)
            if (!is_digit(s[i]) && s[i] != ',') return false;
        if (k == 0 || g->tok[k - 1].end + 1 != g->tok[k].start) return false;
        unsigned char sep = s[g->tok[k - 1].end];
        if (sep == '.') break;
        if ((sep != ',' && sep != '-') || g->tok[t].end - g->tok[k - 1].start > 16) return false;
        k--;
    }
    if (k == 0) return false;
    const folio_span_t w = g->tok[k - 1];
    if (w.end - w.start < 3) return false;
    for (uint32_t i = w.start; i < w.end; i++)
        if (!is_upper(s[i]) && !is_lower(s[i])) return false;
    char lw[32];
    if (tok_lower(g, k - 1, lw) && (IN_LIST(lw, ABBR_STRONG) || IN_LIST(lw, ABBR_WEAK))) return false;
    unsigned char f = s[g->tok[t + 1].start];
    return is_upper(f) || (!g->has_upper && is_lower(f));
}

static bool punct_boundary(const seg_t *g, uint32_t t, const line_t *L, uint32_t sb)
{
    const unsigned char *s = g->s;
    size_t a = g->tok[t].end, b = g->tok[t + 1].start, i = a, sz;
    /* the gap between the tokens: sentence punctuation, then white space
     * after the last of it ("end. Next", "end.) Next", "end . next") */
    bool term = false, dot_only = true, ws_after = false, all_ws = true;
    size_t last_term = a;
    while (i < b) {
        unsigned char c = s[i];
        bool ws = is_ws_at(s, g->len, i, &sz);
        all_ws = all_ws && ws;
        if (ws) ws_after = term;
        else if (c == '.') { term = true; ws_after = false; last_term = i; }
        else if (c == '!' || c == '?') { term = true; dot_only = false; ws_after = false; last_term = i; }
        else if (c == 0xE2 && i + 2 < b && s[i + 1] == 0x80 && s[i + 2] == 0xA6) {
            term = true; dot_only = false; ws_after = false; last_term = i;
        }
        i += sz;
    }
    if (!term && all_ws && t > 0 && a < b) return citation_boundary(g, t);
    if (!term || !ws_after) return false; /* no punctuation, or no space after it */
    /* "..." is an ellipsis, not an abbreviation dot */
    if (dot_only && last_term >= a + 2 && s[last_term - 1] == '.' && s[last_term - 2] == '.') dot_only = false;
    /* what opens the next sentence */
    unsigned char f = s[b];
    bool opener = false;
    size_t j0 = last_term + 1; /* openers come after the white space: "end.'' and" has closers */
    while (j0 < b && !is_ws_at(s, g->len, j0, &sz)) j0 += sz;
    for (size_t j = j0; j < b; j++) {
        unsigned char c = s[j];
        if (c == '(' || c == '[' || c == '"' || c == '\'' || c == '`' ||
            (c == 0xE2 && j + 2 < b && s[j + 1] == 0x80 && (s[j + 2] == 0x9C || s[j + 2] == 0x98)) ||
            (c == 0xC2 && j + 1 < b && (s[j + 1] == 0xA7 || s[j + 1] == 0xB6)))
            opener = true;
    }
    bool cap = is_upper(f);
    bool starts = cap || is_digit(f) || f >= 0x80 || opener || (!g->has_upper && is_lower(f));
    if (!starts) return false;
    if (!dot_only) return true;

    char w[32];
    size_t wl = tok_lower(g, t, w);
    if (wl) {
        if (IN_LIST(w, ABBR_STRONG)) return false;
        if (IN_LIST(w, ABBR_WEAK)) return cap;
    }
    const unsigned char *p = s + g->tok[t].start;
    size_t n = g->tok[t].end - g->tok[t].start;
    /* dotted abbreviation: "U.S.C", "e.g", "a.m" (letters and dots only) */
    if (n >= 3 && p[1] == '.') {
        bool abbr = true;
        for (size_t k = 0; k < n && abbr; k++) abbr = (k % 2) ? p[k] == '.' : (is_upper(p[k]) || is_lower(p[k]));
        if (abbr) return false;
    }
    /* an initial: "J. Smith" */
    if (n == 1 && is_upper(p[0])) return false;
    /* an enumeration label opening its line or sentence: "1. The", "A. The" */
    bool lab = is_number_label(p, n, NULL) || is_roman(p, n) || n == 1;
    if (lab && (t == L->tok_begin || t == sb)) return false;
    /* a numbered heading-like line that is not a heading (a table of
     * contents entry): "Sec. 1. Short title." */
    if (lab && t > 0 && (t - 1 == L->tok_begin || t - 1 == sb)) {
        char kw[32];
        if (tok_lower(g, t - 1, kw) && (!strcmp(kw, "sec") || !strcmp(kw, "section") || !strcmp(kw, "art") ||
                                        !strcmp(kw, "article") || !strcmp(kw, "chapter") || !strcmp(kw, "part") ||
                                        !strcmp(kw, "title") || !strcmp(kw, "rule")))
            return false;
    }
    return true;
}

/* Does the gap after token t hold a soft break (',', ';', ':' or newline)? */
static bool soft_gap(const seg_t *g, uint32_t t)
{
    for (size_t i = g->tok[t].end; i < g->tok[t + 1].start; i++) {
        unsigned char c = g->s[i];
        if (c == ',' || c == ';' || c == ':' || c == '\n') return true;
    }
    return false;
}

static bool list_break(const seg_t *g, const line_t *L, const line_t *N)
{
    if (!(N->flags & LF_ENUM)) return false;
    if (L->flags & (LF_END_TERM | LF_END_COLON | LF_END_CONT)) return true;
    /* "...; and" / "...; or" before the next item */
    uint32_t t = L->tok_end - 1;
    if (t > 0) { /* the ';' may sit on the line before: "...2007.'';\n and\n (2)" */
        char w[32];
        size_t wl = tok_lower(g, t, w);
        if (wl && (!strcmp(w, "and") || !strcmp(w, "or"))) {
            for (size_t i = g->tok[t - 1].end; i < g->tok[t].start; i++)
                if (g->s[i] == ';') return true;
        }
    }
    return false;
}

static folio_status_t push_sent(folio_doc_t *doc, size_t *cap, uint32_t tb, uint32_t te)
{
    if (doc->n_sents == *cap) {
        size_t nc = *cap + *cap / 2 + 16;
        folio_sentence_t *p = realloc(doc->sents, nc * sizeof *p);
        FOLIO_CHECK_ALLOC(p);
        doc->sents = p;
        *cap = nc;
    }
    folio_sentence_t *S = &doc->sents[doc->n_sents++];
    memset(S, 0, sizeof *S);
    S->tok_begin = tb;
    S->tok_end = te;
    return FOLIO_OK;
}

static folio_status_t split_sentences(seg_t *g, folio_doc_t *doc)
{
    size_t cap = g->n_tok / 16 + 16;
    doc->sents = malloc(cap * sizeof *doc->sents);
    FOLIO_CHECK_ALLOC(doc->sents);
    doc->n_sents = 0;
    uint32_t sb = 0, li = 0;
    uint32_t last_soft = UINT32_MAX;
    for (uint32_t t = 0; t + 1 < g->n_tok; t++) {
        while (g->lines[li].tok_end <= t) li++;
        const line_t *L = &g->lines[li];
        bool br;
        if (t + 1 < L->tok_end && g->tok[t].end + 1 == g->tok[t + 1].start && g->s[g->tok[t].end] == ' ' &&
            !(is_digit(g->s[g->tok[t].start]) && g->tok[t].start > 0 && !is_space_byte(g->s[g->tok[t].start - 1]))) {
            /* the common case, one space between words: no boundary, not soft */
            if (t + 1 - sb >= FOLIO_SENT_MAX_TOKENS) goto cut;
            continue;
        }
        if (t + 1 < L->tok_end) {
            br = !L->raw && punct_boundary(g, t, L, sb);
        } else {
            const line_t *N = &g->lines[li + 1];
            if (N->flags & LF_HCONT) br = false;
            else br = (N->flags & LF_SEP_BEFORE) || L->raw || N->raw || g->line_mode || list_break(g, L, N) ||
                      punct_boundary(g, t, L, sb);
        }
        if (br) {
            FOLIO_TRY(push_sent(doc, &cap, sb, t + 1));
            sb = t + 1;
            last_soft = UINT32_MAX;
            continue;
        }
        if (soft_gap(g, t)) last_soft = t;
    cut:
        if (t + 1 - sb >= FOLIO_SENT_MAX_TOKENS) {
            uint32_t cut = (last_soft != UINT32_MAX && last_soft >= sb + FOLIO_SENT_MAX_TOKENS / 2) ? last_soft : t;
            FOLIO_TRY(push_sent(doc, &cap, sb, cut + 1));
            sb = cut + 1;
            last_soft = UINT32_MAX;
        }
    }
    FOLIO_TRY(push_sent(doc, &cap, sb, g->n_tok));

    /* byte spans */
    const unsigned char *s = g->s;
    uint32_t lo = 0;
    li = 0;
    for (uint32_t k = 0; k < doc->n_sents; k++) {
        folio_sentence_t *S = &doc->sents[k];
        uint32_t tb = S->tok_begin, te = S->tok_end;
        while (g->lines[li].tok_end <= tb) li++;
        uint32_t st = g->tok[tb].start;
        if (g->lines[li].tok_begin == tb) {
            st = g->lines[li].start; /* keep "(1)", "§", "#", bullets */
        } else {
            size_t sz;
            while (st > lo && !is_ws_at(s, g->len, st - 1, &sz) && (s[st - 1] < 0x80)) st--;
        }
        if (st < lo) st = lo;
        uint32_t en = g->tok[te - 1].end;
        uint32_t hi = te < g->n_tok ? g->tok[te].start : (uint32_t)g->len;
        size_t sz;
        while (en < hi && !is_ws_at(s, g->len, en, &sz)) en += (uint32_t)sz;
        /* spaced punctuation of pre-tokenized text, "word ) ." : take the
         * rest of the line's punctuation up to an opener of the next one */
        for (uint32_t j = en; j < hi && s[j] != '\n';) {
            unsigned char c = s[j];
            if (is_ws_at(s, g->len, j, &sz)) { j += (uint32_t)sz; continue; } /* not '\n': loop condition */
            bool attached = j + 1 < g->len && !is_ws_at(s, g->len, j + 1, &sz);
            if (c == '(' || c == '[' || c == '{' || ((c == '"' || c == '\'' || c == '`') && attached) ||
                (c == 0xE2 && j + 2 < hi && s[j + 1] == 0x80 && (s[j + 2] == 0x9C || s[j + 2] == 0x98)) ||
                (c == 0xC2 && j + 1 < hi && (s[j + 1] == 0xA7 || s[j + 1] == 0xB6)))
                break;
            while (j < hi && !is_ws_at(s, g->len, j, &sz)) j += (uint32_t)sz;
            en = j;
        }
        if (en > hi) en = hi;
        S->start = st;
        S->end = en;
        lo = en;
    }
    return FOLIO_OK;
}

/* ------------------------------------------------------------ sections */

static folio_status_t build_sections(seg_t *g, folio_doc_t *doc)
{
    /* rank the raw levels present */
    bool present[256] = { false };
    for (uint32_t i = 0; i < g->n_lines; i++) present[g->lines[i].raw] = true;
    uint8_t rank[256] = { 0 };
    uint8_t r = 0;
    for (int v = 1; v < 256; v++)
        if (present[v]) rank[v] = ++r;

    uint32_t n_head = 0;
    for (uint32_t i = 0; i < g->n_lines; i++) n_head += g->lines[i].raw != 0;
    doc->sections = calloc((size_t)n_head + 1, sizeof *doc->sections);
    FOLIO_CHECK_ALLOC(doc->sections);
    doc->n_sections = 0;

    uint32_t li = 0;
    for (uint32_t k = 0; k < doc->n_sents; k++) {
        folio_sentence_t *S = &doc->sents[k];
        while (g->lines[li].tok_end <= S->tok_begin) li++;
        const line_t *L = &g->lines[li];
        bool head = L->raw && !(L->flags & LF_HCONT) && L->tok_begin == S->tok_begin;
        if (head || doc->n_sections == 0) {
            if (doc->n_sections > 0) doc->sections[doc->n_sections - 1].sent_end = k;
            folio_section_t *X = &doc->sections[doc->n_sections++];
            X->sent_begin = k;
            if (head) {
                X->start = doc->n_sections == 1 ? 0 : L->start;
                /* the title: after markdown's #s, through wrapped lines */
                uint32_t ts = L->start, te = L->end;
                if (L->flags & LF_MD) {
                    while (ts < te && g->s[ts] == '#') ts++;
                    while (ts < te && (g->s[ts] == ' ' || g->s[ts] == '\t')) ts++;
                }
                for (uint32_t j = li + 1; j < g->n_lines && (g->lines[j].flags & LF_HCONT); j++) te = g->lines[j].end;
                X->title_start = ts;
                X->title_end = te;
                X->level = rank[L->raw];
            } else {
                X->start = 0;
                X->title_start = X->title_end = 0;
                X->level = 0;
            }
            if (doc->n_sections > 1) doc->sections[doc->n_sections - 2].end = X->start;
        }
        S->section = doc->n_sections - 1;
    }
    if (doc->n_sections > 0) {
        doc->sections[doc->n_sections - 1].sent_end = doc->n_sents;
        doc->sections[doc->n_sections - 1].end = (uint32_t)g->len;
    }
    return FOLIO_OK;
}

/* ------------------------------------------------------------ driver */

folio_status_t folio_shard_segment(folio_doc_t *doc)
{
    seg_t g = { 0 };
    g.text = doc->text;
    g.s = (const unsigned char *)doc->text;
    g.len = doc->len;
    g.tok = doc->tokens;
    g.n_tok = doc->n_tokens;
    if (g.n_tok == 0) return FOLIO_ERR_EMPTY;
    folio_status_t st = build_lines(&g);
    if (st != FOLIO_OK) { free(g.lines); return st; }

    uint32_t term = 0, longl = 0;
    for (uint32_t i = 0; i < g.n_lines; i++) {
        line_t *L = &g.lines[i];
        line_shape(&g, L);
        term += (L->flags & (LF_END_TERM | LF_END_COLON)) != 0;
        longl += L->end - L->start > 100;
        if (L->flags & LF_UPPER) g.has_upper = true;
    }
    if (!g.has_upper) {
        for (uint32_t t = 0; t < g.n_tok && !g.has_upper; t++)
            for (uint32_t i = g.tok[t].start; i < g.tok[t].end; i++)
                if (is_upper(g.s[i])) { g.has_upper = true; break; }
    }
    /* Line-oriented when most lines end like sentences or paragraphs, or
     * many lines are longer than any wrapped text (~80 columns) would be. */
    g.line_mode = g.n_lines >= 3 && (term * 5 >= (uint64_t)g.n_lines * 4 || longl * 4 >= g.n_lines);
    for (uint32_t i = 0; i < g.n_lines; i++) {
        strong_heading(&g, &g.lines[i]);
        if (g.lines[i].raw) g.lines[i].flags |= LF_STRONG;
    }
    /* a keyword heading wrapped onto a second all-caps line:
     * "SEC. 3. REIMBURSEMENT TO HEALTH CARE PROVIDERS FOR EMERGENCY MEDICAL\n
     *  CARE RENDERED TO CERTAIN ALIENS." */
    for (uint32_t i = 0, head = 0; i + 1 < g.n_lines; i++) {
        line_t *L = &g.lines[i], *N = &g.lines[i + 1];
        if (!(L->flags & LF_HCONT)) head = i;
        if (L->flags & LF_MD) continue;
        if ((L->flags & (LF_STRONG | LF_HCONT)) && (L->flags & LF_CAPS) && !(L->flags & LF_END_TERM) &&
            !(N->flags & (LF_SEP_BEFORE | LF_STRONG)) && (N->flags & LF_CAPS) && N->end - N->start <= 100 &&
            i - head < 4) {
            N->flags |= LF_HCONT;
            N->raw = L->raw;
        }
    }
    for (uint32_t i = 0; i < g.n_lines; i++)
        if (!g.lines[i].raw) weak_heading(&g, i);

    /* A table of contents is a run of three or more same-kind headings with
     * no text and no blank line between them ("Sec. 1. Short title.\n
     * Sec. 2. Findings.\nSec. 3. ..."); its entries are ordinary lines, not
     * sections of one line each.  (Two in a row are a title and subtitle.) */
    for (uint32_t i = 0; i < g.n_lines;) {
        line_t *L = &g.lines[i];
        if (!L->raw || (L->flags & LF_HCONT)) { i++; continue; }
        uint32_t run = 1, j = i, last = i;
        for (;;) {
            uint32_t k = j + 1;
            while (k < g.n_lines && (g.lines[k].flags & LF_HCONT)) k++;
            last = k;
            if (k < g.n_lines && g.lines[k].raw == L->raw && !(g.lines[k].flags & (LF_HCONT | LF_SEP_BEFORE))) {
                run++;
                j = k;
                continue;
            }
            break;
        }
        if (run >= 3) {
            for (uint32_t k = i; k < last; k++) {
                g.lines[k].raw = 0;
                g.lines[k].flags &= (uint16_t)~(LF_STRONG | LF_TITLE | LF_HCONT);
            }
        }
        i = last > i ? last : i + 1;
    }

    st = split_sentences(&g, doc);
    if (st == FOLIO_OK) st = build_sections(&g, doc);
    free(g.lines);
    return st;
}
