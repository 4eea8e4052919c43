/* Trace files the Python package saved under .tracepatch/traces/ (the
 * tracepatch 1.0.0 file workflow): listing them for `tph logs` and deleting
 * them for `tph clean`. They need no daemon. */
#include "tph.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "render.h"
#include "vec.h"

#define TRACES_SUB ".tracepatch/traces"

typedef struct local_file {
    char *path;
    time_t mtime;
} local_file;

static int by_mtime_desc(const void *pa, const void *pb)
{
    const local_file *a = pa, *b = pb;
    if (a->mtime != b->mtime)
        return a->mtime < b->mtime ? 1 : -1;
    return strcmp(b->path, a->path);
}

static bool is_json_name(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && name[0] != '.' && strcmp(name + n - 5, ".json") == 0;
}

int tph_local_dir(const char *cache_dir, char *ret, size_t size)
{
    const char *base = cache_dir && *cache_dir ? cache_dir : ".";
    size_t n = strlen(base);
    int w;

    /* Like the package: the parent of .tracepatch/, or .tracepatch/ itself. */
    if (n >= 11 && strcmp(base + n - 11, ".tracepatch") == 0 && (n == 11 || base[n - 12] == '/'))
        w = snprintf(ret, size, "%s/traces", base);
    else
        w = snprintf(ret, size, "%s/" TRACES_SUB, base);
    return w < 0 || (size_t)w >= size ? -ENAMETOOLONG : 0;
}

/* The .json files of dir, newest first; *ret_n is 0 when dir is missing. */
static int list_files(const char *dir, local_file **ret, size_t *ret_n)
{
    DIR *d = opendir(dir);
    TP_VEC(local_file) v = TP_VEC_INIT;
    struct dirent *e;

    *ret = NULL;
    *ret_n = 0;
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    while ((e = readdir(d))) {
        struct stat st;
        char *path;
        if (!is_json_name(e->d_name))
            continue;
        if (asprintf(&path, "%s/%s", dir, e->d_name) < 0)
            goto oom;
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (tp_vec_grow1(&v) < 0) {
            free(path);
            goto oom;
        }
        v.items[v.size++] = (local_file){path, st.st_mtime};
    }
    closedir(d);
    if (v.size)
        qsort(v.items, v.size, sizeof *v.items, by_mtime_desc);
    *ret = v.items;
    *ret_n = v.size;
    return 0;
oom:
    closedir(d);
    for (size_t i = 0; i < v.size; i++)
        free(v.items[i].path);
    tp_vec_free(&v);
    return -ENOMEM;
}

static void free_files(local_file *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
}

static bool keep(const json_t *doc, const tph_local_filter *f, time_t mtime)
{
    const char *label = tph_json_str(doc, "label");
    if (f->label && fnmatch(f->label, label ? label : "", 0) != 0)
        return false;
    if (f->limited && !json_is_true(json_object_get(doc, "was_limited")))
        return false;
    return !(f->since_s > 0 && mtime < time(NULL) - f->since_s);
}

/* Text from a file is untrusted: escaped for the terminal like every
 * string tph prints. */
static void put_text(tp_buf *out, const char *s)
{
    tp_render_escape(out, s, strlen(s));
}

int tph_local_logs(const char *cache_dir, const tph_local_filter *f, json_t **ret_json,
                   tp_buf *text, size_t *ret_count)
{
    char dir[4096];
    local_file *files;
    size_t n, shown = 0;
    json_t *list = json_array();
    int r;

    *ret_count = 0;
    if (!list)
        return -ENOMEM;
    if ((r = tph_local_dir(cache_dir, dir, sizeof dir)) < 0 ||
        (r = list_files(dir, &files, &n)) < 0) {
        json_decref(list);
        return r;
    }
    for (size_t i = 0; i < n && (int64_t)shown < f->limit; i++) {
        json_error_t e;
        json_t *doc = json_load_file(files[i].path, 0, &e);
        if (!json_is_object(doc) || !keep(doc, f, files[i].mtime)) {
            json_decref(doc);
            continue;
        }
        const char *ts = tph_json_str(doc, "timestamp"), *label = tph_json_str(doc, "label");
        json_t *calls = json_object_get(doc, "call_count");
        bool limited = json_is_true(json_object_get(doc, "was_limited"));
        json_array_append_new(list,
                              json_pack("{s:s, s:O?, s:O?, s:O?, s:O?, s:b}", "file", files[i].path,
                                        "timestamp", json_object_get(doc, "timestamp"), "label",
                                        json_object_get(doc, "label"), "trace_id",
                                        json_object_get(doc, "trace_id"), "call_count", calls,
                                        "was_limited", limited));
        if (text) {
            tp_buf_puts(text, "  file  ");
            put_text(text, ts ? ts : "-");
            tp_buf_puts(text, "  ");
            put_text(text, label && *label ? label : "-");
            if (json_is_integer(calls))
                tp_buf_printf(text, "  %lld calls", (long long)json_integer_value(calls));
            if (limited)
                tp_buf_puts(text, "  LIMITED");
            tp_buf_puts(text, "\n        ");
            put_text(text, files[i].path);
            tp_buf_putc(text, '\n');
        }
        json_decref(doc);
        shown++;
    }
    free_files(files, n);
    *ret_count = shown;
    *ret_json = list;
    return 0;
}

int tph_local_clean(const char *cache_dir, int64_t older_than_s, size_t *ret_removed)
{
    char dir[4096];
    local_file *files;
    size_t n, removed = 0;
    time_t cutoff = time(NULL) - older_than_s;
    int r;

    *ret_removed = 0;
    if ((r = tph_local_dir(cache_dir, dir, sizeof dir)) < 0 ||
        (r = list_files(dir, &files, &n)) < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        if ((older_than_s <= 0 || files[i].mtime < cutoff) && unlink(files[i].path) == 0)
            removed++;
    free_files(files, n);
    *ret_removed = removed;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

int tph_local_remove_all(const char *cache_dir, bool *ret_existed)
{
    char dir[4096], data[4096];
    int r;

    *ret_existed = false;
    if ((r = tph_local_dir(cache_dir, dir, sizeof dir)) < 0)
        return r;
    /* dir is <data>/traces: the whole <data> (.tracepatch/) goes. */
    snprintf(data, sizeof data, "%.*s", (int)(strlen(dir) - strlen("/traces")), dir);
    struct stat st;
    if (lstat(data, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    *ret_existed = true;
    if (nftw(data, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
        return -errno;
    return 0;
}
