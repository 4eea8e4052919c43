"""The WSGI middleware and the Flask integration, through werkzeug's and
Flask's own test clients, with requests running concurrently in threads."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

flask = pytest.importorskip("flask")
from werkzeug.test import Client  # noqa: E402 (Flask brings werkzeug)

from tracepatch.integrations.flask import init_tracepatch  # noqa: E402
from tracepatch.integrations.wsgi import TracepatchMiddleware  # noqa: E402

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def work(n):
    return n * 2


def make_flask(barrier=None):
    app = flask.Flask("tp_flask_test")

    @app.route("/work/<int:n>")
    def view(n):
        if barrier is not None:
            barrier.wait(timeout=10)  # every request is in flight at once
        return f"n={work(n)}"

    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    @app.route("/stream")
    def stream():
        def body():
            yield "a"
            yield "b"
        return flask.Response(body(), status=201, mimetype="text/plain")

    return app


def called(t, name="work"):
    return sorted(n.args for r in t.roots for n in r.walk() if n.name == name)


def test_flask_concurrent_requests_each_get_their_own_trace():
    barrier = threading.Barrier(6)
    traces = []
    app = make_flask(barrier)
    init_tracepatch(app, on_trace=traces.append, daemon="off")
    client = app.test_client()

    def get(i):
        return client.get(f"/work/{i}")

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(get, range(6)))

    assert [r.status_code for r in responses] == [200] * 6
    assert [r.get_data(as_text=True) for r in responses] == [f"n={2 * i}" for i in range(6)]
    assert len(traces) == 6
    by_id = {t.trace_id: t for t in traces}
    for i, r in enumerate(responses):
        t = by_id[r.headers["X-Tracepatch-ID"]]
        assert t.label == "GET /work/<int:n>"
        assert called(t) == [f"n={i}"]
        assert "X-Tracepatch-Open" not in r.headers  # no tphd took it


def test_flask_response_status_and_body_are_unchanged():
    plain = make_flask().test_client()
    app = make_flask()
    init_tracepatch(app, daemon="off")
    traced = app.test_client()
    for path in ("/work/3", "/boom", "/missing", "/stream"):
        a, b = plain.get(path), traced.get(path)
        assert (b.status_code, b.get_data()) == (a.status_code, a.get_data()), path
        assert "X-Tracepatch-ID" in b.headers
    assert traced.get("/stream").get_data() == b"ab"
    assert traced.get("/missing").status_code == 404


def test_flask_unmatched_url_is_labelled_with_its_path():
    traces = []
    app = make_flask()
    init_tracepatch(app, on_trace=traces.append, daemon="off")
    app.test_client().post("/nowhere/7")
    assert [t.label for t in traces] == ["POST /nowhere/7"]


def test_flask_disabled_is_a_pass_through():
    traces = []
    app = make_flask()
    init_tracepatch(app, enabled=False, on_trace=traces.append)
    r = app.test_client().get("/work/1")
    assert r.get_data() == b"n=2" and "X-Tracepatch-ID" not in r.headers
    assert traces == []


def hello_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hi {work(int(environ['QUERY_STRING'] or 0))}".encode()]


def test_wsgi_traces_every_request_by_default_with_method_and_path_label():
    traces = []
    client = Client(TracepatchMiddleware(hello_app, on_trace=traces.append, daemon="off"))
    r = client.get("/x/y?4")
    assert r.get_data() == b"hi 8"
    assert [t.label for t in traces] == ["GET /x/y"]
    assert r.headers["X-Tracepatch-ID"] == traces[0].trace_id
    assert called(traces[0]) == ["n=4"]


def test_wsgi_label_fn_names_the_trace():
    traces = []
    app = TracepatchMiddleware(hello_app, label_fn=lambda env: env["PATH_INFO"],
                               on_trace=traces.append, daemon="off")
    Client(app).get("/only/path")
    assert [t.label for t in traces] == ["/only/path"]


@pytest.mark.parametrize("value, traced", [(None, False), ("1", True), ("yes", True),
                                           ("0", False), ("off", False), ("", False)])
def test_wsgi_trace_header_decides_which_requests_are_traced(value, traced):
    traces = []
    client = Client(TracepatchMiddleware(hello_app, trace_header=True,
                                         on_trace=traces.append, daemon="off"))
    headers = {} if value is None else {"X-Debug-Trace": value}
    r = client.get("/", headers=headers)
    assert r.get_data() == b"hi 0"
    assert len(traces) == (1 if traced else 0)
    assert ("X-Tracepatch-ID" in r.headers) is traced


def test_wsgi_trace_header_can_be_renamed():
    traces = []
    client = Client(TracepatchMiddleware(hello_app, trace_header="X-Trace-Me",
                                         on_trace=traces.append, daemon="off"))
    client.get("/", headers={"X-Debug-Trace": "1"})
    client.get("/", headers={"X-Trace-Me": "1"})
    assert len(traces) == 1


@pytest.mark.parametrize("rate, expected", [(0.0, 0), (1.0, 5)])
def test_wsgi_sample_rate_bounds(rate, expected):
    traces = []
    client = Client(TracepatchMiddleware(hello_app, sample_rate=rate,
                                         on_trace=traces.append, daemon="off"))
    for _ in range(5):
        client.get("/")
    assert len(traces) == expected


def test_wsgi_header_traces_a_request_the_sampling_skipped():
    traces = []
    client = Client(TracepatchMiddleware(hello_app, trace_header=True, sample_rate=0.0,
                                         on_trace=traces.append, daemon="off"))
    client.get("/")
    client.get("/", headers={"X-Debug-Trace": "1"})
    assert len(traces) == 1


def test_wsgi_bad_options_raise_at_construction():
    with pytest.raises(ValueError):
        TracepatchMiddleware(hello_app, sample_rate=1.5)
    with pytest.raises(TypeError):
        TracepatchMiddleware(hello_app, no_such_option=1)
    with pytest.raises(TypeError):
        TracepatchMiddleware(hello_app, on_trace=3)
    with pytest.raises(TypeError, match="otel_parent comes from each request"):
        TracepatchMiddleware(hello_app, otel_parent=TRACEPARENT)


def test_wsgi_traceparent_header_is_the_traces_otel_parent():
    traces = []
    client = Client(TracepatchMiddleware(hello_app, on_trace=traces.append, daemon="off"))
    client.get("/", headers={"traceparent": TRACEPARENT})
    client.get("/")
    configs = [json.loads(t.to_json())["config"] for t in traces]
    assert [c.get("otel_parent") for c in configs] == [TRACEPARENT, None]
    # Without a parent the trace is an OpenTelemetry trace of its own.
    assert [t.otel_trace_id for t in traces] == ["4bf92f3577b34da6a3ce929d0e0e4736",
                                                 traces[1].trace_id]


@pytest.mark.parametrize("value", [
    "00-" + "0" * 32 + "-00f067aa0ba902b7-01",  # all-zero trace id
    TRACEPARENT + "-extra",  # version 00 has exactly four fields
    "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short id
    "garbage",
])
def test_wsgi_malformed_traceparent_is_dropped_without_a_warning(value, recwarn):
    # The header comes from outside: a bad one costs the link, never a
    # warning per request (trace(otel_parent=bad) itself warns).
    traces = []
    client = Client(TracepatchMiddleware(hello_app, on_trace=traces.append, daemon="off"))
    r = client.get("/", headers={"traceparent": value})
    assert r.status_code == 200
    assert traces[0].otel_trace_id == traces[0].trace_id
    assert "otel_parent" not in json.loads(traces[0].to_json())["config"]
    assert [str(w.message) for w in recwarn] == []


def test_wsgi_capture_traceparent_off_ignores_the_header():
    traces = []
    client = Client(TracepatchMiddleware(hello_app, capture_traceparent=False,
                                         on_trace=traces.append, daemon="off"))
    client.get("/", headers={"traceparent": TRACEPARENT})
    assert "otel_parent" not in json.loads(traces[0].to_json())["config"]


def test_wsgi_save_writes_each_trace_to_the_cache(tmp_path):
    traces = []
    client = Client(TracepatchMiddleware(hello_app, save=True, cache_dir=tmp_path / "c",
                                         on_trace=traces.append, daemon="off"))
    client.get("/")
    assert traces[0].cache_path is not None and traces[0].cache_path.exists()


def test_wsgi_write_callable_and_lazy_start_response_pass_through():
    def writer_app(environ, start_response):
        write = start_response("202 Accepted", [("X-App", "1")])
        write(b"early ")
        return [b"late"]

    def generator_app(environ, start_response):
        start_response("203 Non-Authoritative Information", [])
        yield b"gen"

    for app, status, body in ((writer_app, 202, b"early late"),
                              (generator_app, 203, b"gen")):
        r = Client(TracepatchMiddleware(app, daemon="off")).get("/")
        assert (r.status_code, r.get_data()) == (status, body)
        assert len(r.headers["X-Tracepatch-ID"]) == 32


def test_wsgi_application_error_propagates_and_headers_are_not_sent():
    def failing(environ, start_response):
        start_response("200 OK", [])
        raise KeyError("nope")

    seen = []

    def start_response(status, headers, exc_info=None):
        seen.append(status)

    with pytest.raises(KeyError):
        TracepatchMiddleware(failing, daemon="off")({"REQUEST_METHOD": "GET"}, start_response)
    assert seen == []


def test_wsgi_on_trace_error_becomes_a_warning_not_a_failed_response():
    def bad(t):
        raise RuntimeError("logger down")

    client = Client(TracepatchMiddleware(hello_app, on_trace=bad, daemon="off"))
    with pytest.warns(Warning, match="on_trace raised RuntimeError: logger down"):
        r = client.get("/")
    assert r.status_code == 200 and r.get_data() == b"hi 0"


def test_wsgi_with_tracing_disabled_adds_no_header_and_reports_no_trace(monkeypatch):
    monkeypatch.setenv("TRACEPATCH_ENABLED", "0")
    traces = []
    r = Client(TracepatchMiddleware(hello_app, on_trace=traces.append, daemon="off")).get("/")
    assert r.get_data() == b"hi 0" and "X-Tracepatch-ID" not in r.headers
    assert traces == []


def test_flask_ignoring_flask_and_werkzeug_keeps_the_view_and_its_calls():
    # 1.0.0's documented call: init_tracepatch(app, ignore_modules=["flask", "werkzeug"])
    traces = []
    app = make_flask()
    init_tracepatch(app, ignore_modules=["flask", "werkzeug"], on_trace=traces.append,
                    daemon="off")
    app.test_client().get("/work/5")
    modules = {n.module for r in traces[0].roots for n in r.walk()}
    assert not any(m.split(".")[0] in ("flask", "werkzeug") for m in modules)
    views = [r for r in traces[0].roots if r.name == "view"]
    assert len(views) == 1 and views[0].args == "n=5"
    assert [(c.name, c.args, c.return_value) for c in views[0].children] == [("work", "n=5", "10")]


def frame_names(pending):
    return [f[0] for f in pending]


def test_flask_marks_one_frame_per_request_named_by_its_url_rule(live_frames):
    app = make_flask()
    init_tracepatch(app, sample_rate=0.0, daemon="off")  # frames, not traces
    client = app.test_client()
    for path in ("/work/1", "/work/22", "/boom", "/nowhere/7"):
        client.get(path)
    assert frame_names(live_frames) == ["GET /work/<int:n>", "GET /work/<int:n>", "GET /boom",
                                        "GET /nowhere/7"]
    assert all(f[2] > 0 for f in live_frames)


def test_flask_a_traced_request_is_one_frame_too(live_frames):
    app = make_flask()
    init_tracepatch(app, daemon="off")
    app.test_client().get("/work/3")
    assert frame_names(live_frames) == ["GET /work/<int:n>"]


def test_wsgi_frame_lasts_the_application_call_and_is_named_by_path(live_frames):
    import time

    def slow_app(environ, start_response):
        time.sleep(0.03)
        return hello_app(environ, start_response)

    Client(TracepatchMiddleware(slow_app, sample_rate=0.0)).get("/x/y?2")
    [(name, start, dur)] = live_frames
    assert name == "GET /x/y" and dur >= 30_000_000


def test_wsgi_frame_of_a_request_that_raises_is_kept(live_frames):
    def bad_app(environ, start_response):
        raise KeyError("x")

    for rate in (0.0, 1.0):  # untraced, then traced
        with pytest.raises(KeyError):
            Client(TracepatchMiddleware(bad_app, sample_rate=rate, daemon="off")).get("/b")
    assert frame_names(live_frames) == ["GET /b", "GET /b"]


def test_wsgi_frames_false_or_disabled_marks_no_frame(live_frames):
    Client(TracepatchMiddleware(hello_app, frames=False, daemon="off")).get("/a")
    Client(TracepatchMiddleware(hello_app, enabled=False)).get("/b")
    assert live_frames == []


def test_wsgi_without_a_daemon_computes_no_frame_name(monkeypatch):
    from tracepatch import frames

    monkeypatch.setattr(frames, "_live", False)
    monkeypatch.setattr(frames, "_started", True)
    calls = []
    app = TracepatchMiddleware(hello_app, sample_rate=0.0,
                               label_fn=lambda env: calls.append(1) or "x")
    assert Client(app).get("/").get_data() == b"hi 0"
    assert calls == []


def test_wsgi_frame_carries_the_id_of_a_trace_tphd_took(live_frames, monkeypatch):
    from tracepatch import _trace

    traces = []
    client = Client(TracepatchMiddleware(hello_app, on_trace=traces.append, daemon="off"))
    client.get("/off")  # daemon="off": tphd never had it, so no link
    monkeypatch.setattr(_trace.trace, "upload_state", property(lambda t: "acked"))
    client.get("/on")
    Client(TracepatchMiddleware(hello_app, sample_rate=0.0)).get("/untraced")
    assert [f[0] for f in live_frames] == ["GET /off", "GET /on", "GET /untraced"]
    assert [len(f) for f in live_frames] == [3, 4, 3]
    assert live_frames[1][3] == traces[1].trace_id


def test_wsgi_frame_of_a_dropped_keep_slow_trace_carries_no_id(live_frames, monkeypatch):
    from tracepatch import _trace

    monkeypatch.setattr(_trace.trace, "upload_state", property(lambda t: "acked"))
    traces = []
    Client(TracepatchMiddleware(hello_app, on_trace=traces.append, keep="slow",
                                keep_slower_than=60)).get("/fast")
    assert traces[0].kept is False
    assert [len(f) for f in live_frames] == [3]


def test_wsgi_keep_p99_keeps_exactly_the_requests_slower_than_their_routes_p99(
        live_frames, monkeypatch):
    from tracepatch import frames

    # A fake clock: each request lasts the milliseconds its query string says.
    clock = [0]
    monkeypatch.setattr(frames, "_perf", lambda: clock[0])
    monkeypatch.setattr(frames, "_recent", {})

    def app(environ, start_response):
        ms, _, fail = environ["QUERY_STRING"].partition("-")
        clock[0] += int(ms) * 1_000_000
        if fail:
            raise KeyError("boom")
        return hello_app({**environ, "QUERY_STRING": ""}, start_response)

    traces = []
    client = Client(TracepatchMiddleware(app, on_trace=traces.append, daemon="off",
                                         keep_slower_than="p99"))
    # 100 requests of 10 ms set the route's p99 (10 ms); before them there is none.
    work = ["10"] * 100 + ["10", "11", "5-fail", "9", "50"]
    for q in work:
        try:
            client.get("/r?" + q)
        except KeyError:
            pass
    # on_trace sees the requests that returned (not "5-fail"): of those, only
    # the 11 ms and 50 ms ones were slower than the p99 before them; the
    # 10 ms one equals it. All 105 joined the window.
    assert len(traces) == 104
    assert [i for i, t in enumerate(traces) if t.kept] == [101, 103]
    # Nearest rank 104 of 105 (5, 9, 10 x 101, 11, 50) is 11 ms.
    assert (len(frames._recent["GET /r"].order), frames.running_p99("GET /r")) == (105, 0.011)
    assert [f[2] for f in live_frames][-3:] == [5_000_000, 9_000_000, 50_000_000]


def test_wsgi_keep_p99_untraced_requests_feed_the_window(live_frames, monkeypatch):
    from tracepatch import frames

    monkeypatch.setattr(frames, "_recent", {})
    client = Client(TracepatchMiddleware(hello_app, sample_rate=0.0, keep_slower_than="p99"))
    for _ in range(3):
        client.get("/u")
    assert len(frames._recent["GET /u"].order) == 3
