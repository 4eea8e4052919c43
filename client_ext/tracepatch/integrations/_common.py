"""What every web integration shares: when to trace a request, the trace it
opens, and the headers it adds to the response.

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
"""

from __future__ import annotations

import random
import re
import warnings
from typing import Any

from .._config import TracepatchWarning
from .._trace import trace

__all__ = ["ID_HEADER", "OPEN_HEADER", "DEFAULT_TRIGGER_HEADER", "Policy", "RequestTrace",
           "parse_traceparent"]

ID_HEADER = "X-Tracepatch-ID"
OPEN_HEADER = "X-Tracepatch-Open"
DEFAULT_TRIGGER_HEADER = "X-Debug-Trace"

_NO_WORDS = frozenset({"", "0", "false", "no", "off"})
# W3C Trace Context, version 00 layout (later versions may append fields).
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


def parse_traceparent(value: str | None) -> str | None:
    """The header's value when it is a valid W3C traceparent, else None (an
    invalid one is dropped, as the spec asks, rather than stored)."""
    if not value:
        return None
    value = value.strip()
    m = _TRACEPARENT.match(value)
    if m is None:
        return None
    version, trace_id, parent_id, _flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return value


class RequestTrace(trace):
    """trace() that also stores the request's W3C traceparent in the trace's
    config (key "traceparent"), so a trace can be matched with the
    distributed trace the request belongs to.

    trace() has no keyword for a parent span yet; when it gains one (the
    OTLP export's), the traceparent should go there. Until then this relies
    on _config_dict being where the trace's config is built, which
    test_wsgi_traceparent_is_stored_in_the_trace_config checks."""

    def __init__(self, *, traceparent: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._traceparent = traceparent

    def _config_dict(self, settings: dict) -> dict:  # type: ignore[override]
        config = trace._config_dict(settings)
        if self._traceparent is not None:
            config["traceparent"] = self._traceparent
        return config


class Policy:
    """The options of one middleware: which requests to trace and how."""

    def __init__(self, *, ignore_modules=None, save: bool = False, enabled: bool = True,
                 trace_header: str | bool | None = None, sample_rate: float | None = None,
                 capture_traceparent: bool = True, on_trace=None,
                 trace_kwargs: dict | None = None) -> None:
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
        self.trace_kwargs = dict(trace_kwargs or {})
        if "label" in self.trace_kwargs:
            raise TypeError("the label comes from label_fn (or 'METHOD /route'), "
                            "not from label=")
        # Validate the trace options now, at startup, not on the first request.
        RequestTrace(ignore_modules=self.ignore_modules, **self.trace_kwargs)

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

    def new_trace(self, label: str, traceparent_value) -> RequestTrace:
        parent = parse_traceparent(traceparent_value) if self.capture_traceparent else None
        kwargs = dict(self.trace_kwargs)
        if self.save:
            kwargs.setdefault("cache", True)
        return RequestTrace(label=label, ignore_modules=self.ignore_modules,
                            traceparent=parent, **kwargs)


    def finished(self, t: RequestTrace) -> None:
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


def response_headers(t: trace, finished: bool) -> list[tuple[str, str]]:
    """The headers a traced response gets (see the module's docstring).
    finished: the trace has ended, so whether it went to tphd is known."""
    if not t.enabled:
        return []  # a no-op trace (TRACEPATCH_ENABLED=0) has no id worth giving
    headers = [(ID_HEADER, t.trace_id)]
    if finished and t.upload_state in ("pending", "acked"):
        headers.append((OPEN_HEADER, f"tph open {t.trace_id}"))
    return headers
