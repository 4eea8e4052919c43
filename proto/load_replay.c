/* The replay half of the JSON trace loader: the calls a document nests,
 * replayed in the order they happened through the tree builder (tree.h), so
 * a loaded tree obeys every invariant a recorded one does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "load_priv.h"
#include "tp_err.h"

/* ---- Replay ---------------------------------------------------------------------- *
 *
 * The file nests calls; the builder wants events in the order they happened.
 * Within one thread, calls that are not generators nest in time as they do in
 * the file, so each root's calls, leaving out generators' subtrees, are in
 * time order in the file: a segment. So is each generator's own activity.
 * The replay merges the segments by time and, before each event, makes the
 * call's parent current on its thread the way the traced program must have:
 * generators in the way suspend (and resume when their turn comes), calls
 * that are due end. A first, dry run counts the suspensions the merge itself
 * needs; the real run adds the rest of each generator's recorded count right
 * after its CALL, so suspends come out as recorded. */

/* The mirror stack of thread id, created when new; returns its index. */
static int thread_stack(loader *l, uint32_t id, size_t *ret)
{
    uint64_t i;
    if (tp_hmap_get(&l->th_index, id, &i)) {
        *ret = (size_t)i;
        return 0;
    }
    if (tp_vec_grow1(&l->th) < 0 || tp_hmap_put(&l->th_index, id, l->th.size) < 0)
        return -ENOMEM;
    l->th.items[l->th.size] = (tstack){.id = id};
    *ret = l->th.size++;
    return 0;
}

static int builder(loader *l, int r)
{
    if (!r || r == -ENOMEM)
        return r;
    if (r == TP_ERR_LIMIT)
        return tp_load_priv_fail(l, "too many calls");
    return tp_load_priv_fail(l, "the calls cannot be replayed (%s)", tp_strerror(r));
}

static int push_call(loader *l, size_t ti, uint32_t x)
{
    tstack *t = &l->th.items[ti];
    if (tp_vec_grow1(&t->s) < 0)
        return -ENOMEM;
    t->s.items[t->s.size++] = x;
    l->calls.items[x].state = C_RUNNING;
    l->calls.items[x].thread = t->id;
    return 0;
}

/* Suspends the generator on top of stack ti. */
static int do_yield(loader *l, size_t ti, int64_t now)
{
    tstack *t = &l->th.items[ti];
    lcall *c = &l->calls.items[t->s.items[t->s.size - 1]];
    int r = 0;
    if (!l->dry && !(r = tp_tree_thread(l->t, t->id)))
        r = tp_tree_yield(l->t, c->seq, (uint64_t)now);
    t->s.size--;
    c->state = C_SUSPENDED;
    c->yields++;
    return builder(l, r);
}

static int do_resume(loader *l, size_t ti, uint32_t x, int64_t now)
{
    int r = 0;
    if (!l->dry && !(r = tp_tree_thread(l->t, l->th.items[ti].id)))
        r = tp_tree_resume(l->t, l->calls.items[x].seq, (uint64_t)now);
    return r ? builder(l, r) : push_call(l, ti, x);
}

/* Ends the call on top of stack ti: at its recorded end, or now if that has
 * not come yet (the file contradicts itself). */
static int do_finish(loader *l, size_t ti, int64_t now)
{
    tstack *t = &l->th.items[ti];
    lcall *c = &l->calls.items[t->s.items[t->s.size - 1]];
    int64_t end = !c->c.unfinished && c->end_ns < now ? c->end_ns : now;
    int r = 0;
    if (!l->dry && !(r = tp_tree_thread(l->t, t->id))) {
        if (c->c.raised)
            r = tp_tree_unwind(l->t, (uint64_t)end, c->c.exc_type, c->c.type_len, c->c.exc_msg,
                               c->c.msg_len);
        else
            r = tp_tree_return(l->t, (uint64_t)end, c->c.ret, c->c.ret_len);
    }
    t->s.size--;
    c->state = C_DONE;
    return builder(l, r);
}

/* Unwinds stack ti down to call x (everything when x is NONE): calls that
 * are due end, generators suspend, anything else ends early. */
static int pop_to(loader *l, size_t ti, uint32_t x, int64_t now)
{
    int r = 0;
    while (!r && l->th.items[ti].s.size &&
           l->th.items[ti].s.items[l->th.items[ti].s.size - 1] != x) {
        const lcall *c = &l->calls.items[l->th.items[ti].s.items[l->th.items[ti].s.size - 1]];
        bool due = !c->c.unfinished && c->end_ns <= now;
        r = !due && c->c.generator ? do_yield(l, ti, now) : do_finish(l, ti, now);
    }
    return r;
}

static bool is_descendant(const loader *l, uint32_t x, uint32_t y)
{
    for (uint32_t p = l->calls.items[x].parent; p != NONE; p = l->calls.items[p].parent)
        if (p == y)
            return true;
    return false;
}

/* Before suspended generator x resumes on stack ti: whoever resumes it is
 * on top there, so calls that are due end first. A generator on top may be
 * the resumer (a `yield from` chain resumes its inner generators) or may
 * have suspended already: it suspends here if it is no ancestor of x and
 * its recorded count leaves room for one more suspension. */
static int clear_for_resume(loader *l, size_t ti, uint32_t x, int64_t now)
{
    int r = 0;
    while (!r && l->th.items[ti].s.size) {
        uint32_t y = l->th.items[ti].s.items[l->th.items[ti].s.size - 1];
        const lcall *c = &l->calls.items[y];
        if (!c->c.unfinished && c->end_ns <= now)
            r = do_finish(l, ti, now);
        else if (c->c.generator && c->yields < c->c.suspends && !is_descendant(l, x, y))
            r = do_yield(l, ti, now);
        else
            break;
    }
    return r;
}

/* Makes call p current (a root's context when NONE) and says on which
 * thread: the thread the new call names, where a suspended generator p is
 * resumed (a running one moves there: it must have suspended meanwhile);
 * a running p that is no generator stays where it runs. */
static int make_current(loader *l, uint32_t p, uint32_t thread, int64_t now, size_t *ret_ti)
{
    int r;
    if (p != NONE && l->calls.items[p].state == C_RUNNING) {
        const lcall *c = &l->calls.items[p];
        if ((r = thread_stack(l, c->thread, ret_ti)) || (r = pop_to(l, *ret_ti, p, now)))
            return r;
        if (!c->c.generator || c->thread == thread)
            return 0;
        if ((r = do_yield(l, *ret_ti, now)))
            return r;
    }
    if ((r = thread_stack(l, thread, ret_ti)))
        return r;
    if (p == NONE)
        return pop_to(l, *ret_ti, p, now);
    if (l->calls.items[p].state == C_SUSPENDED) {
        r = clear_for_resume(l, *ret_ti, p, now);
        return r ? r : do_resume(l, *ret_ti, p, now);
    }
    return 0; /* p has ended: the file contradicts itself; attach where we are */
}

static int on_call(loader *l, uint32_t x)
{
    lcall *c = &l->calls.items[x];
    int64_t now = c->start_ns;
    size_t ti;
    int r = make_current(l, c->parent, c->c.thread, now, &ti);
    if (r || l->dry)
        return r ? r : push_call(l, ti, x);
    const call_info *i = &c->c;
    c->seq = (uint32_t)l->t->nnodes;
    r = tp_tree_thread(l->t, l->th.items[ti].id);
    if (!r)
        r = tp_tree_call(l->t, c->func, (uint64_t)now, i->generator, i->args, i->args_len);
    for (uint32_t k = 0; !r && k < c->pad; k++) {
        r = tp_tree_yield(l->t, c->seq, (uint64_t)now);
        if (!r)
            r = tp_tree_resume(l->t, c->seq, (uint64_t)now);
    }
    if (!r && i->caught)
        r = tp_tree_caught(l->t, (uint64_t)now, i->exc_type, i->type_len, i->exc_msg, i->msg_len);
    return r ? builder(l, r) : push_call(l, ti, x);
}

static int on_end(loader *l, uint32_t x)
{
    lcall *c = &l->calls.items[x];
    size_t ti;
    if (c->state != C_RUNNING && c->state != C_SUSPENDED)
        return 0; /* already ended, early */
    int r = thread_stack(l, c->thread, &ti);
    if (!r && c->state == C_SUSPENDED && !(r = clear_for_resume(l, ti, x, c->end_ns)))
        r = do_resume(l, ti, x, c->end_ns);
    if (!r)
        r = pop_to(l, ti, x, c->end_ns);
    return r ? r : do_finish(l, ti, c->end_ns);
}

/* Order of two segments' next events: by time; at equal times an END goes
 * first (the call it ends must make way), unless the CALL is of one of its
 * descendants; then document order. */
static bool before(const loader *l, uint32_t s1, uint32_t s2)
{
    uint32_t k1 = l->segs.items[s1].cur, k2 = l->segs.items[s2].cur;
    uint32_t w1 = l->ev.items[k1].what, w2 = l->ev.items[k2].what;
    const lcall *c1 = &l->calls.items[w1 >> 1], *c2 = &l->calls.items[w2 >> 1];
    int64_t t1 = w1 & 1 ? c1->end_ns : c1->start_ns, t2 = w2 & 1 ? c2->end_ns : c2->start_ns;
    if (t1 != t2)
        return t1 < t2;
    if ((w1 & 1) != (w2 & 1)) {
        uint32_t call = w1 & 1 ? w2 >> 1 : w1 >> 1, end = w1 & 1 ? w1 >> 1 : w2 >> 1;
        bool call_first = is_descendant(l, call, end);
        return (w1 & 1) ? !call_first : call_first;
    }
    return k1 < k2;
}

static void sift_down(const loader *l, uint32_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t m = i, a = 2 * i + 1, b = a + 1;
        if (a < n && before(l, h[a], h[m]))
            m = a;
        if (b < n && before(l, h[b], h[m]))
            m = b;
        if (m == i)
            return;
        uint32_t tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

/* One run of the merge. */
static int run(loader *l, uint32_t *heap)
{
    for (size_t x = 0; x < l->calls.size; x++) {
        l->calls.items[x].state = C_NEW;
        l->calls.items[x].yields = 0;
    }
    for (size_t i = 0; i < l->th.size; i++)
        l->th.items[i].s.size = 0;
    size_t n = 0;
    for (size_t s = 0; s < l->segs.size; s++) {
        l->segs.items[s].cur = l->segs.items[s].head;
        if (l->segs.items[s].cur != NONE)
            heap[n++] = (uint32_t)s;
    }
    for (size_t i = n / 2; i-- > 0;)
        sift_down(l, heap, n, i);
    int r = 0;
    while (n && !r) {
        segment *s = &l->segs.items[heap[0]];
        uint32_t what = l->ev.items[s->cur].what;
        s->cur = l->ev.items[s->cur].next;
        if (s->cur == NONE)
            heap[0] = heap[--n];
        sift_down(l, heap, n, 0);
        r = what & 1 ? on_end(l, what >> 1) : on_call(l, what >> 1);
    }
    return r;
}

int tp_load_priv_replay(loader *l)
{
    uint32_t *heap = malloc((l->segs.size ? l->segs.size : 1) * sizeof(*heap));
    if (!heap)
        return -ENOMEM;
    l->dry = true;
    int r = run(l, heap);
    for (size_t x = 0; !r && x < l->calls.size; x++) {
        lcall *c = &l->calls.items[x];
        c->pad = c->c.suspends > c->yields ? c->c.suspends - c->yields : 0;
    }
    l->dry = false;
    if (!r)
        r = run(l, heap);
    free(heap);
    return r;
}
