"""WSGI middleware: each request runs inside its own trace().

    from tracepatch.integrations.wsgi import TracepatchMiddleware

    app = TracepatchMiddleware(app, ignore_modules=["werkzeug"])

Every request is traced (tracepatch 1.0.0's behaviour) unless
``trace_header`` or ``sample_rate`` is given: ``trace_header=True`` traces
only requests carrying ``X-Debug-Trace: 1`` (or name another header), and
``sample_rate=0.01`` traces one request in a hundred; with both, either one
suffices. The trace is labelled ``"METHOD /path"`` (``label_fn(environ)``
overrides it) and joins the OpenTelemetry trace of the request's W3C
``traceparent`` header (``trace(otel_parent=...)``; ``capture_traceparent=False``
ignores the header).

Each request is also one frame (``tracepatch.frame()``, issue 13) named
like the label, ``"METHOD /path"`` (Flask: the URL rule), whenever a tphd
takes frames; ``frames=False`` turns that off. The frame covers the
application call, as the trace does.

The response keeps its status and body; a traced one gets
``X-Tracepatch-ID: <id>`` and, when the trace went to tphd,
``X-Tracepatch-Open: tph open <id>`` (never the report URL: it carries a
token). The trace covers the application call; a body the application
produces lazily, while the server iterates it, is not traced. Concurrent
requests in other threads are never recorded into each other's traces.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .. import frames as _frames
from ._common import Policy, response_headers, stored_id

__all__ = ["TracepatchMiddleware"]


def _default_label(environ: dict) -> str:
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") or "/"
    return f"{environ.get('REQUEST_METHOD', 'GET')} {path}"


def _header(environ: dict, name: str | None):
    if name is None:
        return None
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


class TracepatchMiddleware:
    """Wrap a WSGI application so that each request is traced.

    Parameters: ``app`` the WSGI application; ``label_fn(environ) -> str``
    the trace's label (default ``"METHOD /path"``); ``ignore_modules``
    module prefixes not to record; ``save`` also write each trace to the
    local cache (``.tracepatch/traces``) as ``cache=True`` does; ``enabled``
    False makes the middleware a pass-through; ``trace_header`` (True for
    "X-Debug-Trace", or a header name) and ``sample_rate`` (0..1) trace only
    some requests; ``capture_traceparent``; ``on_trace(t)`` is called with
    each finished trace (to log or keep it; what it raises becomes a
    warning); ``frames`` False marks no frame per request; any other keyword goes to ``trace()`` (``max_calls=``,
    ``daemon=``...).
    """

    def __init__(self, app: Any, label_fn: Callable[[dict], str] | None = None,
                 ignore_modules: Iterable[str] | None = None, save: bool = False,
                 enabled: bool = True, *, trace_header: str | bool | None = None,
                 sample_rate: float | None = None, capture_traceparent: bool = True,
                 on_trace: Callable[[Any], None] | None = None, frames: bool = True,
                 **trace_kwargs: Any) -> None:
        self.app = app
        self.label_fn = label_fn or _default_label
        self.policy = Policy(ignore_modules=ignore_modules, save=save, enabled=enabled,
                             trace_header=trace_header, sample_rate=sample_rate,
                             capture_traceparent=capture_traceparent, on_trace=on_trace,
                             frames=frames, trace_kwargs=trace_kwargs)

    # 1.0.0 exposed these as attributes.
    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    @property
    def save(self) -> bool:
        return self.policy.save

    @property
    def ignore_modules(self) -> list:
        return self.policy.ignore_modules

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        policy = self.policy
        if not policy.enabled:
            return self.app(environ, start_response)
        began, t0 = policy.frame_start(), policy.clock()
        if not policy.wanted(_header(environ, policy.trace_header)):
            if began is None and t0 is None:
                return self.app(environ, start_response)
            try:
                return self.app(environ, start_response)
            finally:
                # After the application: a router may have rewritten environ.
                label = self.label_fn(environ)
                policy.verdict(label, t0)
                _frames._request_end(label, began)
        label = self.label_fn(environ)
        t = policy.new_trace(label, environ.get("HTTP_TRACEPARENT"))
        try:
            call = _TracedCall(t, start_response)
            call.verdict = lambda: policy.verdict(label, t0, t)
            result = call.run(self.app, environ)
        finally:
            _frames._request_end(label, began, stored_id(t))
        policy.finished(t)
        return result


class _TracedCall:
    """One traced request. start_response is held back until the application
    has returned (the trace has ended), so the headers can say whether tphd
    has the trace; PEP 3333 lets a server send headers only with the first
    body bytes, so holding them changes nothing the client sees. An
    application that calls write(), or start_response only while the server
    iterates its body, gets the real start_response at once."""

    def __init__(self, t, start_response):
        self.t = t
        self.start_response = start_response
        self.held = None
        self.write = None
        self.tracing = False
        self.verdict = lambda: None

    def _start(self, status, headers, exc_info=None):
        if self.tracing and self.write is None:
            self.held = (status, list(headers), exc_info)
            return self._late_write
        return self._send(status, list(headers), exc_info, finished=not self.tracing)

    def _send(self, status, headers, exc_info, finished):
        headers = headers + response_headers(self.t, finished)
        if exc_info is not None:
            self.write = self.start_response(status, headers, exc_info)
        else:
            self.write = self.start_response(status, headers)
        return self.write

    def _late_write(self, data):
        # The legacy write() callable: the headers must go first.
        if self.write is None:
            status, headers, exc_info = self.held
            self.held = None
            self._send(status, headers, exc_info, finished=False)
        return self.write(data)

    def run(self, app, environ):
        self.tracing = True
        try:
            with self.t:
                try:
                    result = app(environ, self._start)
                finally:
                    self.verdict()  # keep_slower_than="p99": before the end
        except BaseException:
            # The server answers the error itself: held headers never started.
            self.tracing, self.held = False, None
            raise
        self.tracing = False
        if self.held is not None:
            status, headers, exc_info = self.held
            self.held = None
            self._send(status, headers, exc_info, finished=True)
        return result
