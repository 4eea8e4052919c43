"""FastAPI and Starlette (any ASGI application): trace each request.

    from tracepatch.integrations.fastapi import TracepatchMiddleware

    app.add_middleware(TracepatchMiddleware, ignore_modules=["starlette", "fastapi"])

Options are the WSGI middleware's (``label_fn``, ``ignore_modules``,
``save``, ``enabled``, ``trace_header``, ``sample_rate``,
``capture_traceparent``, ``on_trace``, trace()'s keywords); ``label_fn`` receives a
Starlette ``Request``. The label is ``"METHOD /route"`` with the path
template of the route that matches (``"GET /items/{item_id}"``).

Each request's trace belongs to its own asyncio task and context, so
concurrent requests are never recorded into each other's traces. A sync
endpoint runs in a worker thread, which a trace records only with
``threads=True``; that records every thread started meanwhile, so under
concurrent requests their traces can then share calls. The response's status and body pass through untouched;
its start gets ``X-Tracepatch-ID: <id>``. The headers leave while the
application still runs (a response may stream), before the trace ends, so
no ``X-Tracepatch-Open`` header is added here: run ``tph open ID``.
Lifespan and websocket connections pass through untraced. Each HTTP
request is also one frame named like the label (``frames=False`` turns
that off); it ends when the application returns, after its body is sent.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

try:
    from starlette.requests import Request
    from starlette.routing import Match
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("tracepatch.integrations.fastapi requires Starlette "
                      "(Debian: python3-starlette or python3-fastapi; pip: fastapi)") from exc

from .. import frames as _frames
from ._common import Policy, response_headers, stored_id

__all__ = ["TracepatchMiddleware"]


def _routes_of(app: Any):
    # add_middleware wraps the router in Starlette's own middleware: follow
    # their .app links to the first object that has routes.
    for _ in range(16):
        routes = getattr(app, "routes", None)
        if routes is not None:
            return routes
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _template(routes, scope: dict, depth: int = 0) -> str | None:
    """The path template of the route that fully matches scope, through
    mounts (a Mount's child scope continues below its prefix); None when no
    route matches."""
    for route in routes or ():
        try:
            match, child = route.matches(scope)
        except Exception:  # noqa: BLE001 - a custom route must not break the request
            continue
        if match != Match.FULL:
            continue
        template = getattr(route, "path", None) or ""
        inner = getattr(route, "routes", None)
        if inner is not None and depth < 16:
            rest = _template(inner, {**scope, **child}, depth + 1)
            return None if rest is None else template + rest
        return template or None
    return None


def _route_label(app: Any, scope: dict) -> str:
    method = scope.get("method", "GET")
    root = scope.get("root_path", "")
    template = _template(_routes_of(app), scope)
    return f"{method} {root}{template if template is not None else scope.get('path', '/')}"


def _header(scope: dict, name: str | None):
    if name is None:
        return None
    want = name.lower().encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key.lower() == want:
            return value.decode("latin-1")
    return None


class TracepatchMiddleware:
    """ASGI middleware that runs each HTTP request inside its own trace."""

    def __init__(self, app: Any, label_fn: Callable[[Request], str] | None = None,
                 ignore_modules: Iterable[str] | None = None, save: bool = False,
                 enabled: bool = True, *, trace_header: str | bool | None = None,
                 sample_rate: float | None = None, capture_traceparent: bool = True,
                 on_trace: Callable[[Any], None] | None = None, frames: bool = True,
                 **trace_kwargs: Any) -> None:
        self.app = app
        self.label_fn = label_fn
        self.policy = Policy(ignore_modules=ignore_modules, save=save, enabled=enabled,
                             trace_header=trace_header, sample_rate=sample_rate,
                             capture_traceparent=capture_traceparent, on_trace=on_trace,
                             frames=frames, trace_kwargs=trace_kwargs)

    def _label(self, scope: dict) -> str:
        if self.label_fn is not None:
            return self.label_fn(Request(scope))
        return _route_label(self.app, scope)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        policy = self.policy
        if scope.get("type") != "http" or not policy.enabled:
            await self.app(scope, receive, send)
            return
        began, t0 = policy.frame_start(), policy.clock()
        if not policy.wanted(_header(scope, policy.trace_header)):
            if began is None and t0 is None:
                await self.app(scope, receive, send)
                return
            try:
                await self.app(scope, receive, send)
            finally:
                label = self._label(scope)
                policy.verdict(label, t0)
                _frames._request_end(label, began)
            return
        label = self._label(scope)
        t = policy.new_trace(label, _header(scope, "traceparent"))
        try:
            await self._traced(t, label, t0, scope, receive, send)
        finally:
            _frames._request_end(label, began, stored_id(t))

    async def _traced(self, t: Any, label: str, t0, scope: dict, receive: Callable,
                      send: Callable) -> None:
        policy = self.policy

        async def send_with_id(message: dict) -> None:
            if message.get("type") == "http.response.start":
                extra = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                         for k, v in response_headers(t, finished=False)]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        async with t:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                policy.verdict(label, t0, t)
        policy.finished(t)
