/* jansson values through the one JSON writer (json_jansson.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json_jansson.h"

/* jansson's spelling of a real, so answers read the same as before. */
static void put_real(tp_json *w, double v)
{
    char d[64];
    int n = snprintf(d, sizeof(d), "%.17g", v);
    if (n <= 0 || (size_t)n >= sizeof(d) - 2) {
        tp_json_null(w);
        return;
    }
    for (char *c = d; *c; c++)
        if (*c == ',') /* a locale's decimal comma */
            *c = '.';
    /* jansson drops an exponent's '+' and leading zeros: e+300, e-05 -> e300, e-5. */
    char *e = strchr(d, 'e');
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(d + n - end) + 1);
            n -= (int)(end - start);
        }
    }
    if (!strpbrk(d, ".eE")) {
        d[n++] = '.';
        d[n++] = '0';
        d[n] = '\0';
    }
    tp_json_raw(w, d, (size_t)n);
}

static int depth_of(const json_t *v, int limit)
{
    if (limit < 0)
        return -1;
    const char *k;
    json_t *c;
    size_t i;
    int deepest = 0;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, c)
        {
            int d = depth_of(c, limit - 1);
            if (d < 0)
                return -1;
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, c)
        {
            int d = depth_of(c, limit - 1);
            if (d < 0)
                return -1;
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    return 0;
}

static void put_value(tp_json *w, const json_t *v)
{
    const char *k;
    json_t *c;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        tp_json_obj(w);
        json_object_foreach((json_t *)v, k, c)
        {
            tp_json_key(w, k);
            put_value(w, c);
        }
        tp_json_obj_end(w);
        break;
    case JSON_ARRAY:
        tp_json_arr(w);
        json_array_foreach(v, i, c) put_value(w, c);
        tp_json_arr_end(w);
        break;
    case JSON_STRING:
        tp_json_strn(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        tp_json_i64(w, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL:
        put_real(w, json_real_value(v));
        break;
    case JSON_TRUE:
        tp_json_bool(w, true);
        break;
    case JSON_FALSE:
        tp_json_bool(w, false);
        break;
    default:
        tp_json_null(w);
    }
}

int tp_json_jansson(tp_json *w, const json_t *v)
{
    /* Checked first, so the recursion below is bounded and a value too deep
     * leaves nothing half-written. */
    if (!v || depth_of(v, TP_JSON_JANSSON_DEPTH) < 0)
        return -EINVAL;
    put_value(w, v);
    return tp_json_error(w);
}

char *tp_json_jansson_dumps(const json_t *v)
{
    tp_buf b = TP_BUF_INIT;
    tp_json w;
    tp_json_init(&w, &b, false);
    if (tp_json_jansson(&w, v)) {
        tp_buf_free(&b);
        return NULL;
    }
    char *s = tp_buf_steal(&b, NULL);
    if (!s)
        tp_buf_free(&b);
    return s;
}
