/* pipeline/round.c — one round of distributed work: rank 0 hands documents
 * to ranks, every rank encodes, results come back to rank 0 which commits.
 *
 * A round holds up to ROUND_BYTES of text.  Documents longer than a rank's
 * share of the round (and long enough that every rank gets at least W
 * tokens) are split into contiguous block ranges over all ranks and encoded
 * collectively (halo + summary exchange through workers/); the others are
 * packed whole onto ranks, largest first onto the rank that would finish
 * it first at the ranks' measured rates (tokens a second over the recent
 * rounds, by tokens until every rank was measured), so the ranks balance
 * time rather than document counts: rank 0, which also reads and commits,
 * gets less.  Either way the results are bit-identical to a
 * single-process run.
 *
 * Messages (tags): ROUND header and item table by MPI_Bcast; a payload
 * (id, text, rank 0's analysis, IDF weights) by MPI_Send to the owner, or
 * for a split document each rank's slice (its tokens and halos, 1/P of
 * the document) to that rank; a result (vectors, salience) by MPI_Send to
 * rank 0.
 */
#include "round.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_PAYLOAD = 101, TAG_RESULT = 102, TAG_RESULT_BODY = 103, TAG_PAYLOAD_BODY = 104, TAG_DONE = 105,
       TAG_MORE = 106, TAG_MORE_IDX = 107 };
enum { META_OWNER, META_IDLEN, META_TEXTLEN, META_NTOK, META_NSENT, META_NSEC, META_N };

/* A payload carries the analysis rank 0 already made (hash, tokens,
 * sentences, sections) with the id, the text and the IDF weights: copying
 * ~18 bytes a token costs far less than analyzing the text again on the
 * worker, which on a rank that shares the node's cores with rank 0 was a
 * serial step of every round.  The term and stem hashes stay behind: only
 * rank 0's store uses them (a split 10M-token document would otherwise
 * send 160 MB more to every rank).  Layout (8-byte aligned parts):
 * id, text | hash[16] | tokens | sentences | sections | weights. */
typedef struct {
    size_t hash, tokens, sents, secs, weights, total;
} payload_layout_t;

static size_t align8(size_t x) { return (x + 7) & ~(size_t)7; }

/* The part of a document a payload carries: tokens [x0, x1) and text
 * bytes [b0, b1) (every byte those tokens cover), with every sentence and
 * section.  A rank that computes a range of a split document needs only
 * its range and halos (1/P of the text, spans and weights); a whole
 * document's slice is all of it. */
typedef struct { uint64_t x0, x1, b0, b1; } payload_slice_t;

static payload_layout_t payload_layout(const int64_t *meta, const payload_slice_t *sl)
{
    size_t n = (size_t)(sl->x1 - sl->x0);
    payload_layout_t l;
    size_t at = sizeof *sl;
    l.hash = align8(at + (size_t)meta[META_IDLEN] + (size_t)(sl->b1 - sl->b0));
    l.tokens = l.hash + 16;
    l.sents = align8(l.tokens + n * sizeof(folio_span_t));
    l.secs = align8(l.sents + (size_t)meta[META_NSENT] * sizeof(folio_sentence_t));
    l.weights = align8(l.secs + (size_t)meta[META_NSEC] * sizeof(folio_section_t));
    l.total = l.weights + n * sizeof(float);
    return l;
}

static payload_slice_t slice_whole(const int64_t *meta)
{
    payload_slice_t sl = {0, (uint64_t)meta[META_NTOK], 0, (uint64_t)meta[META_TEXTLEN]};
    return sl;
}

/* Rank r's tokens of a document split over P ranks (block ranges; the
 * same arithmetic as the encode below). */
static void split_range(uint64_t n, const folio_pattern_t *p, int r, int P, uint64_t *t0, uint64_t *t1)
{
    uint64_t nb = (n + p->block - 1) / p->block;
    uint64_t b0 = nb * (uint64_t)r / (uint64_t)P, b1 = nb * (uint64_t)(r + 1) / (uint64_t)P;
    *t0 = b0 * p->block;
    *t1 = b1 * p->block < n ? b1 * p->block : n;
}

/* Rank r's slice: its tokens and W-token halos on the sides it has. */
static payload_slice_t slice_split(const folio_doc_t *d, const folio_pattern_t *p, int r, int P)
{
    uint64_t n = d->n_tokens, t0, t1, W = p->window < n ? p->window : n;
    split_range(n, p, r, P, &t0, &t1);
    payload_slice_t sl;
    sl.x0 = r > 0 ? (t0 >= W ? t0 - W : 0) : t0;
    sl.x1 = r + 1 < P ? (t1 + W < n ? t1 + W : n) : t1;
    sl.b0 = d->tokens[sl.x0].start;
    sl.b1 = d->tokens[sl.x1 - 1].end;
    return sl;
}

static void payload_pack(const folio_doc_t *doc, const float *weights, const int64_t *meta,
                         const payload_slice_t *sl, char *buf)
{
    payload_layout_t l = payload_layout(meta, sl);
    size_t il = strlen(doc->id), n = (size_t)(sl->x1 - sl->x0);
    memcpy(buf, sl, sizeof *sl);
    memcpy(buf + sizeof *sl, doc->id, il);
    memcpy(buf + sizeof *sl + il, doc->text + sl->b0, (size_t)(sl->b1 - sl->b0));
    memcpy(buf + l.hash, doc->hash, 16);
    memcpy(buf + l.tokens, doc->tokens + sl->x0, n * sizeof *doc->tokens);
    memcpy(buf + l.sents, doc->sents, (size_t)doc->n_sents * sizeof *doc->sents);
    memcpy(buf + l.secs, doc->sections, (size_t)doc->n_sections * sizeof *doc->sections);
    memcpy(buf + l.weights, weights + sl->x0, n * sizeof(float));
}

/* A worker rank's copy of rank 0's analyzed document, without term and
 * stem hashes (NULL): every array with the whole document's size, the ones
 * a slice fills only in part calloc'd (large ones are fresh pages that cost
 * no memory until written), the counts set. */
static folio_status_t payload_doc_alloc(const int64_t *meta, folio_doc_t *doc, float **weights)
{
    const size_t il = (size_t)meta[META_IDLEN], tl = (size_t)meta[META_TEXTLEN], n = (size_t)meta[META_NTOK];
    const size_t ns = (size_t)meta[META_NSENT], nsec = (size_t)meta[META_NSEC];
    memset(doc, 0, sizeof *doc);
    doc->id = calloc(il + 1, 1);
    doc->text = calloc(tl + 1, 1);
    doc->title = calloc(1, 1);
    doc->tokens = calloc(n ? n : 1, sizeof *doc->tokens);
    doc->sents = malloc(ns ? ns * sizeof *doc->sents : 1);
    doc->sections = malloc(nsec ? nsec * sizeof *doc->sections : 1);
    *weights = calloc(n ? n : 1, sizeof(float));
    if (!doc->id || !doc->text || !doc->title || !doc->tokens || !doc->sents || !doc->sections || !*weights)
        return FOLIO_ERR_NOMEM; /* the caller clears doc and weights */
    doc->len = tl;
    doc->n_tokens = (uint32_t)n;
    doc->n_sents = (uint32_t)ns;
    doc->n_sections = (uint32_t)nsec;
    return FOLIO_OK;
}

/* Rebuilds rank 0's analyzed document from a payload (whole documents of a
 * batch). */
static folio_status_t payload_unpack(const char *buf, const int64_t *meta, folio_doc_t *doc, float **weights)
{
    payload_slice_t sl;
    memcpy(&sl, buf, sizeof sl);
    const size_t il = (size_t)meta[META_IDLEN], tl = (size_t)meta[META_TEXTLEN], n = (size_t)meta[META_NTOK];
    FOLIO_CHECK_GENERIC(sl.x0 < sl.x1 && sl.x1 <= n && sl.b0 <= sl.b1 && sl.b1 <= tl, FOLIO_ERR_INTERNAL,
                        "payload: bad slice");
    FOLIO_TRY(payload_doc_alloc(meta, doc, weights));
    payload_layout_t l = payload_layout(meta, &sl);
    memcpy(doc->id, buf + sizeof sl, il);
    memcpy(doc->text + sl.b0, buf + sizeof sl + il, (size_t)(sl.b1 - sl.b0));
    memcpy(doc->hash, buf + l.hash, 16);
    memcpy(doc->tokens + sl.x0, buf + l.tokens, (size_t)(sl.x1 - sl.x0) * sizeof *doc->tokens);
    memcpy(doc->sents, buf + l.sents, (size_t)doc->n_sents * sizeof *doc->sents);
    memcpy(doc->sections, buf + l.secs, (size_t)doc->n_sections * sizeof *doc->sections);
    memcpy(*weights + sl.x0, buf + l.weights, (size_t)(sl.x1 - sl.x0) * sizeof(float));
    return FOLIO_OK;
}

/* Completes a request without spinning on a core.  Open MPI polls while it
 * waits; ranks that share a node's cores (-np 2 on 2 cores) would then burn
 * the core that rank 0's main thread or its commit thread needs: a worker
 * rank waits for the next round while rank 0 reads and analyzes it, and
 * rank 0 waits for the workers' results while its commit thread runs.
 * Sleeps between tests, 50 us growing to 1 ms (rounds take 0.1 s and more). */
static folio_status_t wait_idle(MPI_Request *req, MPI_Status *status)
{
    long ns = 50000;
    for (;;) {
        int done = 0;
        FOLIO_CHECK_MPI(MPI_Test(req, &done, status ? status : MPI_STATUS_IGNORE));
        if (done) return FOLIO_OK;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
        if (ns < 1000000) ns *= 2;
    }
}

/* Completes sends of bulk data that the peer is receiving now, polling
 * without sleeps.  Open MPI moves a large message through shared memory
 * in fragments the sender pushes from inside MPI calls unless the kernel
 * lets the receiver copy it directly (CMA, often not allowed in
 * containers): under wait_idle's sleeps that was ~2 fragments a
 * millisecond, 58 MB/s -- 0.7 s for the 41 MB slice of a 4M-token split
 * document on the GPU host.  Only for sends whose receiver is already
 * waiting for them, so the spinning lasts as long as the copy. */
static folio_status_t wait_all_busy(MPI_Request *reqs, size_t n)
{
    folio_status_t st = FOLIO_OK;
    for (size_t k = 0; k < n; k++)
        if (MPI_Wait(&reqs[k], MPI_STATUS_IGNORE) != MPI_SUCCESS && st == FOLIO_OK) st = FOLIO_ERR_MPI;
    return st;
}

/* Receives a byte buffer in int-sized pieces. */
static folio_status_t recv_bytes(char *buf, size_t n, int from, int tag, MPI_Comm comm)
{
    const size_t step = (size_t)1 << 30;
    for (size_t o = 0; o < n; o += step) {
        int c = (int)(n - o < step ? n - o : step);
        FOLIO_CHECK_MPI(MPI_Recv(buf + o, c, MPI_BYTE, from, tag, comm, MPI_STATUS_IGNORE));
    }
    return FOLIO_OK;
}

/* ------------------------------------------------------------ results */

typedef struct {
    int64_t item, status, d, nb, ns, nsec;
} result_head_t;

/* Where each table starts (in floats after the head), and the total: the
 * one description of the layout that packing, preallocating and unpacking
 * share. */
typedef struct {
    size_t sent, blocks, sections, doc, salience, total;
} result_layout_t;

static result_layout_t result_layout(const result_head_t *h)
{
    result_layout_t l;
    l.sent = 0;
    l.blocks = l.sent + (size_t)(h->ns * h->d);
    l.sections = l.blocks + (size_t)(h->nb * h->d);
    l.doc = l.sections + (size_t)(h->nsec * h->d);
    l.salience = l.doc + (size_t)h->d;
    l.total = l.salience + (size_t)h->ns;
    return l;
}

static size_t result_floats(const result_head_t *h) { return result_layout(h).total; }

/* Packs results into one malloc'd buffer (the wire format rank 0 receives). */
static char *pack_result(int64_t item, folio_status_t est, const folio_doc_t *doc,
                         const folio_doc_results_t *res, size_t *bytes_out)
{
    result_head_t h = {item, est, 0, 0, 0, 0};
    if (est == FOLIO_OK) {
        h.d = res->d;
        h.nb = res->n_blocks;
        h.ns = doc->n_sents;
        h.nsec = doc->n_sections;
    }
    size_t nf = result_floats(&h), bytes = sizeof h + nf * sizeof(float);
    char *buf = malloc(bytes);
    if (!buf) return NULL;
    memcpy(buf, &h, sizeof h);
    float *f = (float *)(buf + sizeof h);
    if (est == FOLIO_OK) {
        /* a long document's tables are hundreds of MB of fresh pages: copied
         * by several threads (one thread, inside the short documents'
         * parallel region) */
        const result_layout_t l = result_layout(&h);
        folio_memcpy_par(f + l.sent, res->sent_vecs, (l.blocks - l.sent) * 4, 0);
        folio_memcpy_par(f + l.blocks, res->block_vecs, (l.sections - l.blocks) * 4, 0);
        folio_memcpy_par(f + l.sections, res->section_vecs, (l.doc - l.sections) * 4, 0);
        memcpy(f + l.doc, res->doc_vec, (l.salience - l.doc) * 4);
        memcpy(f + l.salience, res->salience, (l.total - l.salience) * 4);
    }
    *bytes_out = bytes;
    return buf;
}

/* A result message for doc allocated before its encode, with dest set to
 * its tables, so that the worker writes the results where they are sent
 * or committed from (pack_result's copy of a long document's hundreds of
 * MB of fresh pages was 0.01-0.02 s on the single writer).  NULL when the
 * shape is unknown or memory is short: the caller then encodes into the
 * worker's buffers and packs as before. */
static char *result_alloc(const folio_worker_t *w, int64_t item, const folio_doc_t *doc, folio_result_dest_t *dest,
                          size_t *bytes_out)
{
    uint32_t d, nb;
    if (folio_worker_result_shape(w, doc, &d, &nb) != FOLIO_OK) return NULL;
    result_head_t h = {item, FOLIO_OK, d, nb, doc->n_sents, doc->n_sections};
    const size_t bytes = sizeof h + result_floats(&h) * sizeof(float);
    char *buf = malloc(bytes);
    if (!buf) return NULL;
    memcpy(buf, &h, sizeof h);
    float *f = (float *)(buf + sizeof h);
    const result_layout_t l = result_layout(&h);
    dest->sent = f + l.sent;
    dest->blocks = f + l.blocks;
    dest->sections = f + l.sections;
    dest->doc = f + l.doc;
    dest->salience = f + l.salience;
    *bytes_out = bytes;
    return buf;
}

/* Encodes doc (tokens [t0, t1) over x; x NULL: whole, on this rank) and
 * returns its result message on rank 0 (NULL on other ranks, and when
 * memory is short).  direct: the worker writes into the message (else
 * into its own buffers, copied after).  *est: the encode's status; a
 * failed encode still returns a message, the failure's (rank 0 commits a
 * whole document's as rejected). */
static char *encode_packed(folio_worker_t *w, folio_exchange_t *x, int64_t item, const folio_doc_t *doc,
                           const float *weights, uint64_t t0, uint64_t t1, bool direct, size_t *bytes,
                           folio_status_t *est)
{
    const bool mine = !x || folio_exchange_rank(x) == 0;
    folio_result_dest_t dest;
    char *buf = mine && direct ? result_alloc(w, item, doc, &dest, bytes) : NULL;
    folio_doc_results_t res;
    *est = x ? folio_worker_encode_range(w, x, doc, weights, t0, t1, buf ? &dest : NULL, &res)
             : folio_worker_encode(w, doc, weights, buf ? &dest : NULL, &res);
    if (!mine) return NULL;
    if (*est != FOLIO_OK || !buf) { /* a failure message, or the copy */
        free(buf);
        return pack_result(item, *est, doc, &res, bytes);
    }
    return buf;
}

/* Unpacks a result buffer: views into buf. */
static folio_status_t unpack_result(const char *buf, size_t bytes, int64_t n_items, const char *spec,
                                    result_head_t *h, folio_doc_results_t *res)
{
    memcpy(h, buf, sizeof *h);
    if (h->item < 0 || h->item >= n_items || bytes != sizeof *h + result_floats(h) * sizeof(float))
        return FOLIO_ERR_INTERNAL;
    memset(res, 0, sizeof *res);
    if (h->status != FOLIO_OK) return FOLIO_OK;
    const float *f = (const float *)(buf + sizeof *h);
    const result_layout_t l = result_layout(h);
    res->pattern = spec;
    res->d = (uint32_t)h->d;
    res->n_blocks = (uint32_t)h->nb;
    res->sent_vecs = f + l.sent;
    res->block_vecs = f + l.blocks;
    res->section_vecs = f + l.sections;
    res->doc_vec = f + l.doc;
    res->salience = f + l.salience;
    return FOLIO_OK;
}

/* Room for k more requests in *reqs. */
static folio_status_t reqs_reserve(MPI_Request **reqs, size_t n, size_t *cap, size_t k)
{
    if (n + k <= *cap) return FOLIO_OK;
    size_t nc = (n + k) * 2;
    MPI_Request *r = realloc(*reqs, nc * sizeof *r);
    FOLIO_CHECK_ALLOC(r);
    *reqs = r;
    *cap = nc;
    return FOLIO_OK;
}

/* Starts sending n bytes to rank `to` in int-sized pieces; adds the
 * requests to *reqs.  buf must live until they end. */
static folio_status_t isend_bytes(const char *buf, size_t bytes, int to, int tag, MPI_Comm comm,
                                  MPI_Request **reqs, size_t *n, size_t *cap)
{
    const size_t step = (size_t)1 << 30;
    FOLIO_TRY(reqs_reserve(reqs, *n, cap, 1 + bytes / step));
    for (size_t o = 0; o < bytes; o += step) {
        int c = (int)(bytes - o < step ? bytes - o : step);
        FOLIO_CHECK_MPI(MPI_Isend(buf + o, c, MPI_BYTE, to, tag, comm, &(*reqs)[(*n)++]));
    }
    return FOLIO_OK;
}

/* Starts sending a result to rank 0: its size first (so rank 0 can allocate
 * before the possibly huge body), then the body.  *sz must live until the
 * requests end. */
static folio_status_t send_result_start(const char *buf, size_t bytes, uint64_t *sz, MPI_Comm comm,
                                        MPI_Request **reqs, size_t *n, size_t *cap)
{
    FOLIO_TRY(reqs_reserve(reqs, *n, cap, 1));
    *sz = bytes;
    FOLIO_CHECK_MPI(MPI_Isend(sz, 1, MPI_UINT64_T, 0, TAG_RESULT, comm, &(*reqs)[(*n)++]));
    return isend_bytes(buf, bytes, 0, TAG_RESULT_BODY, comm, reqs, n, cap);
}

/* idx[0..n) reordered longest document first, ties by index (stable
 * insertion sort: a round holds at most a few thousand items). */
static void sort_longest_first(const folio_round_item_t *it, int64_t *idx, int64_t n)
{
    for (int64_t a = 1; a < n; a++) {
        int64_t v = idx[a], b = a;
        while (b > 0 && it[idx[b - 1]].doc.n_tokens < it[v].doc.n_tokens) { idx[b] = idx[b - 1]; b--; }
        idx[b] = v;
    }
}


/* On a GPU the device, not the rank's threads, works inside a document: a
 * thread per document (each thread's worker has its own stream and device
 * buffers) keeps the device busy with several documents at once and runs
 * their host work (staging, pooling) in parallel.  The bound keeps each
 * thread's device buffers under ~1 GB. */
enum { ROUND_SMALL_TOKENS_GPU = 262144 };

/* ------------------------------------------------------------ whole documents
 *
 * A rank's whole documents of a round form a queue, largest first: the
 * rank's threads take from the front.  Rank 0 also takes from the back, the
 * smallest, to give them to a worker rank that has finished everything it
 * had (a DONE line says so) while rank 0 still has a queue: the round then
 * ends when both are done instead of the worker waiting for rank 0.  The
 * packing gives rank 0 a little more than its measured rate says
 * (FOLIO_ROUND_RANK0_BIAS), so that it is rather the one that gives.  Which
 * rank computes a document never changes its results. */

/* Sends documents idx[0..n) whole to rank r as one message (returns once
 * it is received): per document its payload's size (uint64) and the
 * payload, each part 8-byte aligned.  One message instead of one a
 * document: each costs a round trip, and a round has hundreds. */
static folio_status_t send_batch(const folio_round_item_t *items, const int64_t *idx, int64_t n, const int64_t *meta,
                                 int r, MPI_Comm comm)
{
    uint64_t sz = 0;
    for (int64_t k = 0; k < n; k++) {
        payload_slice_t sl = slice_whole(meta + idx[k] * META_N);
        sz += 8 + align8(payload_layout(meta + idx[k] * META_N, &sl).total);
    }
    char *buf = malloc(sz + 1);
    FOLIO_CHECK_ALLOC(buf);
    size_t at = 0;
    for (int64_t k = 0; k < n; k++) {
        const int64_t *mi = meta + idx[k] * META_N;
        payload_slice_t sl = slice_whole(mi);
        uint64_t one = payload_layout(mi, &sl).total;
        memcpy(buf + at, &one, 8);
        payload_pack(&items[idx[k]].doc, items[idx[k]].weights, mi, &sl, buf + at + 8);
        at += 8 + align8(one);
    }
    folio_status_t st = FOLIO_OK;
    if (MPI_Send(&sz, 1, MPI_UINT64_T, r, TAG_PAYLOAD, comm) != MPI_SUCCESS) st = FOLIO_ERR_MPI;
    MPI_Request *reqs = NULL;
    size_t nreq = 0, cap = 0;
    if (st == FOLIO_OK) st = isend_bytes(buf, sz, r, TAG_PAYLOAD_BODY, comm, &reqs, &nreq, &cap);
    /* rank r receives it now (recv_batch) */
    folio_status_t wst = wait_all_busy(reqs, nreq);
    if (st == FOLIO_OK) st = wst;
    free(reqs);
    free(buf);
    return st;
}

/* Receives what send_batch sent: documents idx[0..n) into it[]. */
static folio_status_t recv_batch(const int64_t *meta, const int64_t *idx, int64_t n, folio_round_item_t *it,
                                 MPI_Comm comm)
{
    uint64_t sz = 0;
    FOLIO_CHECK_MPI(MPI_Recv(&sz, 1, MPI_UINT64_T, 0, TAG_PAYLOAD, comm, MPI_STATUS_IGNORE));
    char *buf = malloc(sz + 1);
    FOLIO_CHECK_ALLOC(buf);
    folio_status_t st = recv_bytes(buf, sz, 0, TAG_PAYLOAD_BODY, comm);
    size_t at = 0;
    for (int64_t k = 0; st == FOLIO_OK && k < n; k++) {
        uint64_t one = 0;
        if (at + 8 > sz) { st = FOLIO_ERR_INTERNAL; break; }
        memcpy(&one, buf + at, 8);
        if (at + 8 + one > sz) { st = FOLIO_ERR_INTERNAL; break; }
        st = payload_unpack(buf + at + 8, meta + idx[k] * META_N, &it[idx[k]].doc, &it[idx[k]].weights);
        at += 8 + align8(one);
    }
    free(buf);
    return st;
}

/* A split document's slice travels as its parts, sent straight from rank
 * 0's arrays and received straight into their place in the worker's
 * (whole-document sized, calloc'd) arrays: no packing on rank 0, no
 * unpacking on the worker -- the other ranks wait for the slowest worker at
 * the document's first exchange, and the unpacking copy of a 4M-token
 * document's 41 MB slice was most of that wait.  The slice header goes
 * first (TAG_PAYLOAD), then the parts in this order (TAG_PAYLOAD_BODY; MPI
 * keeps one sender's messages of a tag in order). */
enum { SPLIT_PARTS = 7 };

static void split_parts(const folio_doc_t *doc, const float *weights, const int64_t *mi, const payload_slice_t *sl,
                        char *p[SPLIT_PARTS], size_t n[SPLIT_PARTS])
{
    const size_t nt = (size_t)(sl->x1 - sl->x0);
    p[0] = (char *)doc->id;                  n[0] = (size_t)mi[META_IDLEN];
    p[1] = (char *)doc->text + sl->b0;       n[1] = (size_t)(sl->b1 - sl->b0);
    p[2] = (char *)doc->hash;                n[2] = 16;
    p[3] = (char *)(doc->tokens + sl->x0);   n[3] = nt * sizeof *doc->tokens;
    p[4] = (char *)doc->sents;               n[4] = (size_t)mi[META_NSENT] * sizeof *doc->sents;
    p[5] = (char *)doc->sections;            n[5] = (size_t)mi[META_NSEC] * sizeof *doc->sections;
    p[6] = (char *)(weights + sl->x0);       n[6] = nt * sizeof *weights;
}

/* Rank 0: starts sending rank r its slice of doc (the header is sent by the
 * caller); the requests join *reqs. */
static folio_status_t send_split_parts(const folio_doc_t *doc, const float *weights, const int64_t *mi,
                                       const payload_slice_t *sl, int r, MPI_Comm comm, MPI_Request **reqs,
                                       size_t *nreq, size_t *cap)
{
    char *p[SPLIT_PARTS];
    size_t n[SPLIT_PARTS];
    split_parts(doc, weights, mi, sl, p, n);
    for (int k = 0; k < SPLIT_PARTS; k++) FOLIO_TRY(isend_bytes(p[k], n[k], r, TAG_PAYLOAD_BODY, comm, reqs, nreq, cap));
    return FOLIO_OK;
}

/* A worker rank: its slice of a split document, into item. */
static folio_status_t recv_split(const int64_t *mi, folio_round_item_t *item, MPI_Comm comm)
{
    const double t0 = folio_now();
    payload_slice_t sl;
    FOLIO_CHECK_MPI(MPI_Recv(&sl, 4, MPI_UINT64_T, 0, TAG_PAYLOAD, comm, MPI_STATUS_IGNORE));
    const double t1 = folio_now();
    /* a bad header means the parts that follow cannot be placed: the job
     * ends (the caller aborts), as on any failure to receive a payload */
    FOLIO_CHECK_GENERIC(sl.x0 < sl.x1 && sl.x1 <= (uint64_t)mi[META_NTOK] && sl.b0 <= sl.b1 &&
                        sl.b1 <= (uint64_t)mi[META_TEXTLEN], FOLIO_ERR_INTERNAL, "payload: bad slice");
    FOLIO_TRY(payload_doc_alloc(mi, &item->doc, &item->weights));
    char *p[SPLIT_PARTS];
    size_t sz[SPLIT_PARTS], total = 0;
    split_parts(&item->doc, item->weights, mi, &sl, p, sz);
    folio_status_t st = FOLIO_OK;
    for (int k = 0; st == FOLIO_OK && k < SPLIT_PARTS; k++) {
        st = recv_bytes(p[k], sz[k], 0, TAG_PAYLOAD_BODY, comm);
        total += sz[k];
    }
    /* a split document starts when its last rank has its slice: what this
     * rank spends here, rank 0 waits for at the document's first exchange */
    if (st == FOLIO_OK && getenv("FOLIO_PROFILE") && mi[META_NTOK] >= 65536)
        folio_log(FOLIO_LOG_INFO, "profile payload %s: %.1f MB, waited %.3fs, received into place in %.3fs",
                  item->doc.id, (double)total / 1e6, t1 - t0, folio_now() - t1);
    return st;
}

/* Rank 0's view of the worker ranks during a round. */
typedef struct {
    MPI_Comm comm;
    int P;
    bool give;              /* give documents away (CPU backend, P > 1)     */
    const folio_balance_t *bal;
    const int64_t *meta;
    int *pending;           /* (P) DONE lines still due from each rank       */
    uint64_t *tokens;       /* (P) tokens each rank computed this round      */
    double *seconds, *idle_s; /* (P) its compute and idle seconds            */
    int64_t *remote;        /* result messages rank 0 waits for (one a batch
                               of a worker rank; grows as it gives)         */
    uint64_t donated_docs, donated_tokens;
} donor_t;

static void donor_free(donor_t *d)
{
    free(d->pending);
    free(d->tokens);
    free(d->seconds);
    free(d->idle_s);
    memset(d, 0, sizeof *d);
}

static folio_status_t donor_init(donor_t *d, MPI_Comm comm, int P, const folio_round_ctx_t *rc, const int64_t *meta)
{
    memset(d, 0, sizeof *d);
    d->comm = comm;
    d->P = P;
    d->give = P > 1 && !rc->gpu;
    d->bal = rc->balance;
    d->meta = meta;
    d->pending = calloc((size_t)P, sizeof *d->pending);
    d->tokens = calloc((size_t)P, sizeof *d->tokens);
    d->seconds = calloc((size_t)P, sizeof *d->seconds);
    d->idle_s = calloc((size_t)P, sizeof *d->idle_s);
    if (!d->pending || !d->tokens || !d->seconds || !d->idle_s) {
        donor_free(d);
        return FOLIO_ERR_NOMEM;
    }
    for (int r = 1; r < P; r++) d->pending[r] = 1; /* every worker's own share */
    return FOLIO_OK;
}

/* Receives rank r's next DONE line: tokens, compute seconds, idle seconds
 * of the batch it finished. */
static folio_status_t donor_take_done(donor_t *d, int r)
{
    double line[3];
    MPI_Request req;
    FOLIO_CHECK_MPI(MPI_Irecv(line, 3, MPI_DOUBLE, r, TAG_DONE, d->comm, &req));
    FOLIO_TRY(wait_idle(&req, NULL));
    d->pending[r]--;
    d->tokens[r] += (uint64_t)line[0];
    d->seconds[r] += line[1];
    d->idle_s[r] += line[2];
    return FOLIO_OK;
}

/* Rank 0, between its documents (thread 0 only: it makes the MPI calls):
 * takes the DONE lines that came, and gives each idle worker rank the
 * smallest documents of [*front, *back) up to its share of them by the
 * measured rates. */
static folio_status_t donor_poll(donor_t *d, folio_round_item_t *it, int64_t *idx, int64_t *front, int64_t *back)
{
    for (;;) {
        int flag = 0;
        MPI_Status ms;
        FOLIO_CHECK_MPI(MPI_Iprobe(MPI_ANY_SOURCE, TAG_DONE, d->comm, &flag, &ms));
        if (!flag) break;
        FOLIO_TRY(donor_take_done(d, ms.MPI_SOURCE));
    }
    if (!d->give) return FOLIO_OK;
    for (int r = 1; r < d->P; r++) {
        if (d->pending[r] > 0) continue;
        int64_t b0, b1;
        uint64_t given = 0;
#pragma omp critical(folio_round_queue)
        {
            uint64_t rem = 0;
            for (int64_t k = *front; k < *back; k++) rem += it[idx[k]].doc.n_tokens;
            double s0 = 1, sr = 1;
            if (d->bal && d->bal->rate[0] > 0 && d->bal->rate[r] > 0) { s0 = d->bal->rate[0]; sr = d->bal->rate[r]; }
            double share = (double)rem * sr / (s0 + sr);
            b1 = *back;
            int64_t b = *back;
            while (b > *front && (double)(given + it[idx[b - 1]].doc.n_tokens) <= share) given += it[idx[--b]].doc.n_tokens;
            *back = b;
            b0 = b;
        }
        if (b0 == b1) continue;
        int64_t cnt = b1 - b0;
        FOLIO_CHECK_MPI(MPI_Send(&cnt, 1, MPI_INT64_T, r, TAG_MORE, d->comm));
        FOLIO_CHECK_MPI(MPI_Send(idx + b0, (int)cnt, MPI_INT64_T, r, TAG_MORE_IDX, d->comm));
        FOLIO_TRY(send_batch(it, idx + b0, cnt, d->meta, r, d->comm));
        d->pending[r]++;
        *d->remote += 1; /* one result message for the batch */
        d->donated_docs += (uint64_t)cnt;
        d->donated_tokens += given;
    }
    return FOLIO_OK;
}

/* Encodes one whole document on this rank and packs its results (or its
 * failure) for rank 0.  direct: into its result message (a long document,
 * all threads inside it, whose fresh pages the worker faults in while the
 * device computes); short ones in parallel keep the worker's warm buffers
 * and a copy (the device's copies into fresh pageable pages, sixteen
 * threads at once, would be the slow part). */
static char *encode_whole(folio_worker_t *w, const folio_round_item_t *it, int64_t i, bool direct, size_t *bytes)
{
    folio_status_t est;
    return encode_packed(w, NULL, i, &it[i].doc, it[i].weights, 0, it[i].doc.n_tokens, direct, bytes, &est);
}

/* This rank's whole documents idx[0..n) (reordered largest first): long
 * ones one at a time with all the rank's threads inside the document, short
 * ones in parallel, one thread each (parallelism inside a small document is
 * mostly overhead); both give bit-identical results.  Rank 0 passes its
 * donor (dn), others NULL.  *tokens: what this rank computed. */
static folio_status_t compute_whole(folio_round_ctx_t *rc, folio_round_item_t *it, int64_t *idx, int64_t n,
                                    char **packed, size_t *packed_sz, donor_t *dn, uint64_t *tokens)
{
    sort_longest_first(it, idx, n);
    int64_t front = 0, back = n;
    uint32_t small = rc->gpu ? ROUND_SMALL_TOKENS_GPU : FOLIO_ROUND_SMALL_TOKENS;
    folio_status_t st = FOLIO_OK;
    uint64_t done = 0;
    while (st == FOLIO_OK) {
        if (dn) st = donor_poll(dn, it, idx, &front, &back);
        if (st != FOLIO_OK || front >= back) break;
        int64_t i = idx[front];
        if (rc->doc_threads > 1 && it[i].doc.n_tokens < small) break;
        front++;
        done += it[i].doc.n_tokens;
        packed[i] = encode_whole(rc->worker, it, i, true, &packed_sz[i]);
        if (!packed[i]) st = FOLIO_ERR_NOMEM;
    }
    if (st == FOLIO_OK && front < back) {
        folio_status_t pst = FOLIO_OK;
#pragma omp parallel num_threads(rc->doc_threads) reduction(+ : done)
        {
            int tid = omp_get_thread_num();
            for (;;) {
                if (tid == 0 && dn) {
                    folio_status_t dst = donor_poll(dn, it, idx, &front, &back);
                    if (dst != FOLIO_OK) {
#pragma omp critical(folio_round_status)
                        pst = dst;
                    }
                }
                int64_t k = -1;
                bool failed;
#pragma omp critical(folio_round_status)
                failed = pst != FOLIO_OK;
                if (failed) break;
#pragma omp critical(folio_round_queue)
                if (front < back) k = front++;
                if (k < 0) break;
                int64_t i = idx[k];
                done += it[i].doc.n_tokens;
                packed[i] = encode_whole(rc->thread_workers[tid], it, i, false, &packed_sz[i]);
                if (!packed[i]) {
#pragma omp critical(folio_round_status)
                    pst = FOLIO_ERR_NOMEM;
                }
            }
        }
        st = pst;
    }
    *tokens = done;
    return st;
}

/* A worker rank's whole documents: its share, then what rank 0 gives it,
 * until rank 0 ends the round (MORE 0).  Results go to rank 0 without
 * blocking (rank 0 takes them once its own share is done; a blocking send
 * would spin this rank's core until then), each batch followed by a DONE
 * line (tokens, compute seconds, idle seconds before it). */
static folio_status_t worker_batches(folio_round_ctx_t *rc, folio_round_item_t *it, int64_t *idx, int64_t n,
                                     const int64_t *meta, int64_t n_items, char **packed, size_t *packed_sz,
                                     double idle)
{
    MPI_Comm comm = rc->comm;
    int me;
    MPI_Comm_rank(comm, &me);
    MPI_Request *reqs = NULL;
    size_t nreq = 0, capreq = 0;
    /* per batch (each has >= 1 document but the first): its result
     * message, that message's size, its DONE line */
    uint64_t *sizes = calloc((size_t)n_items + 1, sizeof *sizes);
    char **msgs = calloc((size_t)n_items + 1, sizeof *msgs);
    double *lines = malloc(((size_t)n_items + 1) * 3 * sizeof *lines);
    folio_status_t st = sizes && msgs && lines ? FOLIO_OK : FOLIO_ERR_NOMEM;
    for (int64_t batch = 0; st == FOLIO_OK; batch++) {
        double t = folio_now();
        uint64_t tokens = 0;
        st = compute_whole(rc, it, idx, n, packed, packed_sz, NULL, &tokens);
        double secs = folio_now() - t;
        rc->compute_seconds += secs;
        rc->whole_tokens += tokens;
        rc->round_idle_start = t + secs;
        /* the batch's results as one message: per document its size
         * (uint64) and its packed results, 8-byte aligned */
        size_t total = 0;
        for (int64_t k = 0; st == FOLIO_OK && k < n; k++) total += 8 + align8(packed_sz[idx[k]]);
        if (st == FOLIO_OK && n > 0) {
            char *msg = malloc(total + 1);
            if (!msg) { st = FOLIO_ERR_NOMEM; break; }
            msgs[batch] = msg;
            size_t at = 0;
            for (int64_t k = 0; k < n; k++) {
                int64_t i = idx[k];
                result_head_t h;
                memcpy(&h, packed[i], sizeof h);
                if (h.status != FOLIO_OK)
                    folio_log(FOLIO_LOG_ERROR, "document %s: %s", it[i].doc.id,
                              folio_status_str((folio_status_t)h.status));
                uint64_t one = packed_sz[i];
                memcpy(msg + at, &one, 8);
                memcpy(msg + at + 8, packed[i], packed_sz[i]);
                at += 8 + align8(one);
                free(packed[i]);
                packed[i] = NULL;
            }
            st = send_result_start(msg, total, &sizes[batch], comm, &reqs, &nreq, &capreq);
        }
        if (st != FOLIO_OK) break;
        /* the MORE receive is posted before the DONE line goes out, so
         * rank 0's send of it never waits on this rank */
        int64_t cnt = 0;
        MPI_Request more;
        FOLIO_CHECK_MPI(MPI_Irecv(&cnt, 1, MPI_INT64_T, 0, TAG_MORE, comm, &more));
        double *line = lines + batch * 3;
        line[0] = (double)tokens;
        line[1] = secs;
        line[2] = idle;
        if ((st = reqs_reserve(&reqs, nreq, &capreq, 1)) != FOLIO_OK) break;
        FOLIO_CHECK_MPI(MPI_Isend(line, 3, MPI_DOUBLE, 0, TAG_DONE, comm, &reqs[nreq++]));
        if ((st = wait_idle(&more, NULL)) != FOLIO_OK || cnt == 0) break;
        FOLIO_CHECK_GENERIC(cnt > 0 && cnt <= n_items, FOLIO_ERR_INTERNAL, "round: bad MORE count");
        FOLIO_CHECK_MPI(MPI_Recv(idx, (int)cnt, MPI_INT64_T, 0, TAG_MORE_IDX, comm, MPI_STATUS_IGNORE));
        n = cnt;
        for (int64_t k = 0; k < n; k++)
            FOLIO_CHECK_GENERIC(idx[k] >= 0 && idx[k] < n_items && !it[idx[k]].doc.id, FOLIO_ERR_INTERNAL,
                                "round: bad document given");
        st = recv_batch(meta, idx, n, it, comm);
        idle = folio_now() - rc->round_idle_start;
    }
    /* every started send ends before its buffer is freed, even after an
     * error.  Rank 0 sent MORE 0 once its own share was done and now takes
     * the results: the bodies move while this rank polls. */
    folio_status_t wst = wait_all_busy(reqs, nreq);
    if (st == FOLIO_OK) st = wst;
    free(reqs);
    free(sizes);
    for (int64_t b = 0; msgs && b <= n_items; b++) free(msgs[b]);
    free(msgs);
    free(lines);
    return st;
}

/* ------------------------------------------------------------ the round */


folio_status_t folio_round_run(folio_round_ctx_t *rc, folio_round_item_t *items, int64_t n_items)
{
    MPI_Comm comm = rc->comm;
    int me, P;
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &P);
    folio_status_t st = FOLIO_OK;

    /* Header: number of items (-1: no more rounds). */
    if (me != 0 && rc->round_idle_start == 0) rc->round_idle_start = folio_now();
    int64_t hdr = n_items;
    MPI_Request hreq;
    FOLIO_CHECK_MPI(MPI_Ibcast(&hdr, 1, MPI_INT64_T, 0, comm, &hreq)); /* the long wait of worker ranks */
    FOLIO_TRY(wait_idle(&hreq, NULL));
    if (hdr <= 0) return hdr < 0 ? FOLIO_EOF : FOLIO_OK;
    n_items = hdr;

    int64_t *meta = calloc((size_t)n_items * META_N, sizeof *meta);
    FOLIO_CHECK_ALLOC(meta);
    if (me == 0) {
        /* Plan: split the long ones, pack the rest largest-first. */
        uint64_t total = 0;
        for (int64_t i = 0; i < n_items; i++) total += items[i].doc.n_tokens;
        double *unmeasured = calloc((size_t)P, sizeof *unmeasured); /* rates when rc->balance is NULL */
        int64_t *order = malloc((size_t)n_items * sizeof *order);
        if (!unmeasured || !order) { free(unmeasured); free(order); free(meta); return FOLIO_ERR_NOMEM; }
        int64_t no = 0;
        for (int64_t i = 0; i < n_items; i++) {
            const folio_doc_t *d = &items[i].doc;
            meta[i * META_N + META_IDLEN] = (int64_t)strlen(d->id);
            meta[i * META_N + META_TEXTLEN] = (int64_t)d->len;
            meta[i * META_N + META_NTOK] = d->n_tokens;
            meta[i * META_N + META_NSENT] = d->n_sents;
            meta[i * META_N + META_NSEC] = d->n_sections;
            folio_pattern_t p;
            bool split = false;
            if (P > 1 && d->n_tokens > total / (uint64_t)P &&
                folio_worker_resolve(rc->worker, d->n_tokens, &p) == FOLIO_OK) {
                uint64_t nb = (d->n_tokens + p.block - 1) / p.block;
                uint64_t W = p.window < d->n_tokens ? p.window : d->n_tokens;
                split = nb / (uint64_t)P >= (W + p.block - 1) / p.block + 1;
            }
            meta[i * META_N + META_OWNER] = split ? -1 : 0;
            if (!split) order[no++] = i;
        }
        /* Largest first onto the rank that would finish it first at its
         * measured rate (by tokens until every rank was measured).  Split
         * documents keep every rank busy for the same time, so they do not
         * change which rank finishes a whole one first. */
        sort_longest_first(items, order, no);
        uint32_t *ntok = malloc(((size_t)no + 1) * sizeof *ntok);
        int *own = malloc(((size_t)no + 1) * sizeof *own);
        if (!ntok || !own) { free(ntok); free(own); free(unmeasured); free(order); free(meta); return FOLIO_ERR_NOMEM; }
        for (int64_t a = 0; a < no; a++) ntok[a] = items[order[a]].doc.n_tokens;
        folio_balance_t equal = {P, unmeasured, 1.0};
        folio_balance_pack(rc->balance ? rc->balance : &equal, ntok, no, own);
        for (int64_t a = 0; a < no; a++) meta[order[a] * META_N + META_OWNER] = own[a];
        free(ntok);
        free(own);
        free(unmeasured);
        free(order);
    }
    int rc_mpi = MPI_Bcast(meta, (int)(n_items * META_N), MPI_INT64_T, 0, comm);
    if (rc_mpi != MPI_SUCCESS) { free(meta); return FOLIO_ERR_MPI; }

    /* Worker ranks keep their own documents here. */
    folio_round_item_t *mine = NULL;
    if (me != 0) {
        mine = calloc((size_t)n_items, sizeof *mine);
        if (!mine) { free(meta); return FOLIO_ERR_NOMEM; }
    }
    folio_round_item_t *it = me == 0 ? items : mine;

    /* Payloads: each worker rank's whole documents in one message (item
     * order), then a split document's slices, each rank its own, sent by
     * rank 0 all at once. */
    int64_t *idx = malloc(((size_t)n_items + 1) * sizeof *idx), nidx = 0, remote = 0;
    if (!idx) st = FOLIO_ERR_NOMEM;
    for (int r = me == 0 ? 1 : me; st == FOLIO_OK && r < (me == 0 ? P : me + 1); r++) {
        nidx = 0;
        for (int64_t i = 0; i < n_items; i++)
            if (meta[i * META_N + META_OWNER] == r) idx[nidx++] = i;
        if (nidx == 0) continue;
        if (me == 0) {
            remote++; /* one result message for it */
            st = send_batch(items, idx, nidx, meta, r, comm);
        } else {
            st = recv_batch(meta, idx, nidx, mine, comm);
        }
    }
    for (int64_t i = 0; st == FOLIO_OK && i < n_items; i++) {
        const int64_t *mi = meta + i * META_N;
        int64_t owner = mi[META_OWNER];
        if (owner >= 0) continue;
        if (me != 0) {
            st = recv_split(mi, &mine[i], comm);
            continue;
        }
        const folio_doc_t *d = &items[i].doc;
        folio_pattern_t p;
        if ((st = folio_worker_resolve(rc->worker, d->n_tokens, &p)) != FOLIO_OK) break;
        /* each rank's header, then its parts, all started before any is
         * waited for, so the ranks receive in parallel.  A rank that gets
         * no payload would wait for ever: on failure the job ends (the
         * caller aborts) */
        MPI_Request *reqs = NULL;
        size_t nreq = 0, capreq = 0;
        for (int r = 1; st == FOLIO_OK && r < P; r++) {
            payload_slice_t sl = slice_split(d, &p, r, P);
            if (MPI_Send(&sl, 4, MPI_UINT64_T, r, TAG_PAYLOAD, comm) != MPI_SUCCESS) st = FOLIO_ERR_MPI;
            if (st == FOLIO_OK) st = send_split_parts(d, items[i].weights, mi, &sl, r, comm, &reqs, &nreq, &capreq);
        }
        folio_status_t wst = wait_all_busy(reqs, nreq); /* every rank is in recv_split */
        if (st == FOLIO_OK) st = wst;
        free(reqs);
    }

    /* A worker rank waited from the end of its last round to here. */
    double idle = 0;
    if (me != 0) {
        idle = folio_now() - rc->round_idle_start;
        rc->round_idle_start = 0;
    }

    /* Results, packed, by item: rank 0 commits them in item order at the
     * end of the round, so documents get the same internal numbers whatever
     * the number of ranks. */
    char **packed = calloc((size_t)n_items, sizeof *packed);
    size_t *packed_sz = calloc((size_t)n_items, sizeof *packed_sz);
    if (!packed || !packed_sz) st = FOLIO_ERR_NOMEM;
    const char *spec = folio_worker_pattern_spec(rc->worker);

    /* Split documents, collectively, in item order. */
    folio_exchange_t *xw = NULL;
    if (st == FOLIO_OK) st = folio_exchange_create_mpi(comm, &xw);
    if (st == FOLIO_OK && rc->nccl) folio_exchange_set_nccl(xw, rc->nccl);
    for (int64_t i = 0; st == FOLIO_OK && i < n_items; i++) {
        if (meta[i * META_N + META_OWNER] >= 0) continue;
        if (rc->gpu && P > 1 && !rc->nccl) {
            /* every rank is here, at the same item: the meta says which
             * are split.  A failure now fails the job with a clear error
             * (results already committed stay); before any commit, at set-up,
             * it could still fall back to the CPU, but every corpus would
             * pay for a communicator most never use. */
            double tn = folio_now();
            st = folio_nccl_create(comm, rc->device, &rc->nccl);
            rc->nccl_seconds += folio_now() - tn;
            if (st != FOLIO_OK) {
                folio_log(FOLIO_LOG_ERROR, "NCCL communicator for split document %s: %s",
                          me == 0 ? it[i].doc.id : "(rank 0's)", folio_status_str(st));
                break;
            }
            folio_exchange_set_nccl(xw, rc->nccl);
            if (getenv("FOLIO_PROFILE"))
                folio_log(FOLIO_LOG_INFO, "profile NCCL communicator (first split document): %.3fs", folio_now() - tn);
        }
        folio_pattern_t p;
        st = folio_worker_resolve(rc->worker, it[i].doc.n_tokens, &p);
        if (st != FOLIO_OK) break;
        uint64_t t0, t1;
        split_range(it[i].doc.n_tokens, &p, me, P, &t0, &t1);
        double t = folio_now();
        packed[i] = encode_packed(rc->worker, xw, i, &it[i].doc, it[i].weights, t0, t1, true, &packed_sz[i], &st);
        if (st == FOLIO_OK && me == 0 && !packed[i]) st = FOLIO_ERR_NOMEM;
        if (st != FOLIO_OK) {
            free(packed[i]);
            packed[i] = NULL;
            /* the other ranks are inside this document's collectives: the
             * job ends here (the caller aborts); what is committed stays */
            folio_log(FOLIO_LOG_ERROR, "%s (split over %d ranks, tokens [%llu, %llu) here): %s; the job stops, "
                      "documents committed before it stay", it[i].doc.id, P, (unsigned long long)t0,
                      (unsigned long long)t1, folio_status_str(st));
        }
        /* packing counted as for a whole document (encode_whole) */
        rc->compute_seconds += folio_now() - t;
    }
    if (xw) rc->exchange_seconds += folio_exchange_seconds(xw);
    folio_exchange_destroy(&xw);

    /* Whole documents: every rank computes its own share (compute_whole),
     * worker ranks send the results and a DONE line, then wait for more
     * (documents rank 0 gives away from the end of its own queue) or for
     * the round's end (MORE with a count of 0). */
    nidx = 0;
    for (int64_t i = 0; st == FOLIO_OK && i < n_items; i++)
        if (meta[i * META_N + META_OWNER] == me) idx[nidx++] = i;
    double whole_seconds = 0;
    uint64_t whole_tokens = 0;
    donor_t dn = {0};
    int *from = me == 0 ? calloc((size_t)n_items, sizeof *from) : NULL;
    if (me == 0 && st == FOLIO_OK) {
        if (!from) st = FOLIO_ERR_NOMEM;
        else st = donor_init(&dn, comm, P, rc, meta);
        dn.remote = &remote;
    }
    if (me == 0 && st == FOLIO_OK) {
        double t = folio_now();
        st = compute_whole(rc, it, idx, nidx, packed, packed_sz, &dn, &whole_tokens);
        whole_seconds = folio_now() - t;
        rc->compute_seconds += whole_seconds;
        rc->whole_tokens += whole_tokens;
        /* the round's end for every worker rank (after what it was given) */
        for (int r = 1; st == FOLIO_OK && r < P; r++) {
            int64_t zero = 0;
            if (MPI_Send(&zero, 1, MPI_INT64_T, r, TAG_MORE, comm) != MPI_SUCCESS) st = FOLIO_ERR_MPI;
        }
    }
    if (me != 0 && st == FOLIO_OK) st = worker_batches(rc, it, idx, nidx, meta, n_items, packed, packed_sz, idle);
    free(idx);

    /* Rank 0 gathers the others' results and DONE lines as they come ... */
    double t_results = folio_now();
    for (int r = 1; me == 0 && st == FOLIO_OK && r < P; r++)
        while (st == FOLIO_OK && dn.pending[r] > 0) st = donor_take_done(&dn, r);
    for (int64_t k = 0; me == 0 && st == FOLIO_OK && k < remote; k++) {
        MPI_Status ms;
        uint64_t sz;
        MPI_Request rreq;
        rc_mpi = MPI_Irecv(&sz, 1, MPI_UINT64_T, MPI_ANY_SOURCE, TAG_RESULT, comm, &rreq);
        if (rc_mpi != MPI_SUCCESS) { st = FOLIO_ERR_MPI; break; }
        if ((st = wait_idle(&rreq, &ms)) != FOLIO_OK) break;
        char *msg = malloc(sz + 1);
        if (!msg) { st = FOLIO_ERR_NOMEM; break; }
        st = recv_bytes(msg, sz, ms.MPI_SOURCE, TAG_RESULT_BODY, comm);
        /* a batch's results, each into its own buffer (the commit frees
         * them one by one) */
        for (size_t at = 0; st == FOLIO_OK && at < sz;) {
            uint64_t one = 0;
            if (at + 8 > sz) { st = FOLIO_ERR_INTERNAL; break; }
            memcpy(&one, msg + at, 8);
            if (at + 8 + one > sz) { st = FOLIO_ERR_INTERNAL; break; }
            char *buf = malloc(one + 1);
            if (!buf) { st = FOLIO_ERR_NOMEM; break; }
            memcpy(buf, msg + at + 8, one);
            result_head_t h;
            folio_doc_results_t res;
            st = unpack_result(buf, one, n_items, spec, &h, &res);
            if (st != FOLIO_OK || packed[h.item]) { free(buf); if (st == FOLIO_OK) st = FOLIO_ERR_INTERNAL; break; }
            packed[h.item] = buf;
            packed_sz[h.item] = one;
            from[h.item] = ms.MPI_SOURCE;
            at += 8 + align8(one);
        }
        free(msg);
    }
    if (me == 0 && st == FOLIO_OK) {
        double waited = folio_now() - t_results;
        rc->results_wait_seconds += waited;
        for (int r = 1; r < P; r++) {
            if (rc->balance) folio_balance_observe(rc->balance, r, dn.tokens[r], dn.seconds[r]);
            rc->ranks_idle_seconds += dn.idle_s[r];
        }
        if (rc->balance) folio_balance_observe(rc->balance, 0, whole_tokens, whole_seconds);
        rc->donated_docs += dn.donated_docs;
        rc->donated_tokens += dn.donated_tokens;
        if (rc->profile) {
            uint64_t all = 0;
            for (int64_t i = 0; i < n_items; i++)
                if (meta[i * META_N + META_OWNER] >= 0) all += (uint64_t)meta[i * META_N + META_NTOK];
            folio_log(FOLIO_LOG_INFO,
                      "profile round: %lld docs, rank 0 %.1f%% of %llu whole-document tokens in %.3fs (gave %llu "
                      "docs, %llu tokens), waited for results %.3fs; rank 1 computed %.3fs, idle %.3fs; rates "
                      "(tokens/s) r0 %.0f r1 %.0f",
                      (long long)n_items, all ? 100.0 * (double)whole_tokens / (double)all : 0.0,
                      (unsigned long long)all, whole_seconds, (unsigned long long)dn.donated_docs,
                      (unsigned long long)dn.donated_tokens, waited, P > 1 ? dn.seconds[1] : 0.0,
                      P > 1 ? dn.idle_s[1] : 0.0, rc->balance ? rc->balance->rate[0] : 0.0,
                      rc->balance && P > 1 ? rc->balance->rate[1] : 0.0);
        }
    }
    donor_free(&dn);
    /* ... and commits everything in item order, as one batch. */
    folio_status_t *est = NULL;
    folio_doc_results_t *resv = NULL;
    if (me == 0 && st == FOLIO_OK) {
        est = calloc((size_t)n_items, sizeof *est);
        resv = calloc((size_t)n_items, sizeof *resv);
        if (!est || !resv) st = FOLIO_ERR_NOMEM;
    }
    for (int64_t i = 0; me == 0 && st == FOLIO_OK && i < n_items; i++) {
        result_head_t h;
        if (!packed[i]) { st = FOLIO_ERR_INTERNAL; break; }
        st = unpack_result(packed[i], packed_sz[i], n_items, spec, &h, &resv[i]);
        est[i] = (folio_status_t)h.status;
        if (meta[i * META_N + META_OWNER] < 0) from[i] = -1;
    }
    if (me == 0 && st == FOLIO_OK) st = rc->commit(rc->commit_ctx, items, est, resv, from, packed, n_items);
    free(est);
    free(resv);
    free(from);
    for (int64_t i = 0; packed && i < n_items; i++) free(packed[i]);
    free(packed);
    free(packed_sz);

    if (mine) {
        for (int64_t i = 0; i < n_items; i++) {
            folio_doc_clear(&mine[i].doc);
            free(mine[i].weights);
        }
        free(mine);
    }
    free(meta);
    return st;
}
