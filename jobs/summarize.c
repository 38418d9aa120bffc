/* jobs/summarize.c — extractive summaries under a word or sentence budget.
 *
 * Sentence relevance (each feature scaled to [0, 1] by its maximum over the
 * document, then weighted by folio_summarize_cfg_t; defaults in brackets):
 *   centroid  [1]   TF-IDF cosine of the sentence to the document centroid
 *                   (the sum of the unit TF-IDF vectors of all sentences;
 *                   in-document sentence idf): the TF-IDF centroid method
 *                   and, at the same time, LexRank-style centrality (a unit
 *                   vector's dot with the sum of all unit vectors is n x its
 *                   mean cosine to the others) in linear time;
 *   central   [0]   content density: idf mass of the sentence's recurring
 *                   terms per token (lowered ROUGE on dev: kept off);
 *   position  [0.4] 1 / (1 + i / pos_tau), pos_tau = 8, and half that
 *                   prior again from the start of each section;
 *   salience  [0]   attention-derived salience stored by ingest (+0.4 R1 on
 *                   pubmed-dev but -0.9 R1 on billsum-dev at 0.6: off);
 *   dense     [1]   mean of the cosines of the stored contextual sentence
 *                   vector to the document vector and to its section's
 *                   vector (no-op when the store has no vectors).
 * Headings (section titles, all-caps lines) and sentences with fewer than
 * min_tokens index terms are not chosen.  Selection: MMR (lambda x relevance
 * - (1 - lambda) x the highest TF-IDF cosine to a chosen sentence); with
 * section_cover, each major section (top level, >= 3 sentences, best
 * sentence at least half as relevant as the document's best) first gets its
 * best sentence when the budget holds one average sentence per section.
 * The word budget is never exceeded: a sentence is taken only if it fits
 * whole.  Output in document order with byte offsets of the original text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "jobs_internal.h"

void folio_summarize_cfg_default(folio_summarize_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_words = 200;
    cfg->w_centroid = 1.0f;
    cfg->w_central = 0.0f;
    cfg->w_position = 0.4f;
    cfg->w_salience = 0.0f;
    cfg->w_dense = 1.0f;
    cfg->mmr_lambda = 0.6f;
    cfg->min_tokens = 4;
    cfg->section_cover = true;
    cfg->pos_tau = 8.0f;
}

static float dotf(const float *a, const float *b, uint32_t d)
{
    float s = 0;
    for (uint32_t i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

static float norm_f(const float *a, uint32_t d) { return sqrtf(dotf(a, a, d)); }

static float cosf_(const float *a, const float *b, uint32_t d)
{
    float na = norm_f(a, d), nb = norm_f(b, d);
    return na > 0 && nb > 0 ? dotf(a, b, d) / (na * nb) : 0.0f;
}

static void scale_max(float *x, uint32_t n)
{
    float mx = 0;
    for (uint32_t i = 0; i < n; i++) if (x[i] > mx) mx = x[i];
    if (mx > 0) for (uint32_t i = 0; i < n; i++) x[i] /= mx;
}

/* A section heading ("SEC. 2. FINDINGS.", "Introduction") or an all-caps
 * line: it names a topic but says nothing about it, so it is not chosen. */
bool jobs_is_heading(const folio_doc_view_t *v, uint32_t s)
{
    const folio_sentence_t *S = &v->sents[s];
    uint32_t sec = S->section;
    if (sec < v->n_sections) {
        const folio_section_t *X = &v->sections[sec];
        if (X->title_end > X->title_start && S->start >= X->title_start && S->end <= X->title_end) return true;
    }
    uint32_t up = 0, low = 0;
    for (uint32_t i = S->start; i < S->end; i++) {
        char c = v->text[i];
        up += c >= 'A' && c <= 'Z';
        low += c >= 'a' && c <= 'z';
    }
    return up >= 4 && up > 3 * low;
}

static int cmp_pick(const void *a, const void *b)
{
    const folio_pick_t *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

folio_status_t folio_summarize(const folio_doc_view_t *v, const folio_doc_feats_t *f,
                               const folio_summarize_cfg_t *cfg, folio_pick_t **out, uint32_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    FOLIO_CHECK_GENERIC(cfg->max_words || cfg->max_sents, FOLIO_ERR_ARG,
                        "summarize: a budget (--words or --sentences) is required");
    uint32_t ns = v->n_sents;
    if (ns == 0) return FOLIO_OK;
    uint32_t nterm = f->n_terms;
    folio_status_t st = FOLIO_OK;
    float *w = malloc((f->sent_off[ns] ? f->sent_off[ns] : 1) * sizeof *w); /* unit TF-IDF weights */
    float *cent = calloc(nterm ? nterm : 1, sizeof *cent);
    float *dense = calloc(nterm ? nterm : 1, sizeof *dense);
    float *fc = calloc(ns, sizeof *fc), *fd = calloc(ns, sizeof *fd), *fp = calloc(ns, sizeof *fp);
    float *fs = calloc(ns, sizeof *fs), *fv = calloc(ns, sizeof *fv), *rel = calloc(ns, sizeof *rel);
    uint32_t *cover = NULL, n_cover = 0;
    float *maxsim = calloc(ns, sizeof *maxsim);
    uint8_t *chosen = calloc(ns, 1), *ok = calloc(ns, 1);
    folio_pick_t *picks = calloc(ns, sizeof *picks);
    if (!w || !cent || !dense || !fc || !fd || !fp || !fs || !fv || !rel || !maxsim || !chosen || !ok || !picks) {
        st = FOLIO_ERR_NOMEM;
        goto done;
    }
    /* unit TF-IDF vectors and the centroid */
    for (uint32_t s = 0; s < ns; s++) {
        double nn = 0;
        for (uint32_t k = f->sent_off[s]; k < f->sent_off[s + 1]; k++) {
            float x = (1.0f + logf((float)f->tf[k])) * f->idf[f->term[k]];
            w[k] = x;
            nn += (double)x * x;
        }
        float inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
        for (uint32_t k = f->sent_off[s]; k < f->sent_off[s + 1]; k++) {
            w[k] *= inv;
            cent[f->term[k]] += w[k];
        }
    }
    double cn = 0;
    for (uint32_t t = 0; t < nterm; t++) cn += (double)cent[t] * cent[t];
    float cinv = cn > 0 ? (float)(1.0 / sqrt(cn)) : 0.0f;
    for (uint32_t s = 0; s < ns; s++) {
        float dc = 0, dens = 0;
        uint32_t nterms_s = f->sent_off[s + 1] - f->sent_off[s];
        for (uint32_t k = f->sent_off[s]; k < f->sent_off[s + 1]; k++) {
            dc += w[k] * cent[f->term[k]];
            if (f->sf[f->term[k]] > 1) dens += f->idf[f->term[k]];
        }
        fc[s] = dc * cinv;
        fd[s] = nterms_s ? dens / sqrtf((float)f->n_all[s] + 1.0f) : 0.0f;
        ok[s] = nterms_s >= cfg->min_tokens && !jobs_is_heading(v, s);
    }
    /* position prior: start of the document, and start of each section */
    for (uint32_t s = 0; s < ns; s++) {
        float p = 1.0f / (1.0f + (float)s / cfg->pos_tau);
        uint32_t sec = v->sents[s].section;
        if (sec < v->n_sections && v->n_sections > 1) {
            uint32_t off = s - v->sections[sec].sent_begin;
            float q = 0.5f / (1.0f + (float)off);
            if (q > p) p = q;
        }
        fp[s] = p;
    }
    if (v->salience) for (uint32_t s = 0; s < ns; s++) fs[s] = v->salience[s] > 0 ? v->salience[s] : 0;
    if (v->sent_vecs && v->d) {
        for (uint32_t s = 0; s < ns; s++) {
            const float *sv = v->sent_vecs + (size_t)s * v->d;
            float a = v->doc_vec ? cosf_(sv, v->doc_vec, v->d) : 0.0f, b = 0.0f;
            uint32_t sec = v->sents[s].section;
            if (v->section_vecs && sec < v->n_sections) b = cosf_(sv, v->section_vecs + (size_t)sec * v->d, v->d);
            fv[s] = 0.5f * (a > 0 ? a : 0) + 0.5f * (b > 0 ? b : 0);
        }
    }
    scale_max(fc, ns);
    scale_max(fd, ns);
    scale_max(fs, ns);
    scale_max(fv, ns);
    for (uint32_t s = 0; s < ns; s++)
        rel[s] = cfg->w_centroid * fc[s] + cfg->w_central * fd[s] + cfg->w_position * fp[s] +
                 cfg->w_salience * fs[s] + cfg->w_dense * fv[s];

    /* greedy MMR under the budget */
    uint32_t words_left = cfg->max_words ? cfg->max_words : UINT32_MAX;
    uint32_t sents_left = cfg->max_sents ? cfg->max_sents : UINT32_MAX;
    uint32_t n = 0;
    float lam = cfg->mmr_lambda;
    /* Section coverage: when the document has several major sections
     * (top-level, at least 3 sentences, whose best sentence is at least half
     * as relevant as the document's best) and the budget holds one average
     * sentence per section, each such section first gets its best sentence
     * (sections taken by decreasing best relevance; MMR applies). */
    if (cfg->section_cover && v->n_sections > 1) {
        cover = malloc(v->n_sections * sizeof *cover);
        if (!cover) { st = FOLIO_ERR_NOMEM; goto done; }
        float gbest = 0;
        double wsum = 0;
        uint32_t wn = 0;
        for (uint32_t s = 0; s < ns; s++) if (ok[s]) { if (rel[s] > gbest) gbest = rel[s]; wsum += f->words[s]; wn++; }
        for (uint32_t x = 0; x < v->n_sections; x++) {
            const folio_section_t *X = &v->sections[x];
            if (X->level > 1 || X->sent_end - X->sent_begin < 3) continue;
            float sb = 0;
            for (uint32_t s = X->sent_begin; s < X->sent_end && s < ns; s++) if (ok[s] && rel[s] > sb) sb = rel[s];
            if (sb >= 0.5f * gbest && sb > 0) cover[n_cover++] = x;
        }
        double avgw = wn ? wsum / wn : 1;
        if (n_cover < 2 || (cfg->max_words && (double)n_cover * avgw > cfg->max_words) ||
            (cfg->max_sents && n_cover > cfg->max_sents))
            n_cover = 0;
    }
    uint32_t cover_i = 0;
    for (;;) {
        if (sents_left == 0) break;
        uint32_t lo = 0, hi = ns;
        if (cover_i < n_cover) { /* restrict this pick to the next section to cover */
            lo = v->sections[cover[cover_i]].sent_begin;
            hi = v->sections[cover[cover_i]].sent_end < ns ? v->sections[cover[cover_i]].sent_end : ns;
            cover_i++;
        }
        int64_t best = -1;
        float bestv = -INFINITY;
        for (uint32_t s = lo; s < hi; s++) {
            if (chosen[s] || !ok[s] || f->words[s] > words_left || f->words[s] == 0) continue;
            float val = lam * rel[s] - (1.0f - lam) * maxsim[s];
            if (val > bestv) { bestv = val; best = s; }
        }
        if (best < 0) {
            if (lo != 0 || hi != ns) continue; /* nothing fits in that section */
            break;
        }
        uint32_t b = (uint32_t)best;
        chosen[b] = 1;
        picks[n].index = b;
        picks[n].start = v->sents[b].start;
        picks[n].end = v->sents[b].end;
        picks[n].score = rel[b];
        n++;
        words_left -= f->words[b];
        sents_left--;
        /* update max similarity of every candidate to the chosen set */
        for (uint32_t k = f->sent_off[b]; k < f->sent_off[b + 1]; k++) dense[f->term[k]] = w[k];
        for (uint32_t s = 0; s < ns; s++) {
            if (chosen[s]) continue;
            float d = 0;
            for (uint32_t k = f->sent_off[s]; k < f->sent_off[s + 1]; k++) d += w[k] * dense[f->term[k]];
            if (d > maxsim[s]) maxsim[s] = d;
        }
        for (uint32_t k = f->sent_off[b]; k < f->sent_off[b + 1]; k++) dense[f->term[k]] = 0;
    }
    /* Fallback: a document whose sentences all fall below min_tokens still
     * gets its best-fitting sentences (never an empty summary when one fits). */
    if (n == 0) {
        for (uint32_t s = 0; s < ns && sents_left; s++) {
            if (f->words[s] == 0 || f->words[s] > words_left) continue;
            picks[n].index = s;
            picks[n].start = v->sents[s].start;
            picks[n].end = v->sents[s].end;
            picks[n].score = rel[s];
            n++;
            words_left -= f->words[s];
            sents_left--;
        }
    }
    qsort(picks, n, sizeof *picks, cmp_pick);
    *out = picks;
    *n_out = n;
    picks = NULL;
done:
    free(w); free(cent); free(dense); free(fc); free(fd); free(fp); free(fs); free(fv); free(rel);
    free(maxsim); free(chosen); free(ok); free(picks); free(cover);
    return st;
}

folio_status_t folio_summary_json(const folio_doc_view_t *v, const folio_pick_t *p, uint32_t n,
                                  folio_buf_t *out)
{
    FOLIO_TRY(folio_buf_append(out, "{\"doc\":", 7));
    FOLIO_TRY(jobs_buf_json_str(out, v->id, strlen(v->id)));
    FOLIO_TRY(folio_buf_append(out, ",\"sentences\":[", 14));
    for (uint32_t i = 0; i < n; i++) {
        FOLIO_TRY(folio_buf_printf(out, "%s{\"index\":%u,\"start\":%u,\"end\":%u,\"text\":", i ? "," : "",
                                   p[i].index, p[i].start, p[i].end));
        FOLIO_TRY(jobs_buf_json_str(out, v->text + p[i].start, p[i].end - p[i].start));
        FOLIO_TRY(folio_buf_printf(out, ",\"score\":%.6g}", (double)p[i].score));
    }
    return folio_buf_append(out, "]}", 2);
}
