"""What every web integration shares: when to trace a request, the trace it
opens, and the headers it adds to the response.

Frames: every request, traced or not, is one frame (tracepatch.frame())
named like the trace's label, ``"METHOD /route"``, whenever a tphd takes
frames; ``frames=False`` turns that off. A traced request's frame carries
the trace's id when tphd was given the trace (keep="slow" may drop it).
``keep_slower_than="p99"`` keeps a request's trace only when the request
was slower than the running p99 of its route (or raised; frames.py keeps
the window), and untraced requests of the route feed that window too. With no daemon listening it costs
one flag check and no name is computed.

Which requests are traced: tracepatch 1.0.0 traced every request, and its
names keep that default. ``trace_header`` and ``sample_rate`` narrow it for
services: with either set, a request is traced when it carries the header
(any value but 0/false/no/off) or when the sampling draw picks it.

Response headers: ``X-Tracepatch-ID: <trace id>`` on every traced response
and, when the finished trace was handed to tphd before the headers left,
``X-Tracepatch-Open: tph open <trace id>``. The report URL (``t.url``) is
never put in a header: it carries the HTTP token of the trace owner's tphd,
and response headers reach browsers, proxies and their logs. The owner runs
``tph open ID`` on the machine to get the link.

The request's W3C ``traceparent`` header becomes the trace's
``otel_parent`` (``capture_traceparent=False`` ignores it), so tphd's OTLP
export hangs the call tree under the caller's span.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

from .. import _otel
from .. import frames as _frames
from .._config import TracepatchWarning
from .._trace import trace

__all__ = ["ID_HEADER", "OPEN_HEADER", "DEFAULT_TRIGGER_HEADER", "Policy", "request_parent"]

ID_HEADER = "X-Tracepatch-ID"
OPEN_HEADER = "X-Tracepatch-Open"
DEFAULT_TRIGGER_HEADER = "X-Debug-Trace"

_NO_WORDS = frozenset({"", "0", "false", "no", "off"})


def request_parent(value: str | None) -> str | None:
    """The request's traceparent header when it is one trace(otel_parent=)
    takes, else None: the header comes from outside, so a malformed one
    costs the link to the caller's trace, never a warning per request."""
    return value if value is not None and _otel.parse(value) is not None else None


class Policy:
    """The options of one middleware: which requests to trace and how."""

    def __init__(self, *, ignore_modules=None, save: bool = False, enabled: bool = True,
                 trace_header: str | bool | None = None, sample_rate: float | None = None,
                 capture_traceparent: bool = True, on_trace=None,
                 frames: bool = True, trace_kwargs: dict | None = None) -> None:
        if trace_header is True:
            trace_header = DEFAULT_TRIGGER_HEADER
        elif trace_header is False:
            trace_header = None
        if trace_header is not None and not isinstance(trace_header, str):
            raise TypeError(f"trace_header must be a header name, True or None, "
                            f"not {trace_header!r}")
        if sample_rate is not None and not 0.0 <= float(sample_rate) <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, not {sample_rate!r}")
        self.ignore_modules = list(ignore_modules or [])
        self.save = bool(save)
        self.enabled = bool(enabled)
        self.trace_header = trace_header
        self.sample_rate = None if sample_rate is None else float(sample_rate)
        self.capture_traceparent = capture_traceparent
        if on_trace is not None and not callable(on_trace):
            raise TypeError(f"on_trace must be callable, not {on_trace!r}")
        self.on_trace = on_trace
        self.frames = bool(frames)
        self.trace_kwargs = dict(trace_kwargs or {})
        if "label" in self.trace_kwargs:
            raise TypeError("the label comes from label_fn (or 'METHOD /route'), "
                            "not from label=")
        if "otel_parent" in self.trace_kwargs:
            raise TypeError("otel_parent comes from each request's traceparent header "
                            "(capture_traceparent=True), not from the middleware's options")
        # keep_slower_than="p99": keep a request's trace when it was slower
        # than the running p99 of its route (frames.py's window of the last
        # frames of that name), decided before the trace ends.
        self.p99 = self.trace_kwargs.get("keep_slower_than") == "p99"
        if self.p99:
            del self.trace_kwargs["keep_slower_than"]
            self.trace_kwargs.setdefault("keep", "slow")
        # Validate the trace options now, at startup, not on the first request.
        trace(ignore_modules=self.ignore_modules, **self.trace_kwargs)

    def frame_start(self):
        """The clock of this request's frame (see frames.py), None when
        frames are off or no daemon takes them: then no name is computed."""
        return _frames._request_start() if self.frames else None

    def clock(self):
        """perf ns at a request's start when keep_slower_than="p99" needs
        its duration, else None."""
        return _frames._perf() if self.p99 else None

    def verdict(self, label: str, t0, t: trace | None = None) -> None:
        """keep_slower_than="p99": the request of label that began at t0
        joins its route's window; t (still recording) is kept when the
        request was slower than the route's p99 before it."""
        if t0 is None:
            return
        slow = _frames._slower_than_p99(label, _frames._perf() - t0)
        if t is not None:
            t._keep_slow = slow

    def wanted(self, header_value) -> bool:
        """Whether a request whose trigger header has header_value (None when
        absent) is traced."""
        if not self.enabled:
            return False
        if self.trace_header is None and self.sample_rate is None:
            return True  # tracepatch 1.0.0: every request
        if header_value is not None and header_value.strip().lower() not in _NO_WORDS:
            return True
        return self.sample_rate is not None and random.random() < self.sample_rate

    def new_trace(self, label: str, traceparent_value) -> trace:
        kwargs = dict(self.trace_kwargs)
        if self.save:
            kwargs.setdefault("cache", True)
        if self.capture_traceparent:
            kwargs["otel_parent"] = request_parent(traceparent_value)
        return trace(label=label, ignore_modules=self.ignore_modules, **kwargs)


    def finished(self, t: trace) -> None:
        """Hand a finished trace to on_trace (not a no-op one: tracing
        disabled by TRACEPATCH_ENABLED=0); its errors become a warning, never
        a different response."""
        if self.on_trace is None or not t.enabled:
            return
        try:
            self.on_trace(t)
        except Exception as exc:  # noqa: BLE001 - the response is already made
            warnings.warn(f"tracepatch: on_trace raised {type(exc).__name__}: {exc}",
                          TracepatchWarning, stacklevel=2)


def stored_id(t: trace | None) -> str | None:
    """The id a request's frame carries: its trace's, when that trace was
    kept and handed to tphd (the frame graph links it); else None."""
    if t is None or not t.enabled or not t.kept:
        return None
    return t.trace_id if t.upload_state in ("pending", "acked") else None


def response_headers(t: trace, finished: bool) -> list[tuple[str, str]]:
    """The headers a traced response gets (see the module's docstring).
    finished: the trace has ended, so whether it went to tphd is known."""
    if not t.enabled:
        return []  # a no-op trace (TRACEPATCH_ENABLED=0) has no id worth giving
    headers = [(ID_HEADER, t.trace_id)]
    if finished and t.upload_state in ("pending", "acked"):
        headers.append((OPEN_HEADER, f"tph open {t.trace_id}"))
    return headers
