/* What sessions write for each event; see record.h.
 *
 * Every handler walks the thread's in-scope bindings. A binding's shadow
 * stack holds only the calls it recorded, so a call that was filtered out or
 * too deep is simply absent: its children attach to the nearest recorded
 * ancestor, and its return, whose frame does not match the top, is ignored.
 *
 * Capturing text may run Python code (__repr__), which may release the GIL.
 * The thread is marked busy meanwhile (its own hooks ignore the repr's calls),
 * the session stays alive through the reference `active` holds, and every
 * handler re-checks its binding afterwards: another thread may have stopped
 * the session. All bookkeeping that other threads share (call_count, the log)
 * is done after the last Python call of the event. */
#include "record.h"

#include <string.h>

#include "capture.h"
#include "frame.h"
#include "upload.h"

/* State shared by the bindings of one event: the time, read once, and the
 * captured text, reused while sessions agree on max_repr. */
typedef struct evctx {
    int64_t now;
    uint32_t text_repr; /* max_repr of the text in the thread's scratch, 0 = none */
} evctx;

static inline int64_t ev_now(evctx *e)
{
    if (!e->now)
        e->now = tp_now();
    return e->now;
}

/* The memory tracemalloc traces now (-1 when it cannot be read). Out of
 * line and cold: with track_memory off the call path only tests a flag.
 * get_traced_memory() is C code that runs nothing else and never releases
 * the GIL, so a hook may call it after writing to the log; its result tuple
 * is freed before the next reading, so reading changes nothing it reads. */
static __attribute__((noinline, cold)) int64_t traced_memory(tp_tls *tls, tp_session *s)
{
    tp_exc_saved saved;
    tp_exc_save(&saved);
    tls->busy++;
    PyObject *r = PyObject_Vectorcall(s->mem_probe, NULL, 0, NULL);
    tls->busy--;
    long long v = -1;
    if (r && PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2)
        v = PyLong_AsLongLong(PyTuple_GET_ITEM(r, 0));
    Py_XDECREF(r);
    tp_exc_restore(&saved); /* drops any error of ours */
    return v < 0 ? -1 : (int64_t)v;
}

/* A measured call starts (its entry just pushed): note the memory now. */
static __attribute__((noinline, cold)) void start_memory(tp_tls *tls, tp_session *s, tp_fent *ent)
{
    int64_t m = traced_memory(tls, s);
    if (m >= 0) {
        ent->mem = m;
        ent->flags |= TP_FENT_MEM;
    }
}

/* Measured entry ent ended at t (its RETURN/UNWIND just written): its MEMORY
 * record, with the memory read then (mem_now -2: read it now). The
 * reservation that covered the end covers this record too. */
static __attribute__((noinline, cold)) void
end_memory(tp_tls *tls, tp_session *s, const tp_fent *ent, int64_t mem_now, uint64_t t)
{
    if (mem_now == -2)
        mem_now = traced_memory(tls, s);
    if (mem_now >= 0)
        tp_evlog_put_memory(&s->log, mem_now - ent->mem, t);
}

/* A generator suspends (ent's delta so far replaces its base) or resumes
 * (the base moves back by the delta so far): see tp_fent.mem. */
static void switch_memory(tp_tls *tls, tp_session *s, tp_fent *ent)
{
    int64_t m = traced_memory(tls, s);
    if (m >= 0)
        ent->mem = m - ent->mem;
    else
        ent->flags &= ~(uint32_t)TP_FENT_MEM;
}

static void out_of_memory(tp_session *s)
{
    s->dropped++;
    if (s->recording)
        tp_session_error(s, "out of memory: recording stopped after %u calls", s->call_count);
    tp_session_limit(s, TP_LIMIT_MEMORY);
}

void tp_record_out_of_memory(tp_tls *tls)
{
    for (size_t i = 0; i < tls->nactive; i++) {
        if (!tls->active[i]->dead)
            out_of_memory(tls->active[i]->s);
    }
}

/* Reserve the log for one event and switch it to b's thread. False when the
 * session ran out of memory (it is then limited). */
static inline __attribute__((always_inline)) bool log_begin(tp_binding *b, size_t text_bytes,
                                                            unsigned ntext, int64_t now)
{
    tp_session *s = b->s;
    if (TP_UNLIKELY(tp_evlog_reserve(&s->log, text_bytes, ntext) < 0)) {
        out_of_memory(s);
        return false;
    }
    if (TP_UNLIKELY(s->log_thread != b->thread)) {
        tp_evlog_put(&s->log, TP_EV_THREAD, 0, b->thread, (uint64_t)(now - s->t0));
        s->log_thread = b->thread;
    }
    return true;
}

static inline bool args_in_place(const tp_codeinfo *ci, PyObject *const *locals, uint32_t max_repr)
{
    return tp_capture_args_room(ci, max_repr) <= TP_CAPTURE_IN_PLACE_MAX &&
           tp_capture_args_pure(ci, locals);
}

static inline bool at_top(const tp_binding *b, void *key)
{
    return !b->dead && b->stack.size && b->stack.items[b->stack.size - 1].key == key;
}

/* ---- asyncio tasks ------------------------------------------------------- */

/* Most tasks a session waits to see start; more are linked as usual. */
#define MAX_PENDING_TASKS (1u << 16)

/* The coroutine of the task whose first step callback cb is (a C Task's
 * TaskStepMethWrapper, or the bound __step of a Python Task), new reference,
 * and the task (*ret_task, new reference), or NULL when cb is another
 * callback. Any exception is cleared. */
static PyObject *task_coro(PyObject *cb, PyObject **ret_task)
{
    PyObject *task = NULL;
    const char *type = Py_TYPE(cb)->tp_name, *dot = strrchr(type, '.');
    if (strcmp(dot ? dot + 1 : type, "TaskStepMethWrapper") == 0) {
        task = PyObject_GetAttrString(cb, "__self__");
    } else if (PyMethod_Check(cb) && PyFunction_Check(PyMethod_GET_FUNCTION(cb))) {
        PyObject *name = ((PyFunctionObject *)PyMethod_GET_FUNCTION(cb))->func_name;
        if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "__step") == 0)
            task = Py_NewRef(PyMethod_GET_SELF(cb));
    }
    PyObject *coro = task ? PyObject_CallMethod(task, "get_coro", NULL) : NULL;
    *ret_task = coro ? task : NULL;
    if (!coro)
        Py_XDECREF(task);
    PyErr_Clear();
    return coro;
}

void tp_record_task_soon(tp_tls *tls, PyObject *const *locals)
{
    if (!locals[0] || !locals[1])
        return;
    bool wanted = false;
    for (size_t i = 0; i < tls->nactive; i++)
        wanted |= !tls->active[i]->dead && tls->active[i]->stack.size;
    if (!wanted)
        return;
    /* Runs Python (getattr, get_coro) inside a hook: save what is in flight,
     * and record none of it. */
    tp_exc_saved saved;
    tp_exc_save(&saved);
    tls->busy++;
    PyObject *name = NULL; /* the task, named when its coroutine starts */
    PyObject *coro = task_coro(locals[1], &name);
    PyObject *key = coro ? PyLong_FromVoidPtr(coro) : NULL;
    /* The address names the coroutine until its first start, which takes
     * the entry; the task holds the coroutine until then. */
    uint64_t k = (uint64_t)(uintptr_t)coro;
    Py_XDECREF(coro);
    for (size_t i = 0; coro && i < tls->nactive; i++) {
        tp_binding *b = tls->active[i];
        tp_session *s = b->s;
        if (b->dead || !b->stack.size || tp_hmap_size(&s->spawnmap) >= MAX_PENDING_TASKS)
            continue;
        if (tp_hmap_put(&s->spawnmap, k, b->stack.items[b->stack.size - 1].seq) < 0)
            out_of_memory(s);
        if (name && key && !s->spawnnames)
            s->spawnnames = PyDict_New();
        if (name && key && s->spawnnames && PyDict_SetItem(s->spawnnames, key, name) < 0)
            PyErr_Clear(); /* the task keeps its place, only without a name */
    }
    Py_XDECREF(key);
    Py_XDECREF(name);
    tls->busy--;
    tp_exc_restore(&saved);
}

/* Whether the coroutine starting in frame key belongs to a task created in
 * the trace, and by which call (*ret); *ret_name is then the task's name as
 * UTF-8 bytes (new reference) or NULL. */
static bool spawned_by(tp_tls *tls, tp_session *s, void *key, uint32_t *ret, PyObject **ret_name)
{
    PyObject *coro = tp_frame_generator(key);
    uint64_t creator;
    if (!coro || !tp_hmap_del(&s->spawnmap, (uint64_t)(uintptr_t)coro, &creator))
        return false;
    *ret = (uint32_t)creator;
    *ret_name = NULL;
    if (s->spawnnames) {
        /* Dictionary and get_name() calls can fail: keep what is in flight. */
        tp_exc_saved saved;
        tp_exc_save(&saved);
        PyObject *k = PyLong_FromVoidPtr(coro);
        PyObject *task = k ? PyDict_GetItemWithError(s->spawnnames, k) : NULL;
        PyObject *name = NULL;
        if (task) {
            /* Read now, not when the task was scheduled: create_task names
             * it after that on 3.10/3.11. */
            Py_INCREF(task);
            PyDict_DelItem(s->spawnnames, k);
            tls->busy++;
            name = PyObject_CallMethod(task, "get_name", NULL);
            tls->busy--;
            Py_DECREF(task);
        }
        if (name && PyUnicode_Check(name))
            *ret_name = PyUnicode_AsEncodedString(name, "utf-8", "replace");
        Py_XDECREF(name);
        Py_XDECREF(k);
        tp_exc_restore(&saved);
    }
    return true;
}

/* ---- calls -------------------------------------------------------------- */

static void start_one(tp_tls *tls, tp_binding *b, tp_codeinfo *ci, void *key, void *boot,
                      PyObject *const **locals, evctx *e)
{
    tp_session *s = b->s;
    if (b->dead)
        return;
    /* A frame cannot start twice while open: the second START is the same
     * event seen twice (a followed thread's bootstrap, then the hook). */
    if (TP_UNLIKELY(boot == key) && b->stack.size && b->stack.items[b->stack.size - 1].key == key)
        return;
    uint32_t fid = ci->last_serial == s->serial ? ci->last_id : tp_session_func_slow(s, ci);
    if (fid >= TP_FUNC_FILTERED) {
        if (fid == TP_FUNC_ERROR)
            out_of_memory(s);
        return;
    }
    if (b->stack.size >= s->max_depth) {
        s->depth_skipped++;
        s->depth_hit = true;
        return;
    }
    if (s->call_count >= s->max_calls) {
        tp_session_limit(s, TP_LIMIT_CALLS);
        return;
    }
    if (TP_UNLIKELY(s->sampling)) {
        /* Call sampling (tracepatch 1.0.0's sample=): one xorshift64 step
         * per call; a call left out is counted, and its callees attach to
         * the nearest recorded caller. */
        uint64_t x = s->sample_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s->sample_state = x;
        if (x >= s->sample_below) {
            s->sample_skipped++;
            return;
        }
    }
    int64_t now = ev_now(e);
    if (TP_UNLIKELY(now >= s->due)) {
        /* One compare for both: the time limit, and a stream's next tick
         * (which publishes everything recorded before this call). */
        if (now >= s->time_due) {
            tp_session_limit(s, TP_LIMIT_TIME);
            return;
        }
        tp_upload_stream_tick(s, now);
    }
    /* The arguments' text: rendered straight into the log when only this
     * session wants it and rendering runs no Python code (in_place), else
     * into the thread's scratch first, shared by the sessions that agree on
     * max_repr (Python code may release the GIL, and another thread write
     * to the log, while it runs). */
    bool in_place = false;
    if (s->show_args && e->text_repr != s->max_repr_args && !*locals)
        *locals = tp_frame_locals(key);
    if (s->show_args && tls->nactive == 1 && args_in_place(ci, *locals, s->max_repr_args)) {
        in_place = true;
    } else if (s->show_args && e->text_repr != s->max_repr_args) {
        tp_buf_reset(&tls->scratch);
        tls->busy++;
        int r = tp_capture_args(&tls->scratch, ci, *locals, s->max_repr_args);
        tls->busy--;
        e->text_repr = r ? 0 : s->max_repr_args;
        if (r) {
            out_of_memory(s);
            return;
        }
        /* Another thread may have stopped the session or filled it. */
        if (b->dead)
            return;
        if (s->call_count >= s->max_calls) {
            tp_session_limit(s, TP_LIMIT_CALLS);
            return;
        }
    }
    if (tp_vec_grow1(&b->stack) < 0) {
        out_of_memory(s);
        return;
    }
    size_t tlen = in_place       ? tp_capture_args_room(ci, s->max_repr_args)
                  : s->show_args ? tls->scratch.len
                                 : 0;
    bool gen = (ci->flags & TP_CI_GEN) != 0;
    uint32_t creator;
    PyObject *tname = NULL; /* bytes: the SPAWN record's text */
    bool spawn =
        TP_UNLIKELY(gen && tp_hmap_size(&s->spawnmap)) && spawned_by(tls, s, key, &creator, &tname);
    size_t nlen = tname ? (size_t)PyBytes_GET_SIZE(tname) : 0;
    if (!log_begin(b, tlen + nlen, s->show_args + (tname ? 1u : 0u), now)) {
        Py_XDECREF(tname);
        return;
    }
    if (spawn) {
        tp_evlog_put(&s->log, TP_EV_SPAWN, tname ? TP_EVF_TEXT : 0, creator,
                     (uint64_t)(now - s->t0));
        if (tname)
            tp_evlog_text(&s->log, PyBytes_AS_STRING(tname), nlen);
        Py_XDECREF(tname);
    }
    uint8_t fl = (s->show_args ? TP_EVF_TEXT : 0) | (gen ? TP_EVF_GEN : 0);
    tp_evlog_put(&s->log, TP_EV_CALL, fl, fid, (uint64_t)(now - s->t0));
    if (in_place)
        tp_evlog_text_end(&s->log, tp_capture_args_into(tp_evlog_text_begin(&s->log), ci, *locals,
                                                        s->max_repr_args));
    else if (s->show_args)
        tp_evlog_text(&s->log, tls->scratch.data, tlen);
    b->stack.items[b->stack.size++] =
        (tp_fent){key, s->call_count++, gen ? TP_FENT_GEN : 0, NULL, NULL, 0, 0};
    if (TP_UNLIKELY(s->track_memory))
        start_memory(tls, s, &b->stack.items[b->stack.size - 1]);
}

void tp_record_start(tp_tls *tls, tp_codeinfo *ci, void *key, PyObject *const *locals)
{
    if (TP_UNLIKELY(ci->flags & (TP_CI_INTERNAL | TP_CI_THREAD_START | TP_CI_TASK_SOON))) {
        if (ci->flags & TP_CI_INTERNAL)
            return;
        if (!locals)
            locals = tp_frame_locals(key);
        if ((ci->flags & TP_CI_THREAD_START) && tp_module_g.nthreads_sessions && ci->nparams &&
            locals[0])
            tp_threads_start(tls, locals[0]);
        if ((ci->flags & TP_CI_TASK_SOON) && ci->nparams >= 2)
            tp_record_task_soon(tls, locals);
    }
    /* Only the START right after the bootstrap's can be its duplicate. */
    void *boot = tls->boot_key;
    tls->boot_key = NULL;
    evctx e = {0, 0};
    for (size_t i = 0; i < tls->nactive; i++)
        start_one(tls, tls->active[i], ci, key, boot, &locals, &e);
}

/* ---- ends ----------------------------------------------------------------- */

/* Capture exc's type into tls->scratch and message into tls->scratch3. */
static int capture_exc(tp_tls *tls, PyObject *exc, uint32_t max_repr)
{
    tp_buf_reset(&tls->scratch);
    tp_buf_reset(&tls->scratch3);
    tls->busy++;
    int r = tp_capture_exc(&tls->scratch, &tls->scratch3, exc, max_repr);
    tls->busy--;
    return r;
}

static void pop(tp_binding *b)
{
    tp_fent_clear(&b->stack.items[--b->stack.size]);
}

/* b's top call, of frame key (the caller checked at_top()), returns. */
static void return_one(tp_tls *tls, tp_binding *b, PyObject *retval, evctx *e)
{
    tp_session *s = b->s;
    int64_t now = ev_now(e);
    /* As for the arguments (start_one). */
    bool in_place = s->show_return && tls->nactive == 1 && tp_capture_pure(retval) &&
                    tp_capture_repr_room(s->max_repr_return) <= TP_CAPTURE_IN_PLACE_MAX;
    if (!in_place && s->show_return && e->text_repr != s->max_repr_return) {
        tp_buf_reset(&tls->scratch2);
        tls->busy++;
        int r = tp_capture_repr(&tls->scratch2, retval, s->max_repr_return);
        tls->busy--;
        e->text_repr = r ? 0 : s->max_repr_return;
        if (r) {
            out_of_memory(s);
            return;
        }
    }
    PyObject *caught = b->dead ? NULL : b->stack.items[b->stack.size - 1].exc;
    if (caught && capture_exc(tls, caught, s->max_repr)) {
        out_of_memory(s);
        return;
    }
    if (b->dead)
        return;
    size_t rlen = in_place         ? tp_capture_repr_room(s->max_repr_return)
                  : s->show_return ? tls->scratch2.len
                                   : 0;
    size_t clen = caught ? tls->scratch.len + tls->scratch3.len : 0;
    if (!log_begin(b, rlen + clen, (caught ? 2u : 0u) + s->show_return, now)) {
        pop(b);
        return;
    }
    uint64_t t = (uint64_t)(now - s->t0);
    if (caught) {
        tp_evlog_put(&s->log, TP_EV_CAUGHT, TP_EVF_TEXT, 0, t);
        tp_evlog_text(&s->log, tls->scratch.data, tls->scratch.len);
        tp_evlog_text(&s->log, tls->scratch3.data, tls->scratch3.len);
    }
    tp_evlog_put(&s->log, TP_EV_RETURN, s->show_return ? TP_EVF_TEXT : 0, 0, t);
    if (in_place)
        tp_evlog_text_end(&s->log, tp_capture_repr_into(tp_evlog_text_begin(&s->log), retval,
                                                        s->max_repr_return));
    else if (s->show_return)
        tp_evlog_text(&s->log, tls->scratch2.data, rlen);
    /* The session's flag, in a register already, rather than the entry's. */
    if (TP_UNLIKELY(s->track_memory) && (b->stack.items[b->stack.size - 1].flags & TP_FENT_MEM))
        end_memory(tls, s, &b->stack.items[b->stack.size - 1], -2, t);
    pop(b);
}

bool tp_record_return(tp_tls *tls, void *key, PyObject *retval)
{
    evctx e = {0, 0};
    bool any = false;
    for (size_t i = 0; i < tls->nactive; i++) {
        tp_binding *b = tls->active[i];
        if (at_top(b, key)) {
            any = true;
            return_one(tls, b, retval, &e);
        }
    }
    return any;
}

/* Write the end of entry ent (already off the stack) by exception exc at
 * time now: an UNWIND, or for a generator closed (GeneratorExit, or an
 * exception nobody could see, which only close() swallows) a plain RETURN. */
static void write_unwind(tp_tls *tls, tp_binding *b, const tp_fent *ent, PyObject *exc, int64_t now,
                         int64_t mem_now)
{
    tp_session *s = b->s;
    bool gen = (ent->flags & TP_FENT_GEN) != 0;
    if (gen && (!exc || PyErr_GivenExceptionMatches(exc, PyExc_GeneratorExit))) {
        if (log_begin(b, 0, 0, now)) {
            tp_evlog_put(&s->log, TP_EV_RETURN, 0, 0, (uint64_t)(now - s->t0));
            if (ent->flags & TP_FENT_MEM)
                end_memory(tls, s, ent, mem_now, (uint64_t)(now - s->t0));
        }
        return;
    }
    if (!exc)
        exc = ent->exc; /* best guess: the last exception seen in the call */
    if (exc) {
        if (capture_exc(tls, exc, s->max_repr)) {
            out_of_memory(s);
            return;
        }
    } else {
        tp_buf_reset(&tls->scratch);
        tp_buf_reset(&tls->scratch3);
        tp_buf_puts(&tls->scratch, "<unknown>");
    }
    if (b->dead)
        return;
    if (!log_begin(b, tls->scratch.len + tls->scratch3.len, 2, now))
        return;
    tp_evlog_put(&s->log, TP_EV_UNWIND, TP_EVF_TEXT, 0, (uint64_t)(now - s->t0));
    tp_evlog_text(&s->log, tls->scratch.data, tls->scratch.len);
    tp_evlog_text(&s->log, tls->scratch3.data, tls->scratch3.len);
    if (ent->flags & TP_FENT_MEM)
        end_memory(tls, s, ent, mem_now, (uint64_t)(now - s->t0));
}

void tp_record_unwind(tp_tls *tls, void *key, PyObject *exc)
{
    evctx e = {0, 0};
    for (size_t i = 0; i < tls->nactive; i++) {
        tp_binding *b = tls->active[i];
        if (!at_top(b, key))
            continue;
        tp_fent ent = b->stack.items[--b->stack.size];
        write_unwind(tls, b, &ent, exc, ev_now(&e), -2);
        tp_fent_clear(&ent);
    }
}

bool tp_record_unwind_defer(tp_tls *tls, void *key)
{
    evctx e = {0, 0};
    bool any = false;
    for (size_t i = 0; i < tls->nactive; i++) {
        tp_binding *b = tls->active[i];
        if (!at_top(b, key))
            continue;
        if (b->unwind_pending)
            tp_record_unwind_resolve(tls, NULL);
        b->unwind_ent = b->stack.items[--b->stack.size];
        b->unwind_t = (uint64_t)ev_now(&e);
        b->unwind_mem =
            (b->unwind_ent.flags & TP_FENT_MEM) ? traced_memory(tls, b->s) : -1; /* its end */
        b->unwind_pending = true;
        any = true;
    }
    tls->unwind_pending |= any;
    return any;
}

void tp_record_unwind_resolve(tp_tls *tls, PyObject *exc)
{
    tls->unwind_pending = false;
    /* Collect first: capturing may run Python code, during which a session
     * may be stopped and deallocated elsewhere, changing tls->bindings. */
    tp_binding *todo[16];
    size_t n = 0;
    for (size_t i = 0; i < tls->bindings.size; i++) {
        tp_binding *b = tls->bindings.items[i];
        if (!b->unwind_pending)
            continue;
        if (n == sizeof(todo) / sizeof(todo[0])) {
            tls->unwind_pending = true; /* the rest at the next event */
            break;
        }
        Py_INCREF((PyObject *)b->s);
        todo[n++] = b;
    }
    for (size_t i = 0; i < n; i++) {
        tp_binding *b = todo[i];
        tp_fent ent = b->unwind_ent;
        b->unwind_ent.exc = NULL;
        b->unwind_ent.wref = NULL;
        b->unwind_pending = false;
        /* For a generator, an iteration end arriving now is its closing
         * seen from outside (aclose() completing, for one): closed. */
        PyObject *e = exc;
        if (e && (ent.flags & TP_FENT_GEN) && tp_capture_exc_is_iteration_end(e))
            e = NULL;
        if (!b->dead)
            write_unwind(tls, b, &ent, e, (int64_t)b->unwind_t, b->unwind_mem);
        tp_fent_clear(&ent);
        Py_DECREF((PyObject *)b->s);
    }
}

/* ---- suspension ----------------------------------------------------------- */

/* Take key out of the park of s: true and *ret its slab index when it was
 * there. The others keep their order. */
static bool park_del(tp_session *s, void *key, uint64_t *ret)
{
    for (uint32_t i = s->npark; i-- > 0;) {
        if (s->park[i].key != key)
            continue;
        *ret = s->park[i].idx;
        for (s->npark--; i < s->npark; i++)
            s->park[i] = s->park[i + 1];
        return true;
    }
    return false;
}

/* Whether s has a suspended call, in the park or in suspmap. */
static inline bool susp_any(const tp_session *s)
{
    return s->npark || tp_hmap_size(&s->suspmap);
}

static bool susp_put(tp_session *s, void *key, const tp_fent *ent)
{
    uint32_t idx;
    if (s->susp_free != UINT32_MAX) {
        idx = s->susp_free;
        s->susp_free = s->susp.items[idx].next_free;
    } else {
        /* UINT32_MAX ends the free list, so it is never an index. */
        if (s->susp.size >= UINT32_MAX || tp_vec_grow1(&s->susp) < 0)
            return false;
        idx = (uint32_t)s->susp.size++;
        memset(&s->susp.items[idx], 0, sizeof(s->susp.items[idx]));
    }
    uint64_t old;
    if (park_del(s, key, &old) || tp_hmap_get(&s->suspmap, (uint64_t)(uintptr_t)key, &old)) {
        /* Stale: its frame is reused, so its generator died unseen. */
        tp_record_close_unseen(s, &s->susp.items[old].ent);
        tp_fent_clear(&s->susp.items[old].ent);
        s->susp.items[old].next_free = s->susp_free;
        s->susp_free = (uint32_t)old;
    }
    if (tp_hmap_put(&s->suspmap, (uint64_t)(uintptr_t)key, idx) < 0) {
        s->susp.items[idx].next_free = s->susp_free;
        s->susp_free = idx;
        return false;
    }
    s->susp.items[idx].ent = *ent;
    return true;
}

bool tp_record_close_unseen(tp_session *s, const tp_fent *e)
{
    if (tp_evlog_reserve(&s->log, 0, 0) < 0) {
        s->dropped++;
        return false;
    }
    uint64_t t = (uint64_t)e->t_susp;
    /* The builder keeps each thread's times in order, so a generator that
     * last suspended before the one closed last takes a new thread index:
     * on the old one its end would move forward to that one's. */
    if (!s->closer || t < s->closer_t)
        s->closer = 1 + s->nthreads++;
    s->closer_t = t;
    if (s->log_thread != s->closer - 1) {
        s->log_thread = s->closer - 1;
        tp_evlog_put(&s->log, TP_EV_THREAD, 0, s->log_thread, t);
    }
    tp_evlog_put(&s->log, TP_EV_RESUME, 0, e->seq, t);
    tp_evlog_put(&s->log, TP_EV_RETURN, 0, 0, t);
    if (e->flags & TP_FENT_MEM)
        tp_evlog_put_memory(&s->log, e->mem, t); /* suspended: mem is its delta */
    return true;
}

/* Take the suspended call of key out of s: true and *ret when there is one. */
static bool susp_take(tp_session *s, void *key, tp_fent *ret)
{
    uint64_t val;
    if (!park_del(s, key, &val) && !tp_hmap_del(&s->suspmap, (uint64_t)(uintptr_t)key, &val))
        return false;
    uint32_t idx = (uint32_t)val;
    *ret = s->susp.items[idx].ent;
    s->susp.items[idx].ent.exc = NULL;
    s->susp.items[idx].ent.wref = NULL;
    s->susp.items[idx].next_free = s->susp_free;
    s->susp_free = idx;
    return true;
}

bool tp_record_yield(tp_tls *tls, void *key)
{
    evctx e = {0, 0};
    bool any = false;
    for (size_t i = 0; i < tls->nactive; i++) {
        tp_binding *b = tls->active[i];
        if (!at_top(b, key))
            continue;
        any = true;
        tp_session *s = b->s;
        tp_fent ent = b->stack.items[--b->stack.size];
        int64_t now = ev_now(&e);
        ent.t_susp = now - s->t0;
        if (TP_UNLIKELY(s->track_memory) && (ent.flags & TP_FENT_MEM))
            switch_memory(tls, s, &ent); /* suspended, it keeps its delta so far */
#if PY_VERSION_HEX >= 0x030D0000
        /* 3.13 closes a generator suspended outside a try block without
         * running it, so without any event: a weak reference lets stop()
         * notice (see tp_session_close_silent()). */
        if (!ent.wref) {
            PyObject *g = tp_frame_generator(key);
            ent.wref = g ? PyWeakref_NewRef(g, NULL) : NULL;
            if (!ent.wref)
                PyErr_Clear();
        }
#endif
        if (!susp_put(s, key, &ent)) {
            tp_fent_clear(&ent);
            out_of_memory(s);
            continue;
        }
        if (log_begin(b, 0, 0, now))
            tp_evlog_put(&s->log, TP_EV_YIELD, 0, ent.seq, (uint64_t)(now - s->t0));
    }
    return any;
}

bool tp_record_resume(tp_tls *tls, void *key)
{
    evctx e = {0, 0};
    bool any = false;
    for (size_t i = 0; i < tls->nactive; i++) {
        tp_binding *b = tls->active[i];
        tp_session *s = b->s;
        if (b->dead || !susp_any(s))
            continue;
        tp_fent ent;
        if (!susp_take(s, key, &ent))
            continue;
        any = true;
        if (tp_vec_grow1(&b->stack) < 0) {
            tp_fent_clear(&ent);
            out_of_memory(s);
            continue;
        }
        if (TP_UNLIKELY(s->track_memory) && (ent.flags & TP_FENT_MEM))
            switch_memory(tls, s, &ent); /* what it allocates now adds to its delta */
        int64_t now = ev_now(&e);
        if (!log_begin(b, 0, 0, now)) {
            tp_fent_clear(&ent);
            continue;
        }
        tp_evlog_put(&s->log, TP_EV_RESUME, 0, ent.seq, (uint64_t)(now - s->t0));
        b->stack.items[b->stack.size++] = ent;
    }
    return any;
}

void tp_record_forget(tp_tls *tls, void *key)
{
    for (size_t i = 0; i < tls->nactive; i++) {
        tp_session *s = tls->active[i]->s;
        tp_fent ent;
        if (susp_any(s) && susp_take(s, key, &ent)) {
            /* A new generator starts in this frame: the one suspended
             * there is gone. */
            tp_record_close_unseen(s, &ent);
            tp_fent_clear(&ent);
        }
    }
}

void tp_record_exception(tp_tls *tls, void *key, PyObject *exc)
{
    if (tp_capture_exc_is_iteration_end(exc))
        return;
    for (size_t i = 0; i < tls->nactive; i++) {
        tp_binding *b = tls->active[i];
        if (at_top(b, key))
            Py_XSETREF(b->stack.items[b->stack.size - 1].exc, Py_NewRef(exc));
    }
}

void tp_record_end_gone(tp_tls *tls, bool (*live)(void *key, void *ctx), void *ctx)
{
    evctx e = {0, 0};
    for (size_t i = 0; i < tls->nactive; i++) {
        tp_binding *b = tls->active[i];
        /* Calls end innermost first: the gone ones are the top of the stack. */
        while (!b->dead && b->stack.size && !live(b->stack.items[b->stack.size - 1].key, ctx)) {
            int64_t now = ev_now(&e);
            if (!log_begin(b, 0, 0, now))
                break;
            tp_evlog_put(&b->s->log, TP_EV_RETURN, 0, 0, (uint64_t)(now - b->s->t0));
            pop(b);
        }
    }
}
