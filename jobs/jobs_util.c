/* jobs/jobs_util.c — small helpers of jobs/: JSON strings into buffers. */
#include <string.h>

#include "jobs_internal.h"

folio_status_t jobs_buf_json_str(folio_buf_t *b, const char *s, size_t len)
{
    FOLIO_TRY(folio_buf_append(b, "\"", 1));
    size_t run = 0; /* bytes copied verbatim in one append */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(u, sizeof u, "\\u%04x", c);
                esc = u;
            }
        }
        if (!esc) { run++; continue; }
        if (run) FOLIO_TRY(folio_buf_append(b, s + i - run, run));
        run = 0;
        FOLIO_TRY(folio_buf_append(b, esc, strlen(esc)));
    }
    if (run) FOLIO_TRY(folio_buf_append(b, s + len - run, run));
    return folio_buf_append(b, "\"", 1);
}
