/* common/log.c — stderr logging with the rank as prefix.
 *
 * The rank and level are process-wide by nature (one process is one rank), so
 * they are the only statics in folio; everything else travels in contexts. */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>

static int g_rank = -1;
static folio_log_level_t g_level = FOLIO_LOG_INFO;

void folio_log_set_rank(int rank) { g_rank = rank; }
int folio_log_rank(void) { return g_rank; }
void folio_log_set_level(folio_log_level_t min_level) { g_level = min_level; }

static void prefix(folio_log_level_t lvl)
{
    if (g_rank >= 0) fprintf(stderr, "folio[rank %d]: ", g_rank);
    else fputs("folio: ", stderr);
    if (lvl == FOLIO_LOG_ERROR) fputs("error: ", stderr);
    else if (lvl == FOLIO_LOG_WARN) fputs("warning: ", stderr);
}

void folio_logv(folio_log_level_t lvl, const char *fmt, va_list ap)
{
    if (lvl < g_level) return;
    prefix(lvl);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void folio_log(folio_log_level_t lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    folio_logv(lvl, fmt, ap);
    va_end(ap);
}

void folio_log_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    prefix(FOLIO_LOG_ERROR);
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
