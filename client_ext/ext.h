/* Shared internals of the _tracepatch extension: the session object, the
 * per-thread state, the binding of a session to a thread, and the process-wide
 * hook state. Not a public header: only the extension's .c files include it.
 *
 * Ownership in one paragraph. A Session object owns its event log, its
 * function table and its bindings (one per thread it records). A thread's
 * state object (tp_tls, a small Python object kept in the thread state dict so
 * that it dies with the thread) lists the bindings of that thread and, in
 * `active`, those in scope right now, holding a strong reference to each of
 * their sessions so that a binding stays valid while a hook works on it, even
 * across a repr() that releases the GIL. Everything is touched with the GIL
 * held; the hooks of a thread only ever change that thread's state. */
#ifndef TP_EXT_H
#define TP_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "clock.h"
#include "evlog.h"
#include "hmap.h"
#include "vec.h"
#include "tree.h"

#define TP_PY312 (PY_VERSION_HEX >= 0x030C0000) /* sys.monitoring hooks */
#define TP_PY311 (PY_VERSION_HEX >= 0x030B0000)

#define TP_LIKELY(x)   __builtin_expect(!!(x), 1)
#define TP_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Why a session stopped recording (or, for max_depth, dropped calls). */
enum {
    TP_LIMIT_NONE = 0,
    TP_LIMIT_DEPTH,  /* calls deeper than max_depth skipped; recording goes on */
    TP_LIMIT_CALLS,  /* max_calls reached: recording stopped */
    TP_LIMIT_TIME,   /* max_time elapsed: recording stopped */
    TP_LIMIT_MEMORY, /* an allocation failed: recording stopped */
    TP_LIMIT_GAP,    /* 3.10/3.11: another profiler held the slot a while; recording goes on */
};

/* Session life cycle. */
enum { TP_SESSION_NEW = 0, TP_SESSION_ACTIVE, TP_SESSION_STOPPED };

/* Function ids a session lookup can return besides a real id. */
#define TP_FUNC_FILTERED (UINT32_MAX - 1) /* excluded by the session's filters */
#define TP_FUNC_ERROR    UINT32_MAX       /* allocation failure */

/* Shadow-stack entry flags. */
#define TP_FENT_GEN 0x01 /* generator/coroutine frame: may suspend */
#define TP_FENT_MEM 0x02 /* track_memory: mem holds a traced-memory reading */

/* What the hooks' quick paths (record.h) may write for a session. */
#define TP_QUICK_CALL         0x01 /* a call's start: no args, no sampling, no memory */
#define TP_QUICK_RETURN       0x02 /* a return: no return value, no memory */
#define TP_QUICK_SUSPEND      0x04 /* a generator's yield or resume: no memory */
#define TP_QUICK_CALL_ARGS    0x08 /* a call's start with args: no sampling, no memory */
#define TP_QUICK_RETURN_VALUE 0x10 /* a return with its value: no memory */

/* Suspended generators a session indexes in its park, beside suspmap. */
#define TP_PARK 8

/** One recorded call open in a thread (or suspended, for a generator). */
typedef struct tp_fent {
    void *key;      /* frame identity: _PyInterpreterFrame* (3.11+) or PyFrameObject* (3.10) */
    uint32_t seq;   /* the call's sequence number (node index) */
    uint32_t flags; /* TP_FENT_* */
    PyObject *exc;  /* strong: exception handled in this call, reported as CAUGHT
                       if it returns normally; NULL when none */
    PyObject *wref; /* 3.13+, generators: weak reference to the generator, to
                       notice one closed without any event; NULL otherwise */
    int64_t t_susp; /* ticks since t0 of its last suspension */
    int64_t mem;    /* TP_FENT_MEM, running: the traced bytes at the start of the interval
                       it runs in, less the delta of its earlier intervals (so the delta
                       at its end is the reading then less mem); suspended: the delta so far */
} tp_fent;

/** The exception in flight, saved while a hook runs Python code of its own
 *  (a repr, a getattr) and put back after: callbacks never raise. */
typedef struct tp_exc_saved {
#if TP_PY312
    PyObject *exc;
#else
    PyObject *type, *value, *tb;
#endif
} tp_exc_saved;

static inline void tp_exc_save(tp_exc_saved *e)
{
#if TP_PY312
    e->exc = PyErr_GetRaisedException();
#else
    PyErr_Fetch(&e->type, &e->value, &e->tb);
#endif
}

/** Drops any exception raised since tp_exc_save() and restores the saved one. */
static inline void tp_exc_restore(tp_exc_saved *e)
{
    PyErr_Clear();
#if TP_PY312
    PyErr_SetRaisedException(e->exc);
#else
    PyErr_Restore(e->type, e->value, e->tb);
#endif
}

/** Release what an entry holds. */
static inline void tp_fent_clear(tp_fent *e)
{
    Py_CLEAR(e->exc);
    Py_CLEAR(e->wref);
}

struct tp_session;
struct tp_codeinfo;
struct tp_tls;

/** A session recording one thread. Owned by the session. */
typedef struct tp_binding {
    struct tp_session *s;  /* owner (borrowed) */
    struct tp_tls *tls;    /* the thread's state (borrowed); NULL once the thread is gone */
    uint32_t thread;       /* the session's index for this thread */
    bool by_thread;        /* followed thread: the whole thread is in scope */
    bool dead;             /* unbound (session stopped or limited) */
    TP_VEC(tp_fent) stack; /* recorded calls open in this thread, innermost last */
    /* 3.10/3.11: an UNWIND waiting for its exception (see hooks_legacy.c). */
    bool unwind_pending;
    uint64_t unwind_t;
    int64_t unwind_mem; /* the traced memory at unwind_t, -1 when not read */
    tp_fent unwind_ent;
} tp_binding;

/** An interned function, as a session records it. */
typedef struct tp_funcent {
    PyObject *module, *qualname, *file; /* strong, str */
    int32_t lineno;
} tp_funcent;

/** A suspended generator/coroutine call of a session. */
typedef struct tp_susp {
    tp_fent ent;
    uint32_t next_free; /* slab free list */
} tp_susp;

typedef struct tp_session {
    PyObject ob_base; /* PyObject_HEAD */
    /* Configuration, fixed by __init__. */
    PyObject *label;       /* str or NULL */
    PyObject *config_json; /* str or NULL */
    char trace_id[33];
    uint32_t max_depth, max_calls, max_repr;
    uint32_t max_repr_args, max_repr_return; /* max_repr unless given apart */
    int64_t max_time_ns;                     /* as configured */
    int64_t max_time_ticks;                  /* the same in clock ticks, set by start() */
    bool show_args, show_return, threads;
    bool show_asyncio;        /* record asyncio's own code (the event loop) too */
    bool sampling;            /* sample_calls < 1: record each call with that chance */
    bool track_memory;        /* record each call's traced-memory delta (TP_EV_MEMORY) */
    PyObject *mem_probe;      /* strong: tracemalloc.get_traced_memory, with track_memory */
    uint8_t quick;            /* TP_QUICK_* the hooks' quick paths (record.h) may write for it */
    uint64_t sample_below;    /* record a call when the next PRNG value is below this */
    uint64_t sample_state;    /* xorshift64 state (never 0); under the GIL like the log */
    uint64_t sample_skipped;  /* calls left out by sampling (exact) */
    char **ignore, **include; /* module prefixes, NULL-terminated arrays */
    size_t nignore, ninclude;
    bool configured;
    /* State. */
    int state;           /* TP_SESSION_* */
    bool recording;      /* active and no stopping limit hit */
    bool depth_hit;      /* some call was skipped for max_depth */
    uint32_t gaps;       /* 3.10/3.11: times another profiler took the profile slot */
    int limit;           /* TP_LIMIT_* that stopped recording, or NONE */
    uint64_t serial;     /* process-unique, names the session in the context var */
    uint32_t call_count; /* recorded calls (= next sequence number) */
    uint64_t depth_skipped;
    uint64_t dropped;
    int64_t t0;            /* clock ticks at start(); the log's times are ticks since t0
                              until stop() converts them to ns */
    int64_t wall_start_ns; /* CLOCK_REALTIME ns at start() */
    int64_t end_t;         /* ticks since t0 when recording ended (stop or limit) */
    int64_t end_ns;        /* end_t in ns, set by stop() */
    double ns_per_tick;    /* the conversion stop() used (an estimate before) */
    PyObject *errors;      /* list of str */
    PyObject *token;       /* contextvar token of start(), or NULL */
    tp_evlog log;
    uint32_t log_thread; /* thread index of the last record written */
    uint32_t nthreads;   /* thread indices handed out */
    uint32_t closer;     /* 1 + the thread index that closes generators that ended
                            unseen (tp_record_close_unseen()), 0 before the first */
    uint64_t closer_t;   /* time of the closer's last record */
    /* Functions seen: gid -> id or TP_FUNC_FILTERED. */
    tp_hmap funcmap;
    TP_VEC(tp_funcent) funcs;
    /* Bindings, one per thread recorded. */
    TP_VEC(tp_binding *) bindings;
    /* Tasks created in the trace whose coroutine has not started yet:
     * coroutine address -> sequence number of the call that created it. */
    tp_hmap spawnmap;
    /* Their tasks: coroutine address (int) -> task, whose name becomes the
     * text of the SPAWN record when the coroutine starts; NULL until the
     * first task. */
    PyObject *spawnnames;
    /* Suspended generators: frame key -> slab index, in the park or in
     * suspmap, never in both. The quick paths (record.h) suspend into the
     * park and resume from it, where a generator yielding to a loop, or a
     * chain of them awaiting each other, is found in a compare or a few
     * instead of a hash map insertion and deletion per suspension; the rest
     * use suspmap. In order of suspension: a chain of generators suspends
     * innermost first and resumes outermost first, so from the end. */
    tp_hmap suspmap;
    struct {
        void *key;
        uint32_t idx;
    } park[TP_PARK];
    uint32_t npark;
    TP_VEC(tp_susp) susp;
    uint32_t susp_free; /* slab free list head, UINT32_MAX = none */
    /* Built on first use after stop(). */
    tp_tree *tree;
    /* Daemon upload (sender.h, upload.c). */
    long start_pid;           /* getpid() at start(): a forked child never uploads */
    struct tp_upload *upload; /* strong; NULL until upload() or the stream opens */
    /* Streaming while recording (upload.c): the first call at or after
     * stream_due (ticks, like t0; INT64_MAX: never) opens the stream, and
     * each one after that publishes what was recorded before it. */
    int64_t stream_due;
    int64_t time_due;        /* t0 + max_time: a call from then on hits the time limit */
    int64_t due;             /* the sooner of the two: the hooks compare with this alone */
    int64_t stream_after_ns; /* the trace streams once it is this old */
    char *stream_path;       /* the socket it streams to; NULL: it does not stream */
    uint32_t funcs_sent;     /* functions described to the stream so far */
    bool stream_closed;      /* upload() handed the stream its end frames (or tried) */
    size_t stream_memory;    /* log bytes kept once tphd stored them; beyond, they are freed */
    tp_evlog_pos released;   /* the log before this was freed (records 0: nothing was) */
    char released_id[33];    /* the id tphd stores the released part under */
    bool streamed;           /* the stream was opened (it may have failed since) */
} tp_session;

/** Per-thread state: a Python object stored in the thread state's dict so that
 *  its deallocation, when the thread state is cleared, unlinks it. */
/* Entries of a thread's code-info cache (a power of two). */
#define TP_CI_CACHE 8

typedef struct tp_tls {
    PyObject ob_base;              /* PyObject_HEAD */
    PyThreadState *tstate;         /* the thread's state (borrowed) */
    TP_VEC(tp_binding *) bindings; /* every binding of this thread */
    tp_binding **active;           /* bindings in scope; a strong ref to each session */
    size_t nactive, active_cap;
    size_t nlive;  /* bindings of recording sessions, whatever the context */
    uint64_t gen;  /* tp_module_g.gen when `active` was computed */
    PyObject *ctx; /* borrowed identity of the context it was computed in */
    uint64_t ctx_ver;
    int busy;            /* > 0 while the extension runs Python code here */
    tp_buf scratch;      /* args text */
    tp_buf scratch2;     /* return value text */
    tp_buf scratch3;     /* exception message text */
    bool unwind_pending; /* some binding of this thread has a deferred UNWIND */
    uint8_t quick;       /* TP_QUICK_* of the binding in scope when it is the only one, else 0 */
    /* The frame a followed thread's bootstrap just recorded the start of: the
     * hook may see that START again next (tp_hooks_bootstrap_call()). */
    void *boot_key;
    /* The last code object met and its info (recursion and loops hit it),
     * then a few more met lately, direct-mapped by address (methods calling
     * each other, where the last one alone misses on every call). */
    PyCodeObject *ci_code; /* compared only, never dereferenced */
    struct tp_codeinfo *ci_last;
    struct {
        PyCodeObject *code; /* compared only, never dereferenced */
        struct tp_codeinfo *ci;
    } ci_cache[TP_CI_CACHE];
    uint64_t ci_frees; /* tp_codeinfo_frees when the entries were cached */
    /* 3.10/3.11: the thread records through the eval-frame hook (hooks_eval.c). */
    bool eval_on;
    /* ... and the frame its bootstrap recorded the start of, whose end the
     * hook sees although it saw no start (threads=True). */
    void *boot_eval;
    /* 3.10/3.11: the profile function this thread had before ours. */
    bool profile_on;
    Py_tracefunc prev_profile;
    PyObject *prev_profile_obj;
    /* 3.10/3.11: trace_cb, for one event (an exception) or while watching. */
    bool trace_on;   /* trace_cb is installed */
    bool trace_once; /* catching an exception (the next event) */
    /* 3.10/3.11: watching for another profiler to give the slot back. */
    bool watch;
    int64_t gap_start; /* clock ticks when the gap was seen, 0 when none */
    Py_tracefunc prev_trace;
    PyObject *prev_trace_obj;
} tp_tls;

/** Process-wide state. The hooks are per interpreter (sys.monitoring) or per
 *  thread (profile functions), not per module object, so this lives outside
 *  module state; the extension refuses to load in a subinterpreter. */
typedef struct tp_global {
    uint64_t gen; /* bumped whenever a session starts, stops or is limited */
    uint64_t next_serial;
    PyObject *ctxvar;            /* ContextVar: tuple of serials of the sessions in scope */
    PyTypeObject *tls_type;      /* strong */
    PyTypeObject *session_type;  /* strong */
    PyObject *tls_key;           /* str key of the tls object in the thread state dict */
    TP_VEC(tp_session *) active; /* started and not stopped; strong refs */
    size_t nrecording;           /* sessions recording: the hooks are on while > 0 */
    size_t nthreads_sessions;    /* recording sessions with threads=True */
    size_t nmemory_sessions;     /* recording sessions with track_memory=True: while > 0,
                                    the extension's own blocks are hidden from tracemalloc */
    /* 3.12+: sys.monitoring. */
    int tool_id;            /* -1 when not holding one */
    PyObject *monitoring;   /* sys.monitoring module */
    PyObject *disable;      /* sys.monitoring.DISABLE */
    bool disabled_any;      /* DISABLE returned since the last restart_events() */
    PyObject *callbacks[8]; /* the registered C callbacks */
    /* threads=True: thread bootstrap. */
    PyObject *bootstrap;        /* the threading profile hook (a builtin function) */
    PyObject *prev_thread_hook; /* threading's profile hook before ours, or NULL */
    bool thread_hook_on;
    PyObject *pending;           /* dict: Thread object id -> (thread, serials) */
    PyObject *thread_start_code; /* threading.Thread.start.__code__ */
    PyObject *thread_type;       /* threading.Thread (capture.c's safe repr) */
    PyObject *thread_repr;       /* threading.Thread.__repr__, to see it is not overridden */
    atomic_bool fork_frozen;     /* set in a forked child until its sessions are stopped */
} tp_global;

/** The process-wide state (module.c). */
extern tp_global tp_module_g;
/* The calling thread's state (NULL until it needs one). Initial-exec TLS: a
 * plain load on the hot path instead of a __tls_get_addr call. */
#define TP_TLS_MODEL __attribute__((tls_model("initial-exec")))
extern _Thread_local tp_tls *tp_scope_cur_tls TP_TLS_MODEL;

/** A block the extension allocated for itself (PyMem_Raw*): while a session
 *  measures memory, tracemalloc stops counting it, so that the recorder's
 *  own growth (a 64 KiB log block) is not charged to the call it happened
 *  in. Otherwise tracemalloc keeps seeing what a trace costs. */
static inline void tp_untrack_own(void *p)
{
    if (tp_module_g.nmemory_sessions && p)
        PyTraceMalloc_Untrack(0, (uintptr_t)p); /* -2 when not tracing: nothing to do */
}

/* ---- module.c --------------------------------------------------------- */

/** The hooks' clock, in ticks (see clock.h). */
static inline int64_t tp_now(void)
{
    return tp_clock();
}

/** In a forked child: stop the sessions that were recording (they cannot
 *  follow the fork). Returns None. */
PyObject *tp_module_after_fork_child(void);

/* ---- session.c -------------------------------------------------------- */

/** The Session type spec (module.c creates the type). */
extern PyType_Spec tp_session_spec;
/* Adds LIMITS: {name: (default, lo, hi)} of Session's numeric options. */
int tp_session_add_limits(PyObject *m);

/** Record an internal problem in s->errors (never raises; keeps any exception
 *  in flight). fmt as PyUnicode_FromFormat. */
void tp_session_error(tp_session *s, const char *fmt, ...);

/** Stop recording because of reason (TP_LIMIT_CALLS/TIME/MEMORY): marks the
 *  bindings dead and lets the hooks go when no session needs them. */
void tp_session_limit(tp_session *s, int reason);

/** Stop recording s (no-op when it is not): its end time is now and the
 *  module's counts of recording, threads= and track_memory= sessions drop.
 *  The caller lets the bindings and hooks go. GIL held. */
void tp_session_recording_off(tp_session *s);

/** The session's id for the function of ci: an index into s->funcs, or
 *  TP_FUNC_FILTERED / TP_FUNC_ERROR. */
uint32_t tp_session_func_slow(tp_session *s, struct tp_codeinfo *ci);

/** limit_reason as reported: a limit that stopped recording, else
 *  "max_depth" when calls were skipped for depth, else NULL. */
const char *tp_session_limit_reason(const tp_session *s);

/** Nanoseconds from start() to stop() or the limit (so far, while recording). */
int64_t tp_session_duration(const tp_session *s);

/* ---- output.c --------------------------------------------------------- */

/** Build s->tree from the log if not built yet. Returns 0, or -1 with a Python
 *  exception set (RuntimeError while the session is active). */
int tp_output_build(tp_session *s);

/* The Session methods that read a finished trace (see their docstrings in
 * TP_OUTPUT_METHODS). Each returns a new object, or NULL with an exception:
 * RuntimeError while recording, MemoryError. */
/** Session.tree(**options) -> str */
PyObject *tp_output_tree(PyObject *self, PyObject *args, PyObject *kwds);
/** Session.summary() -> str */
PyObject *tp_output_summary(PyObject *self, PyObject *unused);
/** Session.stats() -> dict */
PyObject *tp_output_stats(PyObject *self, PyObject *unused);
/** Session.to_json(pretty=True, *, file=None, binary=False) -> str, or None
 *  after writing it to file (its write(), given bytes when binary, in
 *  pieces of 1 MiB) */
PyObject *tp_output_json(PyObject *self, PyObject *args, PyObject *kwds);
/** Session.to_csv() -> str */
PyObject *tp_output_csv(PyObject *self, PyObject *unused);
/** Session.to_chrome() -> str */
PyObject *tp_output_chrome(PyObject *self, PyObject *unused);
/** Session.to_html() -> str: the self-contained HTML report */
PyObject *tp_output_html(PyObject *self, PyObject *unused);
/** Session.to_folded() -> str */
PyObject *tp_output_folded(PyObject *self, PyObject *unused);
PyObject *tp_output_svg(PyObject *self, PyObject *unused);
/** Session.nodes() -> list of tuples */
PyObject *tp_output_nodes(PyObject *self, PyObject *unused);
PyObject *tp_output_functions(PyObject *self, PyObject *unused);
/** Session.node(i) -> one nodes() tuple plus active and self time (ns) */
PyObject *tp_output_node(PyObject *self, PyObject *arg);
/** Session.children(i) -> the indices of node i's children (-1: the roots) */
PyObject *tp_output_children(PyObject *self, PyObject *arg);
/** Session.events() -> list of tuples */
PyObject *tp_output_events(PyObject *self, PyObject *unused);
/** Session._raw_events() -> list of tuples (the log, for tests and debugging) */
PyObject *tp_output_raw_events(PyObject *self, PyObject *unused);

#define TP_KW(f) (PyCFunction)(void (*)(void))(f), METH_VARARGS | METH_KEYWORDS
#define TP_OUTPUT_METHODS                                                                          \
    {"tree", TP_KW(tp_output_tree),                                                                \
     "tree(style='unicode', color=False, args=True, returns=True, self_time=False, "               \
     "source=False, depth=-1, filter=(), fold=True, header=True, fold_threshold=0)\n--\n\n"        \
     "The call tree as text."},                                                                    \
        {"summary", tp_output_summary, METH_NOARGS, "summary()\n--\n\nThe statistics header."},    \
        {"stats", tp_output_stats, METH_NOARGS, "stats()\n--\n\nStatistics as a dict."},           \
        {"to_json", TP_KW(tp_output_json),                                                         \
         "to_json(pretty=True, *, file=None, binary=False, sections=())\n--\n\ntracepatch JSON, "  \
         "or written to file; sections: (key, JSON bytes) pairs written as the last keys."},       \
        {"to_csv", tp_output_csv, METH_NOARGS, "to_csv()\n--\n\nOne CSV row per call."},           \
        {"to_chrome", tp_output_chrome, METH_NOARGS, "to_chrome()\n--\n\nChrome trace JSON."},     \
        {"to_folded", tp_output_folded, METH_NOARGS, "to_folded()\n--\n\nFolded stacks."},         \
        {"to_svg", tp_output_svg, METH_NOARGS, "to_svg()\n--\n\nAn SVG flame graph."},             \
        {"to_html", tp_output_html, METH_NOARGS, "to_html()\n--\n\nThe self-contained report."},   \
        {"nodes", tp_output_nodes, METH_NOARGS,                                                    \
         "nodes()\n--\n\nThe raw tree, one tuple per call."},                                      \
        {"functions", tp_output_functions, METH_NOARGS,                                            \
         "functions()\n--\n\nThe function table: (module, qualname, file, line) per id."},         \
        {"node", tp_output_node, METH_O,                                                           \
         "node(index, /)\n--\n\nOne call, with its active and self time."},                        \
        {"children", tp_output_children, METH_O,                                                   \
         "children(index, /)\n--\n\nIndices of a call's children (-1: the roots)."},               \
        {"events", tp_output_events, METH_NOARGS,                                                  \
         "events()\n--\n\nFlowTrace-style events, one per call."},                                 \
        {"_raw_events", tp_output_raw_events, METH_NOARGS,                                         \
         "_raw_events()\n--\n\nThe event log as (kind, flags, arg, t_ns, text...) tuples."},

#endif
