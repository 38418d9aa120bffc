/* shard/shard_internal.h — character classes shared by the tokenizer and the
 * sentence/section splitter.  Not part of the public contract. */
#ifndef FOLIO_SHARD_INTERNAL_H
#define FOLIO_SHARD_INTERNAL_H

#include "shard.h"

/* Decodes the code point at s[i] (i < len).  Text is normally validated
 * already; an invalid byte decodes as itself with size 1 (U+FFFD would hide
 * it), so the tokenizer never reads past the end or loops forever. */
static inline uint32_t shard_decode(const unsigned char *s, size_t len, size_t i, size_t *size)
{
    unsigned char c = s[i];
    if (c < 0x80) { *size = 1; return c; }
    if (c >= 0xC2 && c <= 0xDF && i + 1 < len) {
        *size = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F);
    }
    if (c >= 0xE0 && c <= 0xEF && i + 2 < len) {
        *size = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    }
    if (c >= 0xF0 && c <= 0xF4 && i + 3 < len) {
        *size = 4;
        return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
               ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
    }
    *size = 1;
    return 0xFFFD;
}

/* Unicode white space (ASCII and the Z* / NEL code points). */
static inline bool shard_is_space_cp(uint32_t cp)
{
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Word characters outside ASCII: every code point except controls, spaces,
 * and the punctuation and symbol blocks (Latin-1 punctuation, General
 * Punctuation, currency, arrows/maths/technical/box/shapes/dingbats,
 * supplemental and CJK punctuation, full-width punctuation, emoji).  Letters
 * of every script, combining marks, ideographs and private-use characters
 * count as word characters. */
static inline bool shard_is_word_cp_nonascii(uint32_t cp)
{
    if (cp < 0xC0) return cp == 0xAA || cp == 0xB5 || cp == 0xBA || cp == 0xB2 || cp == 0xB3 || cp == 0xB9 ||
                          (cp >= 0xBC && cp <= 0xBE);
    if (cp == 0xD7 || cp == 0xF7) return false;                      /* × ÷ */
    if (cp < 0x1680) return cp != 0x037E && cp != 0x0387 && cp != 0x055D && cp != 0x0589 &&
                            cp != 0x05BE && cp != 0x05C3 && cp != 0x060C && cp != 0x061B &&
                            cp != 0x061F && cp != 0x06D4 && cp != 0x0964 && cp != 0x0965;
    if (cp == 0x1680 || cp == 0x180E) return false;
    if (cp >= 0x2000 && cp <= 0x206F) return false;                  /* general punctuation */
    if (cp >= 0x20A0 && cp <= 0x20CF) return false;                  /* currency */
    if (cp >= 0x2190 && cp <= 0x2BFF) return false;                  /* arrows .. misc symbols */
    if (cp >= 0x2E00 && cp <= 0x2E7F) return false;                  /* supplemental punctuation */
    if (cp >= 0x3000 && cp <= 0x303F) return false;                  /* CJK punctuation */
    if (cp >= 0xFE10 && cp <= 0xFE1F) return false;
    if (cp >= 0xFE30 && cp <= 0xFE6F) return false;
    if (cp == 0xFEFF || (cp >= 0xFFF0 && cp <= 0xFFFF)) return false;/* BOM, specials */
    if (cp >= 0xFF00 && cp <= 0xFF0F) return false;                  /* full-width punctuation */
    if (cp >= 0xFF1A && cp <= 0xFF20) return false;
    if (cp >= 0xFF3B && cp <= 0xFF40) return false;
    if (cp >= 0xFF5B && cp <= 0xFF65) return false;
    if (cp >= 0x1F000 && cp <= 0x1FAFF) return false;                /* emoji, pictographs */
    if (cp >= 0xE0000 && cp <= 0xE007F) return false;                /* tags */
    return true;
}

/* Byte classes for ASCII: letters, digits, space, other. */
enum { SHARD_C_OTHER = 0, SHARD_C_UPPER = 1, SHARD_C_LOWER = 2, SHARD_C_DIGIT = 4, SHARD_C_SPACE = 8 };
extern const unsigned char folio_shard_ascii_class[128];

static inline bool shard_is_word_cp(uint32_t cp)
{
    if (cp < 0x80) return (folio_shard_ascii_class[cp] & (SHARD_C_UPPER | SHARD_C_LOWER | SHARD_C_DIGIT)) != 0;
    return shard_is_word_cp_nonascii(cp);
}

/* Term and stem hashes of tokens[0..n) into term[n] and stem[n], with a
 * stem cache (tokenize.c). */
folio_status_t folio_shard_hash_tokens(const char *text, const folio_span_t *toks, uint32_t n,
                                       uint64_t *term, uint64_t *stem);

/* Splits a tokenized document into sentences and sections (segment.c):
 * fills doc->sents/n_sents and doc->sections/n_sections from doc->text and
 * doc->tokens.  Requires n_tokens > 0. */
folio_status_t folio_shard_segment(folio_doc_t *doc);

#endif
