/* libFuzzer harness for tp_json_copy(), the writer's re-emitter of JSON text
 * a client sent (a trace's config object).
 *
 * Each input is copied compact and pretty, as any value and as an object.
 * Besides the sanitizers, these properties are checked, and a violation
 * aborts:
 *  - the result is 0 or TP_ERR_JSON, and nothing is written on TP_ERR_JSON;
 *  - what is written is valid JSON (jansson parses it) and valid UTF-8;
 *  - jansson accepts every input tp_json_copy() accepts (the copier is no
 *    laxer than a real parser), except that the copier turns lone
 *    surrogate escapes (\ud800) and bytes that are not UTF-8 into U+FFFD
 *    where jansson refuses the text, and copies numbers too large for
 *    jansson (JSON sets no limit);
 *  - copying the output again gives the same bytes (one escaper, one
 *    spelling).
 *
 * Build and run (see tests/fuzz/meson.build):
 *   CC=clang-14 meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
 *       -Db_lundef=false -Dextension=false -Ddaemon=false
 *   ninja -C build-fuzz tests/fuzz/fuzz_json
 *   ./build-fuzz/tests/fuzz/fuzz_json -max_total_time=300 -artifact_prefix=build-fuzz/ */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tp_err.h"

static void die(const char *what, const uint8_t *in, size_t n)
{
    fprintf(stderr, "fuzz_json: %s (input of %zu bytes)\n", what, n);
    (void)in;
    abort();
}

/* Whether s holds a \uD800-\uDFFF escape (jansson refuses lone ones). */
static bool has_surrogate_escape(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (s[i] == '\\' && s[i + 1] == 'u' && (s[i + 2] | 0x20) == 'd' &&
            strchr("89abcdefABCDEF", s[i + 3]) && s[i + 3])
            return true;
    return false;
}

/* jansson refuses numbers past int64 or double range; JSON does not. */
/* What jansson refuses though JSON allows it: numbers past its range, and
 * "\u0000" in an object key (JSON_ALLOW_NUL covers string values only). */
static bool too_big_for_jansson(const json_error_t *e)
{
    return strstr(e->text, "too big") || strstr(e->text, "overflow") ||
           strstr(e->text, "NUL byte in object key");
}

static bool is_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = tp_json_utf8_decode(s + i, n - i, &cp);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

static int copy(const char *s, size_t n, bool pretty, bool any, tp_buf *out)
{
    tp_json w;
    tp_json_init(&w, out, pretty);
    return tp_json_copy(&w, s, n, any);
}

static void check(const uint8_t *data, size_t size, bool pretty, bool any)
{
    tp_buf out = TP_BUF_INIT, again = TP_BUF_INIT;
    int r = copy((const char *)data, size, pretty, any, &out);
    if (r != 0 && r != TP_ERR_JSON)
        die("unexpected result", data, size);
    if (r) {
        if (out.len)
            die("a rejected text left output", data, size);
        goto done;
    }
    json_error_t e;
    json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!in && !has_surrogate_escape(data, size) && is_utf8(data, size) && !too_big_for_jansson(&e))
        die("accepted what jansson rejects", data, size);
    json_decref(in);
    json_t *j = json_loadb(out.data, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!j && !too_big_for_jansson(&e))
        die("output is not JSON", data, size);
    json_decref(j);
    if (!is_utf8((const uint8_t *)out.data, out.len))
        die("output is not UTF-8", data, size);
    if (copy(out.data, out.len, pretty, any, &again) || again.len != out.len ||
        memcmp(again.data, out.data, out.len))
        die("a second copy differs", data, size);
done:
    tp_buf_free(&out);
    tp_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size, false, true);
    check(data, size, true, true);
    check(data, size, false, false);
    return 0;
}
