/* Query answers from a worker thread to the loop, in bounded memory
 * (qstream.h). */
#include "qstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int tp_qstream_init(tp_qstream *s, uv_loop_t *loop, size_t limit, uv_async_cb on_piece, void *data)
{
    memset(s, 0, sizeof(*s));
    s->tail = &s->head;
    s->limit = limit;
    int r = uv_async_init(loop, &s->async, on_piece);
    if (r < 0)
        return r;
    s->async.data = data;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    return 0;
}

int tp_qstream_push(tp_qstream *s, const char *content_type, const char *p, size_t n)
{
    tp_qstream_piece *pc = malloc(sizeof(*pc) + n);
    if (!pc)
        return -ENOMEM;
    pc->next = NULL;
    pc->content_type = content_type;
    pc->len = n;
    memcpy(pc->data, p, n);
    pthread_mutex_lock(&s->mu);
    if (s->cancelled) {
        pthread_mutex_unlock(&s->mu);
        free(pc);
        return -EPIPE;
    }
    *s->tail = pc;
    s->tail = &pc->next;
    s->ahead += n;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
    pthread_mutex_lock(&s->mu);
    while (s->ahead > s->limit && !s->cancelled)
        pthread_cond_wait(&s->cv, &s->mu);
    int r = s->cancelled ? -EPIPE : 0;
    pthread_mutex_unlock(&s->mu);
    return r;
}

tp_qstream_piece *tp_qstream_pop(tp_qstream *s)
{
    pthread_mutex_lock(&s->mu);
    tp_qstream_piece *p = s->head;
    if (p) {
        s->head = p->next;
        if (!s->head)
            s->tail = &s->head;
    }
    pthread_mutex_unlock(&s->mu);
    return p;
}

void tp_qstream_sent(tp_qstream *s, size_t n)
{
    pthread_mutex_lock(&s->mu);
    s->ahead -= n;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void free_pieces(tp_qstream_piece *p)
{
    while (p) {
        tp_qstream_piece *next = p->next;
        free(p);
        p = next;
    }
}

void tp_qstream_cancel(tp_qstream *s)
{
    pthread_mutex_lock(&s->mu);
    s->cancelled = true;
    tp_qstream_piece *p = s->head;
    s->head = NULL;
    s->tail = &s->head;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    free_pieces(p);
}

void tp_qstream_close(tp_qstream *s, uv_close_cb on_closed)
{
    uv_close((uv_handle_t *)&s->async, on_closed);
}

void tp_qstream_destroy(tp_qstream *s)
{
    free_pieces(s->head);
    s->head = NULL;
    s->tail = &s->head;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}
