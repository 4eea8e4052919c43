"""Django: a middleware that traces each request.

    MIDDLEWARE = ["tracepatch.integrations.django.TracepatchMiddleware", ...]
    TRACEPATCH = {"ignore_modules": ["django"], "save": False}

Options come from ``settings.TRACEPATCH`` (a dict, read once when Django
builds the middleware): ``ignore_modules``, ``save``, ``enabled``,
``trace_header``, ``sample_rate``, ``capture_traceparent``, ``on_trace``, ``frames`` (see
``tracepatch.integrations.wsgi``), and anything else goes to ``trace()``.
The label is ``"METHOD /route"`` with the URL pattern that matches
(``"GET /items/<int:pk>/"``), the path when none does. Response headers and
thread separation are the WSGI middleware's; so is the frame per request,
named like the label. Put it first in MIDDLEWARE to
trace the other middleware too.
"""

from __future__ import annotations

from typing import Any

try:
    from django.conf import settings
    from django.urls import Resolver404, resolve
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("tracepatch.integrations.django requires Django "
                      "(Debian: python3-django; pip: django)") from exc

from .. import frames as _frames
from ._common import Policy, response_headers, stored_id

__all__ = ["TracepatchMiddleware"]

_OWN_KEYS = ("ignore_modules", "save", "enabled", "trace_header", "sample_rate",
             "capture_traceparent", "on_trace", "frames")


def _label(request, match=None) -> str:
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return f"{request.method} {request.path}"
    route = getattr(match, "route", None)
    if not route:
        return f"{request.method} {request.path}"
    prefix = request.path[: len(request.path) - len(request.path_info)]
    return f"{request.method} {prefix}/{route.lstrip('^')}"


class TracepatchMiddleware:
    """Django middleware (new style): ``get_response`` runs inside a trace."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        cfg = dict(getattr(settings, "TRACEPATCH", {}) or {})
        self.policy = Policy(**{k: cfg[k] for k in _OWN_KEYS if k in cfg},
                             trace_kwargs={k: v for k, v in cfg.items() if k not in _OWN_KEYS})

    def __call__(self, request):
        policy = self.policy
        if not policy.enabled:
            return self.get_response(request)
        began, t0 = policy.frame_start(), policy.clock()
        header = None
        if policy.trace_header is not None:
            header = request.headers.get(policy.trace_header)
        if not policy.wanted(header):
            if began is None and t0 is None:
                return self.get_response(request)
            try:
                return self.get_response(request)
            finally:
                # Django resolved the URL on the way: reuse its match.
                label = _label(request, getattr(request, "resolver_match", None))
                policy.verdict(label, t0)
                _frames._request_end(label, began)
        label = _label(request)
        t = policy.new_trace(label, request.headers.get("traceparent"))
        try:
            with t:
                try:
                    response = self.get_response(request)
                finally:
                    policy.verdict(label, t0, t)
        finally:
            _frames._request_end(label, began, stored_id(t))
        for name, value in response_headers(t, finished=True):
            response[name] = value
        policy.finished(t)
        return response
