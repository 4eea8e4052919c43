"""The ASGI middleware with FastAPI and Starlette, through Starlette's
TestClient and httpx's AsyncClient (concurrent requests as asyncio tasks)."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")
try:
    import fastapi
except (ImportError, TypeError) as exc:  # Debian's pydantic 1.10 fails on 3.12+
    fastapi, FASTAPI_ERROR = None, f"{type(exc).__name__}: {exc}"
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from tracepatch.integrations.fastapi import TracepatchMiddleware  # noqa: E402

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def work(n):
    await asyncio.sleep(0)
    return n + 100


FRAMEWORKS = [pytest.param("fastapi", marks=pytest.mark.skipif(
    fastapi is None, reason=f"FastAPI cannot be imported here: {FASTAPI_ERROR}"
    if fastapi is None else "")), "starlette"]


async def _body():
    yield b"a"
    yield b"b"


def make_app(kind, traces, gate=None, **options):
    """The same routes in FastAPI or in plain Starlette."""
    async def item_value(item_id):
        if gate is not None:
            await gate()
        return {"v": await work(item_id)}

    async def teapot():
        return PlainTextResponse("short and stout", status_code=418)

    async def stream():
        return StreamingResponse(_body(), status_code=206)

    if kind == "fastapi":
        app = fastapi.FastAPI()

        @app.get("/items/{item_id}")
        async def item(item_id: int):
            return await item_value(item_id)

        app.get("/teapot")(teapot)
        app.get("/stream")(stream)
    else:
        async def item(request):
            return JSONResponse(await item_value(int(request.path_params["item_id"])))

        async def teapot_route(request):
            return await teapot()

        async def stream_route(request):
            return await stream()

        app = Starlette(routes=[Route("/items/{item_id}", item),
                                Route("/teapot", teapot_route),
                                Route("/stream", stream_route)])
    options.setdefault("daemon", "off")
    app.add_middleware(TracepatchMiddleware, on_trace=traces.append, **options)
    return app


def works(t):
    return sorted(n.args for r in t.roots for n in r.walk() if n.name == "work")


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_concurrent_requests_each_get_their_own_trace(kind):
    traces = []
    arrived = []
    release = asyncio.Event()

    async def gate():
        # Hold every request until all are in flight: their tasks interleave.
        arrived.append(1)
        if len(arrived) == 6:
            release.set()
        await asyncio.wait_for(release.wait(), 10)

    app = make_app(kind, traces, gate)

    async def main():
        async with httpx.AsyncClient(app=app, base_url="http://test") as client:
            return await asyncio.gather(*(client.get(f"/items/{i}") for i in range(6)))

    responses = asyncio.run(main())
    assert [r.json() for r in responses] == [{"v": 100 + i} for i in range(6)]
    by_id = {t.trace_id: t for t in traces}
    assert len(by_id) == 6
    for i, r in enumerate(responses):
        t = by_id[r.headers["x-tracepatch-id"]]
        assert t.label == "GET /items/{item_id}"
        assert works(t) == [f"n={i}"]
        assert "x-tracepatch-open" not in r.headers


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_response_status_and_body_are_unchanged(kind):
    traces = []
    plain = TestClient(make_app(kind, [], enabled=False))
    traced = TestClient(make_app(kind, traces))
    for path in ("/items/5", "/teapot", "/stream", "/missing"):
        a, b = plain.get(path), traced.get(path)
        assert (b.status_code, b.content) == (a.status_code, a.content), path
        assert len(b.headers["x-tracepatch-id"]) == 32
    assert traced.get("/stream").content == b"ab"
    assert [t.label for t in traces][:4] == ["GET /items/{item_id}", "GET /teapot",
                                             "GET /stream", "GET /missing"]


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_enabled_false_adds_nothing(kind):
    traces = []
    r = TestClient(make_app(kind, traces, enabled=False)).get("/items/1")
    assert "x-tracepatch-id" not in r.headers and traces == []


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_trace_header_traces_only_requests_that_ask(kind):
    traces = []
    client = TestClient(make_app(kind, traces, trace_header=True))
    a = client.get("/items/1")
    b = client.get("/items/2", headers={"X-Debug-Trace": "1"})
    assert "x-tracepatch-id" not in a.headers
    assert [t.trace_id for t in traces] == [b.headers["x-tracepatch-id"]]
    assert works(traces[0]) == ["n=2"]


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_sample_rate_zero_traces_nothing(kind):
    traces = []
    client = TestClient(make_app(kind, traces, sample_rate=0.0))
    for i in range(3):
        client.get(f"/items/{i}")
    assert traces == []


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_label_fn_receives_the_request(kind):
    traces = []
    app = make_app(kind, traces, label_fn=lambda request: f"custom {request.url.path}")
    TestClient(app).get("/items/9")
    assert [t.label for t in traces] == ["custom /items/9"]


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_traceparent_header_is_the_traces_otel_parent(kind):
    traces = []
    TestClient(make_app(kind, traces)).get("/teapot", headers={"traceparent": TRACEPARENT})
    assert json.loads(traces[0].to_json())["config"]["otel_parent"] == TRACEPARENT
    assert traces[0].otel_trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_lifespan_and_websocket_are_not_traced(kind):
    traces = []
    app = make_app(kind, traces)

    async def ws(websocket):
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    app.add_websocket_route("/ws", ws)

    with TestClient(app) as client:  # runs the lifespan
        with client.websocket_connect("/ws") as conn:
            assert conn.receive_text() == "hi"
    assert traces == []


def sync_work(n):
    return n


@pytest.mark.parametrize("threads, recorded", [(False, []), (True, ["n=4"])])
def test_asgi_sync_endpoint_in_a_worker_thread_is_recorded_with_threads(threads, recorded):
    traces = []

    def endpoint(request):  # Starlette runs a sync endpoint in its thread pool
        return PlainTextResponse(str(sync_work(int(request.path_params["n"]))))

    app = Starlette(routes=[Route("/s/{n}", endpoint)])
    app.add_middleware(TracepatchMiddleware, on_trace=traces.append, daemon="off",
                       threads=threads)
    r = TestClient(app).get("/s/4")
    assert r.text == "4"
    assert [sorted(n.args for root in t.roots for n in root.walk() if n.name == "sync_work")
            for t in traces] == [recorded]


def test_asgi_label_of_a_mounted_route_is_its_full_template():
    from starlette.routing import Mount

    traces = []

    async def order(request):
        return PlainTextResponse(request.path_params["oid"])

    app = Starlette(routes=[Mount("/api", routes=[Mount("/v1", routes=[
        Route("/orders/{oid}", order)])])])
    app.add_middleware(TracepatchMiddleware, on_trace=traces.append, daemon="off")
    client = TestClient(app)
    assert client.get("/api/v1/orders/9").text == "9"
    assert client.get("/api/v1/nothing").status_code == 404
    assert [t.label for t in traces] == ["GET /api/v1/orders/{oid}", "GET /api/v1/nothing"]


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_marks_one_frame_per_request_named_by_its_route_path(kind, live_frames):
    untraced = TestClient(make_app(kind, [], sample_rate=0.0))
    for path in ("/items/5", "/teapot", "/missing"):
        untraced.get(path)
    TestClient(make_app(kind, [])).get("/items/6")  # traced: one frame too
    assert [f[0] for f in live_frames] == ["GET /items/{item_id}", "GET /teapot",
                                           "GET /missing", "GET /items/{item_id}"]


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_frames_false_marks_no_frame(kind, live_frames):
    TestClient(make_app(kind, [], frames=False)).get("/items/5")
    assert live_frames == []


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_frame_carries_the_id_of_a_trace_tphd_took(kind, live_frames, monkeypatch):
    from tracepatch import _trace

    monkeypatch.setattr(_trace.trace, "upload_state", property(lambda t: "acked"))
    traces = []
    TestClient(make_app(kind, traces)).get("/items/6")
    assert [(f[0], f[3]) for f in live_frames] == [("GET /items/{item_id}", traces[0].trace_id)]


@pytest.mark.parametrize("kind", FRAMEWORKS)
def test_asgi_keep_p99_keeps_a_request_slower_than_its_routes_p99(kind, live_frames,
                                                                 monkeypatch):
    from tracepatch import frames

    clock = [0]
    monkeypatch.setattr(frames, "_perf", lambda: clock[0])
    monkeypatch.setattr(frames, "_recent", {})
    monkeypatch.setattr(frames, "_P99_MIN", 3)
    lasts = [0]

    async def gate():
        clock[0] += lasts[0] * 1_000_000

    traces = []
    client = TestClient(make_app(kind, traces, gate, keep_slower_than="p99"))
    for ms in (10, 10, 10, 10, 30, 10):
        lasts[0] = ms
        client.get("/items/1")
    assert [t.kept for t in traces] == [False, False, False, False, True, False]
