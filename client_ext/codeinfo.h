/* Function identity, interned once per code object.
 *
 * The first time a hook meets a code object it builds a tp_codeinfo (module
 * from the frame's globals, qualified name, file, first line, argument
 * layout) and stores it in the code object's extra slot, where every later
 * event finds it with one call. Each code info gets a process-unique gid
 * that sessions map to their own dense function ids; gids are never reused,
 * so a session can never confuse two code objects, even at the same address.
 * The info is freed with its code object. */
#ifndef TP_CODEINFO_H
#define TP_CODEINFO_H

#include "ext.h"

/* Code info flags. */
#define TP_CI_GEN          0x01 /* generator, coroutine or async generator */
#define TP_CI_INTERNAL     0x02 /* tracepatch's own code: never recorded */
#define TP_CI_THREAD_START 0x04 /* threading.Thread.start: threads=True follows it */
#define TP_CI_VARARGS      0x08 /* has *args */
#define TP_CI_VARKW        0x10 /* has **kwargs */
#define TP_CI_ASYNCIO      0x20 /* asyncio's (or selectors') own code: hidden unless show_asyncio */
#define TP_CI_TASK_SOON    0x40 /* BaseEventLoop.call_soon: where a task's first step is scheduled */

/** One parameter of a code object. */
typedef struct tp_param {
    const char *name; /* UTF-8, owned by the str in `names` */
    Py_ssize_t len;
    int slot;      /* index in the frame's locals */
    int cell_slot; /* 3.10: locals index of its cell, or -1 */
    bool cell;     /* 3.11+: the slot holds a cell wrapping the value */
    uint8_t stars; /* 0, 1 (*args) or 2 (**kwargs) */
} tp_param;

typedef struct tp_codeinfo {
    uint32_t gid;
    uint32_t flags;     /* TP_CI_* */
    PyObject *module;   /* strong str */
    PyObject *qualname; /* strong str */
    PyObject *file;     /* strong str */
    int32_t lineno;
    PyObject *names; /* strong: tuple keeping the parameter names alive */
    uint32_t nparams;
    tp_param *params;  /* display order: positional, *args, keyword-only, **kwargs */
    size_t names_room; /* the names' share of the arguments' text: each len + 6 */
    /* Cache of the last session lookup (one session active is the common case). */
    uint64_t last_serial;
    uint32_t last_id;
    /* Cache of "every recording session ignores this code" for DISABLE (3.12+). */
    uint64_t ign_gen;
    bool ign_all;
} tp_codeinfo;

/** Incremented whenever a code info is freed (with its code object), so that
 *  caches keyed by code object address know when to forget. */
extern uint64_t tp_codeinfo_frees;

/** Reserve the code extra slot. Once per process; returns 0 or -1 with an
 *  exception set. */
int tp_codeinfo_setup(void);

/** The info already attached to co, or NULL. Never fails, never raises. */
tp_codeinfo *tp_codeinfo_peek(PyCodeObject *co);

/** The info of co, built on first use from globals (the frame's, borrowed,
 *  may be NULL). NULL on failure with no exception left set. */
tp_codeinfo *tp_codeinfo_get(PyCodeObject *co, PyObject *globals);

/** Whether module name m is prefix or inside package prefix ("a.b" matches
 *  "a.b" and "a.b.c", not "a.bc"). */
bool tp_codeinfo_module_matches(const char *m, size_t mlen, const char *prefix);

#endif
