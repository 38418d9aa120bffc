/* tests/unit/test_jobs_rouge.c — ROUGE by rouge_score's rules.
 *
 * Expected values are computed by hand below (counts in the comments) and
 * were also checked against rouge_score 0.1.2 (use_stemmer=True) while
 * developing; on 200 (reference, shuffled-sentence summary cut to 200 words)
 * pairs of pubmed-dev and billsum-dev the C scores matched rouge_score to
 * 1e-6 (see bench/RESULTS.md, ## jobs). */
#include <criterion/criterion.h>
#include <string.h>

#include "jobs/jobs.h"

static folio_rouge_t score(const char *ref, const char *sys)
{
    folio_rouge_t r;
    cr_assert_eq(folio_rouge_score(ref, strlen(ref), sys, strlen(sys), &r), FOLIO_OK);
    return r;
}

#define EPS 1e-9

Test(rouge, unigrams_bigrams_lcs)
{
    /* ref: the cat sat on the mat; sys: the cat is on the mat.
     * unigrams: the x2, cat, on, mat = 5 of 6 each side -> F = 5/6.
     * bigrams: the-cat, on-the, the-mat = 3 of 5 -> F = 3/5.
     * LCS: the cat on the mat = 5 -> F = 5/6. */
    folio_rouge_t r = score("the cat sat on the mat", "the cat is on the mat");
    cr_expect_float_eq(r.rouge1.f, 5.0 / 6, EPS);
    cr_expect_float_eq(r.rouge2.f, 3.0 / 5, EPS);
    cr_expect_float_eq(r.rougeLsum.f, 5.0 / 6, EPS);
}

Test(rouge, stemming_only_above_three_chars)
{
    /* ref: run dog (running, dogs stemmed); sys: the dog run ("dog" has 3
     * chars, kept; runs -> run).  Unigram hits 2: P = 2/3, R = 1 -> 0.8.
     * No common bigram.  LCS 1: P = 1/3, R = 1/2 -> 0.4. */
    folio_rouge_t r = score("Running dogs", "the dog runs");
    cr_expect_float_eq(r.rouge1.f, 0.8, EPS);
    cr_expect_float_eq(r.rouge2.f, 0.0, EPS);
    cr_expect_float_eq(r.rougeLsum.f, 0.4, EPS);
    cr_expect_float_eq(r.rouge1.p, 2.0 / 3, EPS);
    cr_expect_float_eq(r.rouge1.r, 1.0, EPS);
}

Test(rouge, lsum_union_lcs)
{
    /* ref lines [a b c d] [e f]; sys lines [a b] [c x d] [f e].
     * ref1: union of LCS {a,b} u {c,d} = 4 hits; ref2 vs [f e]: one LCS
     * token (e) = 1 hit.  R = 5/6, P = 5/7 -> F = 10/13.
     * unigrams: 6 hits of 6 ref / 7 sys -> F = 12/13.
     * bigrams: ref a-b b-c c-d d-e e-f; sys a-b b-c c-x x-d d-f f-e: hits
     * a-b, b-c = 2; P = 2/6, R = 2/5 -> F = 4/11. */
    folio_rouge_t r = score("a b c d\ne f", "a b\nc x d\nf e");
    cr_expect_float_eq(r.rougeLsum.f, 10.0 / 13, EPS);
    cr_expect_float_eq(r.rouge1.f, 12.0 / 13, EPS);
    cr_expect_float_eq(r.rouge2.f, 4.0 / 11, EPS);
}

Test(rouge, lsum_clips_double_counting)
{
    /* ref lines [a] [a]; sys [a]: each ref line's LCS is {a}, but the one
     * system "a" may be counted once: hits 1, R = 1/2, P = 1 -> 2/3. */
    folio_rouge_t r = score("a\na", "a");
    cr_expect_float_eq(r.rougeLsum.f, 2.0 / 3, EPS);
    cr_expect_float_eq(r.rouge1.f, 2.0 / 3, EPS);
}

Test(rouge, punctuation_case_and_unicode)
{
    /* "U.S.-based firms" -> u s base firm; "us based firm" -> us base firm:
     * 2 hits, P = 2/3, R = 2/4 -> 4/7; bigram base-firm: P = 1/2, R = 1/3 -> 0.4 */
    folio_rouge_t r = score("U.S.-based firms", "us based firm");
    cr_expect_float_eq(r.rouge1.f, 4.0 / 7, EPS);
    cr_expect_float_eq(r.rouge2.f, 0.4, EPS);
    /* Python lower(): e-acute is a separator, U+0130 -> "i" + combining dot,
     * U+212A KELVIN SIGN -> "k": caf i stanbul kelvin vs cafe i stanbul kelvin */
    r = score("Caf\xc3\xa9 \xc4\xb0stanbul \xe2\x84\xaa" "elvin", "cafe i stanbul kelvin");
    cr_expect_float_eq(r.rouge1.f, 0.75, EPS);
    cr_expect_float_eq(r.rouge2.f, 2.0 / 3, EPS);
}

Test(rouge, empty_texts_score_zero)
{
    folio_rouge_t r = score("", "x");
    cr_expect_float_eq(r.rouge1.f, 0.0, EPS);
    cr_expect_float_eq(r.rougeLsum.f, 0.0, EPS);
    r = score("some words", "?!");
    cr_expect_float_eq(r.rouge2.f, 0.0, EPS);
}

Test(rouge, identical_texts_score_one)
{
    const char *t = "Attention is all you need.\nSparse attention scales linearly in n.";
    folio_rouge_t r = score(t, t);
    cr_expect_float_eq(r.rouge1.f, 1.0, EPS);
    cr_expect_float_eq(r.rouge2.f, 1.0, EPS);
    cr_expect_float_eq(r.rougeLsum.f, 1.0, EPS);
}

Test(rouge, cut_words_keeps_newlines)
{
    const char *s = "  one two\nthree   four\n five";
    size_t n = folio_rouge_cut_words(s, strlen(s), 3);
    cr_expect_eq(n, strlen("  one two\nthree"));
    cr_expect_eq(folio_rouge_cut_words(s, strlen(s), 5), strlen(s));
    cr_expect_eq(folio_rouge_cut_words(s, strlen(s), 0), 0u);
}

Test(rouge, tokenizer_counts)
{
    folio_rouge_tokens_t t = {0};
    const char *s = "Hello, WORLD!! 3.5-fold e-mail";
    cr_assert_eq(folio_rouge_tokenize(s, strlen(s), &t), FOLIO_OK);
    cr_expect_eq(t.n, 7u); /* hello world 3 5 fold e mail */
    folio_rouge_tokens_t u = {0};
    const char *s2 = "hello world 3 5 fold e mail";
    cr_assert_eq(folio_rouge_tokenize(s2, strlen(s2), &u), FOLIO_OK);
    cr_assert_eq(u.n, t.n);
    for (size_t i = 0; i < t.n; i++) cr_expect_eq(t.hash[i], u.hash[i]);
    folio_rouge_tokens_free(&t);
    folio_rouge_tokens_free(&u);
}
