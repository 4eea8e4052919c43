/* Internals shared by the JSON trace loader's two halves: load_json.c reads
 * the document, load_replay.c rebuilds the tree from its calls in time
 * order. Not a contract: nothing but proto/load_*.c includes this header. */
#ifndef TP_LOAD_PRIV_H
#define TP_LOAD_PRIV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "tree.h"
#include "vec.h"

#define MAX_SECONDS  1e12                     /* |start|, |end| (about 31700 years) */
#define MAX_MS       1e12                     /* elapsed_ms, duration_ms */
#define MAX_SUSPENDS (16u << 20)              /* yield/resume pairs replayed per document */
#define MAX_SPAN_US  INT64_C(100000000000000) /* a call's time from the trace start: ~3 years */
#define MAX_MEM_KB   1e14                     /* |memory_delta_kb|: 1e17 bytes, far inside int64 */

typedef struct call_info {
    const char *module, *qualname, *file, *args, *ret, *exc_type, *exc_msg;
    size_t args_len, ret_len, type_len, msg_len;
    int32_t lineno;
    bool has_start, has_end, has_elapsed, has_start_ns, has_end_ns;
    int64_t start_us, end_us, elapsed_us;
    uint64_t start_ns, end_ns; /* ours: exact, since the trace start */
    bool has_active_ns, has_self_ns;
    uint64_t active_ns, self_ns; /* ours: exact active and self time */
    bool has_mem;                /* memory_delta_bytes or memory_delta_kb given (track_memory) */
    int64_t mem_bytes;           /* the delta, in bytes */
    bool raised, caught, unfinished, generator, spawned;
    uint32_t suspends, thread;
    json_t *children; /* NULL when none */
} call_info;

#define NONE      UINT32_MAX
#define MAX_CALLS ((1u << 31) - 1) /* events pack a call index with one bit */

enum { C_NEW, C_RUNNING, C_SUSPENDED, C_DONE }; /* a call's state in the replay */

/* One call of the file. */
typedef struct lcall {
    call_info c;
    uint32_t parent; /* index in calls, NONE for a root */
    uint32_t func;
    uint32_t seg; /* its segment (see the replay) */
    int64_t start_ns, end_ns;
    uint32_t seq;    /* its tree node once called */
    uint32_t thread; /* where it runs, or last ran, in the replay */
    uint32_t yields; /* suspensions the replay itself needed */
    uint32_t pad;    /* suspensions added right after the call */
    uint8_t state;   /* C_* */
} lcall;

/* The walk over the document's nested calls. */
typedef struct frame {
    uint32_t call; /* index in calls */
    size_t index;  /* in the parent's children (or trace) array */
    size_t next_child;
    int64_t cursor_ns; /* latest time inside this call so far */
} frame;

typedef struct event {
    uint32_t what; /* call << 1 | is_end */
    uint32_t next; /* the segment's next event */
} event;

typedef struct segment {
    uint32_t head, tail, cur; /* events; cur: the next one to replay */
} segment;

/* A thread's stack of running calls, mirroring the builder's. */
typedef struct tstack {
    uint32_t id;
    TP_VEC(uint32_t) s; /* call indexes, innermost last */
} tstack;

typedef struct loader {
    tp_tree *t;
    char *err;
    size_t errsz;
    TP_VEC(frame) stack; /* the walk */
    TP_VEC(lcall) calls;
    TP_VEC(event) ev; /* in document order */
    TP_VEC(segment) segs;
    tp_hmap_bytes funcs; /* (module, qualname, file, lineno) -> function id */
    TP_VEC(char) key;    /* intern_func()'s scratch key */
    TP_VEC(tstack) th;
    tp_hmap th_index; /* thread id -> index in th */
    int64_t base_us;  /* µs times in the file are relative to this */
    uint64_t suspends_left;
    int64_t max_ns;         /* latest time in the file */
    int64_t root_cursor_ns; /* where a root without start begins */
    bool dry;               /* the replay's first run: counts, builds nothing */
} loader;

/** Write "<path>: <message>" into l->err, where path names the call being
 *  read (trace[i].children[j]...); returns TP_ERR_JSON. */
__attribute__((format(printf, 2, 3))) int tp_load_priv_fail(loader *l, const char *fmt, ...);

/** Build l->t from l->calls, l->segs and l->ev (filled by the walk over the
 *  document) by replaying every call's start and end in time order through
 *  the tree builder. Returns 0, TP_ERR_JSON (message in l->err), TP_ERR_LIMIT
 *  or -ENOMEM. */
int tp_load_priv_replay(loader *l);

#endif
