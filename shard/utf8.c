/* shard/utf8.c — strict UTF-8 validation, NUL and binary detection.
 *
 * Strict means RFC 3629: no overlong forms, no UTF-16 surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no stray continuation bytes and
 * no sequence cut short by the end of the input.  Every rejection names the
 * byte offset so a user can find the spot with `cmp`/`xxd`.
 *
 * Binary detection looks only at the first 8 KiB (what `file` and git do):
 * text has almost no C0 control bytes besides \t \n \v \f \r and ESC, while
 * executables, images and archives have plenty (NULs above all).  A text
 * with one stray NUL further in is reported as a NUL byte, not as binary. */
#include "shard.h"

#include <string.h>

#define BINARY_PROBE 8192
/* Share of control bytes in the probe above which the input is binary. */
#define BINARY_CTRL_PERMILLE 50

static bool is_ctrl_byte(unsigned char c)
{
    if (c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' || c == 0x1B) return false;
    return c < 0x20 || c == 0x7F;
}

/* Returns true when the first 8 KiB look binary; fills reason. */
static bool looks_binary(const unsigned char *s, size_t len, char *reason, size_t reasonlen)
{
    size_t n = len < BINARY_PROBE ? len : BINARY_PROBE;
    if (n == 0) return false;
    size_t ctrl = 0, nul = 0;
    for (size_t i = 0; i < n; i++) {
        ctrl += is_ctrl_byte(s[i]);
        nul += (s[i] == 0);
    }
    /* Several NULs close together never happen in text; one is reported
     * as a NUL byte below.  A handful of control bytes in a short text is
     * not enough evidence. */
    if ((ctrl >= 8 && ctrl * 1000 > n * BINARY_CTRL_PERMILLE) || nul >= 4) {
        if (reason && reasonlen)
            snprintf(reason, reasonlen,
                     "binary content: %zu control bytes (%zu NUL) in the first %zu bytes", ctrl, nul, n);
        return true;
    }
    return false;
}

static folio_status_t utf8_fail(char *reason, size_t reasonlen, size_t off, const char *what,
                                const unsigned char *s, size_t len)
{
    if (reason && reasonlen) {
        char hex[16] = "";
        size_t k = 0;
        for (size_t i = off; i < len && i < off + 4 && k + 3 < sizeof hex; i++) {
            snprintf(hex + k, sizeof hex - k, "%s%02X", k ? " " : "", s[i]);
            k = strlen(hex);
        }
        snprintf(reason, reasonlen, "invalid UTF-8 at byte %zu: %s (bytes %s)", off, what, hex);
    }
    return FOLIO_ERR_UTF8;
}

folio_status_t folio_utf8_validate(const char *text, size_t len, char *reason, size_t reasonlen)
{
    const unsigned char *s = (const unsigned char *)text;
    if (reason && reasonlen) reason[0] = 0;
    if (looks_binary(s, len, reason, reasonlen)) return FOLIO_ERR_BINARY;

    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time: no high bit and no zero byte. */
        while (i + 8 <= len) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            uint64_t high = v & 0x8080808080808080ull;
            uint64_t zero = (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
            if (high | zero) break;
            i += 8;
        }
        if (i >= len) break;
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == 0) {
                if (reason && reasonlen) snprintf(reason, reasonlen, "NUL byte at byte %zu", i);
                return FOLIO_ERR_NUL;
            }
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; min = 0x10000; }
        else if (c == 0xC0 || c == 0xC1) return utf8_fail(reason, reasonlen, i, "overlong encoding", s, len);
        else if (c >= 0x80 && c <= 0xBF) return utf8_fail(reason, reasonlen, i, "unexpected continuation byte", s, len);
        else return utf8_fail(reason, reasonlen, i, "byte never valid in UTF-8 (code point above U+10FFFF)", s, len);
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= len) return utf8_fail(reason, reasonlen, i, "truncated sequence at end of input", s, len);
            unsigned char d = s[i + k];
            if ((d & 0xC0) != 0x80) return utf8_fail(reason, reasonlen, i, "truncated sequence", s, len);
            cp = (cp << 6) | (d & 0x3F);
        }
        if (cp < min) return utf8_fail(reason, reasonlen, i, "overlong encoding", s, len);
        if (cp >= 0xD800 && cp <= 0xDFFF) return utf8_fail(reason, reasonlen, i, "UTF-16 surrogate code point", s, len);
        if (cp > 0x10FFFF) return utf8_fail(reason, reasonlen, i, "code point above U+10FFFF", s, len);
        i += need + 1;
    }
    return FOLIO_OK;
}

size_t folio_utf8_bom_len(const char *s, size_t len)
{
    return (len >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
            (unsigned char)s[2] == 0xBF) ? 3 : 0;
}
