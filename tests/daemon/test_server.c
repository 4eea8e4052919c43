/* The socket server's thread rule (daemon/tphd/tphd.h, "Threads"): what
 * belongs to the loop thread asserts so in builds without NDEBUG, because a
 * call from another thread would corrupt libuv's state without a crash. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>

#include "server_priv.h"

static uv_loop_t loop;
static tp_server *srv;

static void setup(void)
{
    tp_server_opts o = {.socket_path = "/nonexistent/tphd.sock", .listen_fd = -1};

    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(tp_server_new(&loop, &o, &srv), 0);
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* The server never listened: close the handles tp_server_new() made. */
static void teardown(void)
{
    uv_walk(&loop, close_handle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    tp_server_free(srv);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

TestSuite(server, .init = setup, .fini = teardown);

static void *publish(void *s)
{
    tp_server_publish(s);
    return NULL;
}

Test(server, publish_on_the_loop_thread_updates_the_snapshot)
{
    srv->nconns = 3;
    tp_server_publish(srv);
    cr_assert_eq(srv->snap.clients, 3);
    cr_assert(tp_server_on_loop(srv));
}

#ifndef NDEBUG
Test(server, publish_from_another_thread_aborts, .signal = SIGABRT)
{
    pthread_t t;

    cr_assert_eq(pthread_create(&t, NULL, publish, srv), 0);
    pthread_join(t, NULL);
}
#endif
