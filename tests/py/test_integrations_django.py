"""The Django middleware through Django's own test client, with requests
running concurrently in threads."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

django = pytest.importorskip("django")
try:
    import django.http  # noqa: F401
except ImportError as exc:  # Debian's Django 3.2 imports cgi, gone in 3.13
    pytest.skip(f"Django cannot be imported here: {exc}", allow_module_level=True)
from django.conf import settings  # noqa: E402

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACES: list = []
BARRIER: list = []  # [threading.Barrier] while a test wants overlap


def work(n):
    return n * 3


def item_view(request, pk):
    from django.http import HttpResponse

    if BARRIER:
        BARRIER[0].wait(timeout=10)
    return HttpResponse(f"item {work(pk)}", status=200)


def teapot_view(request):
    from django.http import HttpResponse

    return HttpResponse(b"short and stout", status=418, content_type="text/plain")


class _ApiUrls:
    from django.urls import path

    urlpatterns = [path("orders/<slug:ref>", lambda request, ref: teapot_view(request))]


class _Urls:
    from django.urls import include, path

    urlpatterns = [path("items/<int:pk>/", item_view), path("teapot", teapot_view),
                   path("api/v1/", include(_ApiUrls))]


if not settings.configured:
    settings.configure(
        DEBUG=False, ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=_Urls,
        MIDDLEWARE=["tracepatch.integrations.django.TracepatchMiddleware"],
        SECRET_KEY="test", INSTALLED_APPS=[], DATABASES={},
        TRACEPATCH={"on_trace": TRACES.append, "daemon": "off"})
    django.setup()

from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh():
    TRACES.clear()
    BARRIER.clear()
    yield
    BARRIER.clear()


def test_django_concurrent_requests_each_get_their_own_trace():
    BARRIER.append(threading.Barrier(5))

    def get(i):
        return Client().get(f"/items/{i}/")

    with ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(get, range(5)))

    assert [r.content for r in responses] == [f"item {3 * i}".encode() for i in range(5)]
    by_id = {t.trace_id: t for t in TRACES}
    assert len(by_id) == 5
    for i, r in enumerate(responses):
        t = by_id[r["X-Tracepatch-ID"]]
        assert t.label == "GET /items/<int:pk>/"
        assert sorted(n.args for root in t.roots for n in root.walk()
                      if n.name == "work") == [f"n={i}"]
        assert not r.has_header("X-Tracepatch-Open")


def test_django_response_status_and_body_are_unchanged():
    r = Client().get("/teapot")
    assert (r.status_code, r.content, r["Content-Type"]) == (418, b"short and stout",
                                                             "text/plain")
    assert [t.label for t in TRACES] == ["GET /teapot"]
    r = Client().get("/nowhere")
    assert r.status_code == 404
    assert [t.label for t in TRACES] == ["GET /teapot", "GET /nowhere"]


def test_django_trace_header_option_traces_only_requests_that_ask():
    with override_settings(TRACEPATCH={"trace_header": True, "on_trace": TRACES.append,
                                       "daemon": "off"}):
        a = Client().get("/teapot")
        b = Client().get("/teapot", HTTP_X_DEBUG_TRACE="1")
    assert not a.has_header("X-Tracepatch-ID")
    assert b["X-Tracepatch-ID"] == TRACES[0].trace_id
    assert len(TRACES) == 1


def test_django_label_of_an_included_route_is_its_full_pattern():
    Client().post("/api/v1/orders/abc")
    assert [t.label for t in TRACES] == ["POST /api/v1/orders/<slug:ref>"]


def test_django_enabled_false_is_a_pass_through():
    with override_settings(TRACEPATCH={"enabled": False, "on_trace": TRACES.append}):
        r = Client().get("/teapot")
    assert r.status_code == 418 and not r.has_header("X-Tracepatch-ID")
    assert TRACES == []


def test_django_traceparent_header_is_the_traces_otel_parent():
    Client().get("/teapot", HTTP_TRACEPARENT=TRACEPARENT)
    assert json.loads(TRACES[0].to_json())["config"]["otel_parent"] == TRACEPARENT
    assert TRACES[0].otel_trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_django_trace_options_reach_trace():
    with override_settings(TRACEPATCH={"max_calls": 1, "on_trace": TRACES.append,
                                       "daemon": "off"}):
        Client().get("/items/2/")
    assert TRACES[0].call_count == 1 and TRACES[0].was_limited


def test_django_marks_one_frame_per_request_named_by_its_route(live_frames):
    with override_settings(TRACEPATCH={"sample_rate": 0.0, "daemon": "off"}):
        Client().get("/items/4/")
        Client().post("/api/v1/orders/abc")
        Client().get("/nowhere")
    Client().get("/items/5/")  # traced: still one frame
    assert [f[0] for f in live_frames] == ["GET /items/<int:pk>/",
                                           "POST /api/v1/orders/<slug:ref>", "GET /nowhere",
                                           "GET /items/<int:pk>/"]
    assert len(TRACES) == 1


def test_django_frames_false_marks_no_frame(live_frames):
    with override_settings(TRACEPATCH={"frames": False, "daemon": "off"}):
        Client().get("/teapot")
    assert live_frames == []


def test_django_frame_carries_the_id_of_a_trace_tphd_took(live_frames, monkeypatch):
    from tracepatch import _trace

    monkeypatch.setattr(_trace.trace, "upload_state", property(lambda t: "acked"))
    Client().get("/teapot")
    assert [f[3] for f in live_frames] == [TRACES[0].trace_id]


def test_django_keep_p99_keeps_a_request_slower_than_its_routes_p99(live_frames, monkeypatch):
    from tracepatch import frames

    clock = [0]
    monkeypatch.setattr(frames, "_perf", lambda: clock[0])
    monkeypatch.setattr(frames, "_recent", {})
    monkeypatch.setattr(frames, "_P99_MIN", 3)

    class Lasts:  # the view waits on BARRIER[0]: there the request "lasts" ms
        ms = 0

        def wait(self, timeout):
            clock[0] += self.ms * 1_000_000

    lasts = Lasts()
    BARRIER.append(lasts)
    with override_settings(TRACEPATCH={"keep_slower_than": "p99", "on_trace": TRACES.append,
                                       "daemon": "off"}):
        for ms in (10, 10, 10, 10, 30, 10):
            lasts.ms = ms
            Client().get("/items/1/")
    # No p99 before 3 frames; then 10 equals it, 30 is slower, 10 is not.
    assert [t.kept for t in TRACES] == [False, False, False, False, True, False]
    assert [f[2] // 1_000_000 for f in live_frames] == [10, 10, 10, 10, 30, 10]
