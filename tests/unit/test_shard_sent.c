/* tests/unit/test_shard_sent.c — sentence splitting and section detection on
 * hand-made hard cases drawn from each dev data set (billsum, sciqa,
 * pubmed, SPDX licences) and from legal/scientific writing in general, with
 * the full invariant check on every case. */
#include "test_shard_common.h"

static void expect_sents(const char *text, const char *const *want)
{
    folio_doc_t d;
    cr_assert_eq(tsh_analyze(&d, text), FOLIO_OK);
    tsh_check_doc(&d, "case");
    size_t w = 0;
    while (want[w]) w++;
    for (uint32_t k = 0; k < d.n_sents && k < w; k++) {
        const folio_sentence_t *S = &d.sents[k];
        int n = (int)(S->end - S->start);
        cr_assert(strlen(want[k]) == (size_t)n && !memcmp(d.text + S->start, want[k], (size_t)n),
                  "sentence %u is\n  [%.*s]\nwant\n  [%s]", k, n, d.text + S->start, want[k]);
    }
    if (d.n_sents != w) {
        for (uint32_t k = 0; k < d.n_sents; k++)
            cr_log_error("got %u: [%.*s]", k, (int)(d.sents[k].end - d.sents[k].start), d.text + d.sents[k].start);
    }
    cr_assert_eq(d.n_sents, w, "%u sentences, want %zu", d.n_sents, w);
    folio_doc_clear(&d);
}
#define SENTS(text, ...) expect_sents(text, (const char *const[]){ __VA_ARGS__, NULL })

/* Section titles in order ("" for an untitled preamble) and levels as a
 * string of digits (or NULL to skip the level check). */
static void expect_sections_n(const char *text, size_t w, const char *const *want, const char *levels)
{
    folio_doc_t d;
    cr_assert_eq(tsh_analyze(&d, text), FOLIO_OK);
    tsh_check_doc(&d, "case");
    for (uint32_t k = 0; k < d.n_sections; k++)
        cr_log_info("section %u L%u [%.*s]", k, d.sections[k].level,
                    (int)(d.sections[k].title_end - d.sections[k].title_start), d.text + d.sections[k].title_start);
    cr_assert_eq(d.n_sections, w, "%u sections, want %zu", d.n_sections, w);
    for (uint32_t k = 0; k < w; k++) {
        const folio_section_t *X = &d.sections[k];
        int n = (int)(X->title_end - X->title_start);
        cr_assert(strlen(want[k]) == (size_t)n && !memcmp(d.text + X->title_start, want[k], (size_t)n),
                  "section %u title [%.*s], want [%s]", k, n, d.text + X->title_start, want[k]);
        if (levels)
            cr_assert_eq(X->level, (uint32_t)(levels[k] - '0'), "section %u [%s] level %u, want %c", k, want[k], X->level,
                         levels[k]);
    }
    folio_doc_clear(&d);
}
#define SECTIONS(text, levels, ...)                                                                   \
    expect_sections_n(text, sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *),       \
                      (const char *const[]){ __VA_ARGS__ }, levels)

/* ------------------------------------------------------------ billsum */

static const char BILL[] =
    "SECTION 1. SHORT TITLE.\n"
    "\n"
    "    This Act may be cited as the ``Border Hospital Survival and Illegal \n"
    "Immigrant Care Act''.\n"
    "\n"
    "SEC. 2. FINDINGS.\n"
    "\n"
    "    The Congress finds as follows:\n"
    "            (1) Immigration is a Federal responsibility.\n"
    "            (2) Section 1867 of the Social Security Act (42 U.S.C. \n"
    "        1395dd) and State laws require care. The States pay.\n"
    "\n"
    "SEC. 3. REIMBURSEMENT TO HEALTH CARE PROVIDERS FOR EMERGENCY MEDICAL\n"
    "              CARE RENDERED TO CERTAIN ALIENS.\n"
    "\n"
    "    (a) In General.--The Secretary shall pay, if--\n"
    "            ``(A) the hospital requested it; and\n"
    "            ``(B) the request was denied.\n";

Test(shard_sent, billsum)
{
    SENTS(BILL, "SECTION 1. SHORT TITLE.",
          "This Act may be cited as the ``Border Hospital Survival and Illegal \nImmigrant Care Act''.",
          "SEC. 2. FINDINGS.", "The Congress finds as follows:", "(1) Immigration is a Federal responsibility.",
          "(2) Section 1867 of the Social Security Act (42 U.S.C. \n        1395dd) and State laws require care.",
          "The States pay.",
          "SEC. 3. REIMBURSEMENT TO HEALTH CARE PROVIDERS FOR EMERGENCY MEDICAL\n              CARE RENDERED TO CERTAIN ALIENS.",
          "(a) In General.--The Secretary shall pay, if--", "``(A) the hospital requested it; and",
          "``(B) the request was denied.");
    SECTIONS(BILL, "111", "SECTION 1. SHORT TITLE.", "SEC. 2. FINDINGS.",
                                           "SEC. 3. REIMBURSEMENT TO HEALTH CARE PROVIDERS FOR EMERGENCY MEDICAL\n"
                                           "              CARE RENDERED TO CERTAIN ALIENS.");
}

Test(shard_sent, billsum_titles_and_parts)
{
    static const char T[] = "TITLE I--ELECTRONIC COMMERCE\n\n"
                            "SEC. 101. DEFINITIONS.\n\n    In this title the term ``agency'' has the meaning given in "
                            "section 551 of title 5, United States Code.\n\n"
                            "SEC. 102. AUTHORITY.\n\n    The Director may act.\n\n"
                            "TITLE II--ENTERPRISE INTEGRATION\n\n"
                            "SEC. 201. FINDINGS.\n\n    Congress finds that integration matters.\n";
    SECTIONS(T, "12212", "TITLE I--ELECTRONIC COMMERCE", "SEC. 101. DEFINITIONS.", "SEC. 102. AUTHORITY.",
                                           "TITLE II--ENTERPRISE INTEGRATION", "SEC. 201. FINDINGS.");
}

/* ------------------------------------------------------------ sciqa */

static const char SCI[] =
    "Introduction\n"
    "Social media platforms have made the spreading of fake news easier BIBREF0. Fake news vary, e.g., in "
    "intent. The accuracy was 93.5% in Fig. 2 of Smith et al. (2019). Results improve!\n"
    "Related Work\n"
    "Prior work on rumour detection in social media exists in several forms BIBREF1, BIBREF2. Our contributions are:\n"
    "[leftmargin=4mm]\n"
    "We propose an approach to detect non-factual Twitter accounts by treating post streams as a sequence of chunks.\n"
    "Level A: Offensive language Detection\n"
    "Level A discriminates between offensive (OFF) and non-offensive (NOT) tweets.\n";

Test(shard_sent, sciqa)
{
    SENTS(SCI, "Introduction", "Social media platforms have made the spreading of fake news easier BIBREF0.",
          "Fake news vary, e.g., in intent.", "The accuracy was 93.5% in Fig. 2 of Smith et al. (2019).",
          "Results improve!", "Related Work", "Prior work on rumour detection in social media exists in several forms BIBREF1, BIBREF2.",
          "Our contributions are:", "[leftmargin=4mm]",
          "We propose an approach to detect non-factual Twitter accounts by treating post streams as a sequence of chunks.",
          "Level A: Offensive language Detection",
          "Level A discriminates between offensive (OFF) and non-offensive (NOT) tweets.");
    SECTIONS(SCI, "111", "Introduction", "Related Work", "Level A: Offensive language Detection");
}

/* ------------------------------------------------------------ pubmed */

Test(shard_sent, pubmed_one_sentence_per_line)
{
    SENTS("approximately , one - third of patients with vte manifests pe .\n"
          "both dvt and pe can be clinically silent ( asymptomatic ) .\n"
          "it is estimated that 20 million cases occur ( smith et al . 2005 ) , see fig . 1 .\n"
          "the incidence is as high ( 43.2% and 60% ) as seen in the west\n",
          "approximately , one - third of patients with vte manifests pe .",
          "both dvt and pe can be clinically silent ( asymptomatic ) .",
          "it is estimated that 20 million cases occur ( smith et al . 2005 ) , see fig . 1 .",
          "the incidence is as high ( 43.2% and 60% ) as seen in the west");
}

Test(shard_sent, pubmed_wrapped_lowercase)
{
    SENTS("following a clinically predictable progression\n"
          " pattern , advanced prostate cancer metastasizes to bone . despite a decreasing\n"
          " overall mortality rate , the development\n"
          " of treatments has been hindered , e.g . by costs .\n",
          "following a clinically predictable progression\n pattern , advanced prostate cancer metastasizes to bone .",
          "despite a decreasing\n overall mortality rate , the development\n of treatments has been hindered , e.g . by costs .");
}

/* ------------------------------------------------------------ spdx */

static const char APACHE[] =
    "Apache License\n"
    "Version 2.0, January 2004\n"
    "http://www.apache.org/licenses/\n"
    "\n"
    "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION\n"
    "\n"
    "1. Definitions.\n"
    "\n"
    "\"License\" shall mean the terms and conditions for use, reproduction, and distribution as defined by Sections 1 "
    "through 9 of this document.\n"
    "\n"
    "2. Grant of Copyright License. Subject to the terms and conditions of this License, each Contributor hereby "
    "grants to You a perpetual, worldwide, non-exclusive, no-charge, royalty-free copyright license.\n"
    "\n"
    "END OF TERMS AND CONDITIONS\n";

Test(shard_sent, spdx_apache)
{
    SENTS(APACHE, "Apache License", "Version 2.0, January 2004", "http://www.apache.org/licenses/",
          "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", "1. Definitions.",
          "\"License\" shall mean the terms and conditions for use, reproduction, and distribution as defined by "
          "Sections 1 through 9 of this document.",
          "2. Grant of Copyright License.",
          "Subject to the terms and conditions of this License, each Contributor hereby grants to You a perpetual, "
          "worldwide, non-exclusive, no-charge, royalty-free copyright license.",
          "END OF TERMS AND CONDITIONS");
    SECTIONS(APACHE, NULL, "Apache License", "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
                                           "1. Definitions.", "END OF TERMS AND CONDITIONS");
}

Test(shard_sent, spdx_wrapped_caps_disclaimer_is_not_a_heading)
{
    static const char T[] =
        "Copyright (c) 2001 The Authors.\n"
        "\n"
        "Redistribution and use in source and binary forms are permitted provided\n"
        "that the following conditions are met:\n"
        "\n"
        "   1. Redistributions of source code must retain the above copyright\n"
        "      notice, this list of conditions and the following disclaimer.\n"
        "\n"
        "THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS\n"
        "\"AS IS\" AND ANY EXPRESS OR IMPLIED WARRANTIES ARE DISCLAIMED.\n";
    SENTS(T, "Copyright (c) 2001 The Authors.",
          "Redistribution and use in source and binary forms are permitted provided\nthat the following conditions are met:",
          "1. Redistributions of source code must retain the above copyright\n      notice, this list of conditions and "
          "the following disclaimer.",
          "THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS\n\"AS IS\" AND ANY EXPRESS OR IMPLIED "
          "WARRANTIES ARE DISCLAIMED.");
    SECTIONS(T, "0", "");
}

Test(shard_sent, mpl_numbered_levels)
{
    static const char T[] = "Mozilla Public License Version 2.0\n"
                            "==================================\n\n"
                            "1. Definitions\n--------------\n\n"
                            "1.1. \"Contributor\"\n    means each individual that creates Covered Software.\n\n"
                            "2. License Grants and Conditions\n--------------------------------\n\n"
                            "2.1. Grants\n\nEach Contributor hereby grants You a license.\n\n"
                            "2.2. Effective Date\n\nThe licenses are effective on the date.\n";
    SECTIONS(T, "11122", "Mozilla Public License Version 2.0", "1. Definitions",
                                           "2. License Grants and Conditions", "2.1. Grants", "2.2. Effective Date");
}

/* ------------------------------------------------------------ general */

Test(shard_sent, section_signs_markdown_articles)
{
    static const char T[] = "\xC2\xA7 101. Definitions\n"
                            "In this title, the term \"person\" means an individual.\n"
                            "\n"
                            "\xC2\xA7 102. Scope\n"
                            "This title applies to U.S. persons. It does not apply to others.\n";
    SENTS(T, "\xC2\xA7 101. Definitions", "In this title, the term \"person\" means an individual.",
          "\xC2\xA7 102. Scope", "This title applies to U.S. persons.", "It does not apply to others.");
    SECTIONS(T, "11", "\xC2\xA7 101. Definitions", "\xC2\xA7 102. Scope");

    static const char M[] = "Some preamble text here.\n\n# Title\n\nIntro text here.\n\n## Part One\n\nMore text. And more.\n\n"
                            "### Deeper\n\nDeep text.\n";
    SECTIONS(M, "0123", "", "Title", "Part One", "Deeper");
    SENTS(M, "Some preamble text here.", "# Title", "Intro text here.", "## Part One", "More text.", "And more.",
          "### Deeper", "Deep text.");

    static const char A[] = "ARTICLE I\n\nThe parties agree as set out below.\n\nARTICLE II. PAYMENT\n\n"
                            "Payment is due in 30 days.\n\nArticle 5 of the Convention applies to this Article.\n";
    SECTIONS(A, "11", "ARTICLE I", "ARTICLE II. PAYMENT");
}

Test(shard_sent, abbreviations_decimals_quotes)
{
    SENTS("Dr. Smith met J. R. Jones at 5 p.m. on Jan. 5. They talked.",
          "Dr. Smith met J. R. Jones at 5 p.m. on Jan. 5.", "They talked.");
    SENTS("The rate rose 3.5 percent in 2019. It was 1,000 units. Version 1.2.3 shipped.",
          "The rate rose 3.5 percent in 2019.", "It was 1,000 units.", "Version 1.2.3 shipped.");
    SENTS("He said \"stop.\" Then he left. (See note.) Done. 'Quoted.' And more.", "He said \"stop.\"",
          "Then he left.", "(See note.)", "Done.", "'Quoted.'", "And more.");
    SENTS("Really? Yes! ok then. Acme Inc. sued Foo Corp. and lost. See No. 5 and Sec. 3 vs. Sec. 4.",
          "Really?", "Yes! ok then.", "Acme Inc. sued Foo Corp. and lost.", "See No. 5 and Sec. 3 vs. Sec. 4.");
    SENTS("It was approved by the U.S. Senate. The House agreed (i.e. unanimously) on it.",
          "It was approved by the U.S. Senate.", "The House agreed (i.e. unanimously) on it.");
    SENTS("Aspirin is used for pain in the knee and hand.1,2 However, it has risks.12 See Fig.2 for more. "
          "It was 2.5 mg.",
          "Aspirin is used for pain in the knee and hand.1,2", "However, it has risks.12",
          "See Fig.2 for more.", "It was 2.5 mg.");
    SENTS("Wait... Then it rained \xE2\x80\x9Chard.\xE2\x80\x9D After that, calm.",
          "Wait...", "Then it rained \xE2\x80\x9Chard.\xE2\x80\x9D", "After that, calm.");
}

Test(shard_sent, enumerations_and_blank_lines)
{
    SENTS("The following apply:\n(1) First item; and\n(2) Second item.\n",
          "The following apply:", "(1) First item; and", "(2) Second item.");
    /* billsum's amendments: closers after the period are not openers, and a
     * lone "and" line stays with the item before it */
    SENTS("    (a) In general.--Section 5 is amended--\n"
          "            (1) by striking ``(F) $25,000,000 for fiscal year 2006; and\n"
          "            ``(G) $25,000,000 for fiscal year 2007.'';\n"
          "        and\n"
          "            (2) in paragraph (2)--\n",
          "(a) In general.--Section 5 is amended--", "(1) by striking ``(F) $25,000,000 for fiscal year 2006; and",
          "``(G) $25,000,000 for fiscal year 2007.'';\n        and", "(2) in paragraph (2)--");
    SENTS("a line without punctuation\n\nanother one without", "a line without punctuation", "another one without");
    SENTS("INTRODUCTION\nThis paper studies tokens. It is new.\n", "INTRODUCTION", "This paper studies tokens.", "It is new.");
    /* a single capital before the period reads as an initial ("J. Smith") */
    SENTS("We call it X. Smith agrees.", "We call it X. Smith agrees.");
    SENTS("1. The licensee shall pay. 2. The licensor shall deliver.\n",
          "1. The licensee shall pay.", "2. The licensor shall deliver.");
}

Test(shard_sent, no_punctuation_no_spaces)
{
    /* 5,000 comma-joined words and no sentence punctuation: sentences are
     * cut at FOLIO_SENT_MAX_TOKENS, at a comma when there is one */
    size_t n = 5000;
    char *t = malloc(n * 4 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) { memcpy(t + k, "ab,", 3); k += 3; }
    t[k] = 0;
    folio_doc_t d;
    cr_assert_eq(tsh_analyze(&d, t), FOLIO_OK);
    tsh_check_doc(&d, "no punctuation");
    cr_assert_eq(d.n_tokens, n);
    cr_assert(d.n_sents >= n / FOLIO_SENT_MAX_TOKENS && d.n_sents <= 2 * n / FOLIO_SENT_MAX_TOKENS + 1, "%u", d.n_sents);
    folio_doc_clear(&d);
    /* one giant "word": tokens are cut, sentences too */
    memset(t, 'x', n * 4);
    t[n * 4] = 0;
    cr_assert_eq(tsh_analyze(&d, t), FOLIO_OK);
    tsh_check_doc(&d, "giant word");
    folio_doc_clear(&d);
    free(t);
}

Test(shard_sent, empty_and_whitespace)
{
    folio_doc_t d;
    cr_assert_eq(tsh_analyze(&d, ""), FOLIO_ERR_EMPTY);
    folio_doc_clear(&d);
    cr_assert_eq(tsh_analyze(&d, "  \n\t \r\n "), FOLIO_ERR_EMPTY);
    folio_doc_clear(&d);
    cr_assert_eq(tsh_analyze(&d, "... --- !!!"), FOLIO_ERR_EMPTY);
    folio_doc_clear(&d);
    cr_assert_eq(tsh_analyze(&d, "x"), FOLIO_OK);
    tsh_check_doc(&d, "one token");
    cr_assert_eq(d.n_sents, 1);
    cr_assert_eq(d.n_sections, 1);
    folio_doc_clear(&d);
    folio_doc_clear(NULL);
}

Test(shard_sent, analyze_twice_and_hash)
{
    folio_doc_t d;
    cr_assert_eq(tsh_analyze(&d, "Same text. Twice."), FOLIO_OK);
    uint8_t h[16];
    memcpy(h, d.hash, 16);
    uint32_t ns = d.n_sents;
    cr_assert_eq(folio_doc_analyze(&d), FOLIO_OK);
    cr_assert_eq(d.n_sents, ns);
    cr_assert_arr_eq(d.hash, h, 16);
    uint8_t ref[16];
    folio_hash128(d.text, d.len, ref);
    cr_assert_arr_eq(d.hash, ref, 16);
    folio_doc_clear(&d);
}

Test(shard_sent, random_text_invariants)
{
    /* Random mixes of words, punctuation, headings, enumerations, odd white
     * space (NBSP, CR, form feed) and multibyte text: every invariant holds
     * and the splitter terminates. */
    static const char *const pieces[] = {
        "word", "Word", "WORD", "U.S.C.", "e.g.", "et al.", "Fig.", "No.", "3.5", "1.", "(a)", "(1)", "SEC. 2.",
        "\xC2\xA7 101", "# ", "## ", ". ", "! ", "? ", "...", ", ", "; ", ": ", "--", " ", " ", " ", "\n", "\n",
        "\n\n", "\r\n", "\xC2\xA0", "\f", "\t", "\"", "'", "(", ")", "\xE2\x80\x9C", "\xE2\x80\x9D", "\xE2\x80\x94",
        "caf\xC3\xA9", "\xE4\xB8\xAD", "ARTICLE IV", "1.1. Title", "Introduction\n", "=====\n", "- ", "* ",
    };
    uint64_t seed = 2024;
    static char buf[16384];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 0, want = 1 + folio_splitmix64(&seed) % 3000;
        while (n < want) {
            const char *p = pieces[folio_splitmix64(&seed) % (sizeof pieces / sizeof pieces[0])];
            size_t l = strlen(p);
            memcpy(buf + n, p, l);
            n += l;
        }
        buf[n] = 0;
        folio_doc_t d;
        folio_status_t st = tsh_analyze(&d, buf);
        if (st == FOLIO_OK) {
            char what[32];
            snprintf(what, sizeof what, "iter %d", iter);
            tsh_check_doc(&d, what);
        } else {
            cr_assert_eq(st, FOLIO_ERR_EMPTY, "iter %d: %s", iter, folio_status_str(st));
        }
        folio_doc_clear(&d);
    }
}

Test(shard_sent, wrapped_plain_text_licences)
{
    /* /usr/share/common-licenses style: centred title, numbered clause
     * headings with a blank line after, wrapped clause paragraphs that open
     * with a number (not headings) */
    static const char T[] =
        "                    GNU GENERAL PUBLIC LICENSE\n"
        "                       Version 3, 29 June 2007\n"
        "\n"
        "                            Preamble\n"
        "\n"
        "  The GNU General Public License is a free, copyleft license for\n"
        "software and other kinds of works.\n"
        "\n"
        "  3. Protecting Users' Legal Rights From Anti-Circumvention Law.\n"
        "\n"
        "  No covered work shall be deemed part of an effective technological\n"
        "measure under any applicable law.\n"
        "\n"
        "   4. Redistribution. You may reproduce and distribute copies of the\n"
        "      Work in any medium, with or without modifications.\n";
    SECTIONS(T, "111", "GNU GENERAL PUBLIC LICENSE", "Preamble",
             "3. Protecting Users' Legal Rights From Anti-Circumvention Law.");
    SENTS(T, "GNU GENERAL PUBLIC LICENSE", "Version 3, 29 June 2007", "Preamble",
          "The GNU General Public License is a free, copyleft license for\nsoftware and other kinds of works.",
          "3. Protecting Users' Legal Rights From Anti-Circumvention Law.",
          "No covered work shall be deemed part of an effective technological\nmeasure under any applicable law.",
          "4. Redistribution.", "You may reproduce and distribute copies of the\n      Work in any medium, with or without modifications.");
}

/* The same text with CRLF line ends splits the same way. */
static void same_with_crlf(const char *text)
{
    size_t n = strlen(text), k = 0;
    char *crlf = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n') crlf[k++] = '\r';
        crlf[k++] = text[i];
    }
    crlf[k] = 0;
    folio_doc_t a, b;
    cr_assert_eq(tsh_analyze(&a, text), FOLIO_OK);
    cr_assert_eq(tsh_analyze(&b, crlf), FOLIO_OK);
    tsh_check_doc(&b, "crlf");
    cr_assert_eq(a.n_sents, b.n_sents, "%u vs %u sentences with CRLF", a.n_sents, b.n_sents);
    cr_assert_eq(a.n_sections, b.n_sections);
    for (uint32_t i = 0; i < a.n_sections; i++) {
        cr_assert_eq(a.sections[i].level, b.sections[i].level);
        /* one-line titles: the same bytes, the '\r' is not part of them */
        cr_assert_eq(a.sections[i].title_end - a.sections[i].title_start,
                     b.sections[i].title_end - b.sections[i].title_start, "section %u title", i);
    }
    folio_doc_clear(&a);
    folio_doc_clear(&b);
    free(crlf);
}

Test(shard_sent, crlf_line_ends)
{
    same_with_crlf(SCI);
    same_with_crlf(APACHE);
    same_with_crlf("# Title\n\nIntro text here.\n\n## Part One\n\nMore text. And more.\n");
    same_with_crlf("The following apply:\n(1) First item; and\n(2) Second item.\n");
}

Test(shard_sent, table_of_contents_is_not_sections)
{
    /* billsum: a table of contents lists the section headings; the real
     * headings come later with text under them */
    static const char T[] = "SECTION 1. SHORT TITLE; TABLE OF CONTENTS.\n\n"
                            "    (a) Short Title.--This Act may be cited as the ``Example Act''.\n"
                            "    (b) Table of Contents.--The table of contents is as follows:\n\n"
                            "Sec. 1. Short title; table of contents.\n"
                            "Sec. 2. Findings.\n"
                            "Sec. 3. Definitions.\n\n"
                            "SEC. 2. FINDINGS.\n\n    Congress finds that tables exist.\n\n"
                            "SEC. 3. DEFINITIONS.\n\n    In this Act, a table is a list.\n";
    SECTIONS(T, "111", "SECTION 1. SHORT TITLE; TABLE OF CONTENTS.", "SEC. 2. FINDINGS.", "SEC. 3. DEFINITIONS.");
    SENTS(T, "SECTION 1. SHORT TITLE; TABLE OF CONTENTS.",
          "(a) Short Title.--This Act may be cited as the ``Example Act''.",
          "(b) Table of Contents.--The table of contents is as follows:", "Sec. 1. Short title; table of contents.",
          "Sec. 2. Findings.", "Sec. 3. Definitions.", "SEC. 2. FINDINGS.", "Congress finds that tables exist.",
          "SEC. 3. DEFINITIONS.", "In this Act, a table is a list.");
    /* shell-comment licences are not markdown headings */
    static const char C[] = "# Copyright (c) 2006  Micah Cowan\n#\n"
                            "# Redistribution of this program in any form, with or without\n"
                            "# modifications, is permitted, provided that the above copyright is\n"
                            "# retained in distributions of this program in source form.\n";
    SECTIONS(C, "1", "Copyright (c) 2006  Micah Cowan");
}

Test(shard_sent, analyze_terms_matches_analyze)
{
    folio_doc_t a, b;
    cr_assert_eq(tsh_analyze(&a, APACHE), FOLIO_OK);
    memset(&b, 0, sizeof b);
    b.text = strdup(APACHE);
    b.len = strlen(APACHE);
    cr_assert_eq(folio_doc_analyze_terms(&b), FOLIO_OK);
    cr_assert_eq(b.n_tokens, a.n_tokens);
    cr_assert_null(b.sents);
    cr_assert_eq(b.n_sents, 0);
    cr_assert_eq(b.n_sections, 0);
    cr_assert_arr_eq(b.hash, a.hash, 16);
    cr_assert_arr_eq(b.tokens, a.tokens, a.n_tokens * sizeof *a.tokens);
    cr_assert_arr_eq(b.term_hashes, a.term_hashes, a.n_tokens * 8);
    cr_assert_arr_eq(b.stem_hashes, a.stem_hashes, a.n_tokens * 8);
    /* then the full analysis on the same document */
    cr_assert_eq(folio_doc_analyze(&b), FOLIO_OK);
    cr_assert_eq(b.n_sents, a.n_sents);
    folio_doc_clear(&a);
    folio_doc_clear(&b);
    cr_assert_eq(tsh_analyze(&a, " \n "), FOLIO_ERR_EMPTY);
    cr_assert_eq(folio_doc_analyze_terms(&a), FOLIO_ERR_EMPTY);
    folio_doc_clear(&a);
}
