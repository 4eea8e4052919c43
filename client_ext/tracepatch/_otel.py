"""The OpenTelemetry context a trace joins: a W3C ``traceparent`` given to
``trace(otel_parent=...)`` (what a web framework receives in the request's
``traceparent`` header), else the current span of the ``opentelemetry`` API
when the program uses it. The value travels in the trace's config as
``otel_parent``; tphd's OTLP exporter then gives the trace's spans that trace
id and hangs them under that span.

The API is only looked up in ``sys.modules``: a program that carries an
OpenTelemetry context has imported it already, and a program that has not
pays nothing (no import attempt per trace)."""

from __future__ import annotations

import re
import sys
import warnings

from . import _config

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\Z")


def parse(value) -> tuple[str, str] | None:
    """(trace id, span id) of a version-00 traceparent, or None when it is
    not one (ids of all zeros are invalid, as W3C Trace Context says)."""
    if not isinstance(value, str):
        return None
    m = _TRACEPARENT.match(value.strip().lower())
    if not m or set(m.group(1)) == {"0"} or set(m.group(2)) == {"0"}:
        return None
    return m.group(1), m.group(2)


def current_traceparent() -> str | None:
    """The traceparent of the opentelemetry API's current span, or None."""
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        return None
    try:
        ctx = api.get_current_span().get_span_context()
        if not ctx.is_valid:
            return None
        value = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags) & 0xff:02x}"
    except Exception:  # noqa: BLE001 - someone else's API must not break tracing
        return None
    return value if parse(value) else None


def resolve(explicit, stacklevel: int) -> str | None:
    """The traceparent a trace carries: explicit (normalised), else the
    current span's. A malformed explicit value (it usually comes from a
    request header, so from outside) is a warning, never an exception."""
    if explicit is None:
        return current_traceparent()
    ids = parse(explicit)
    if ids is None:
        warnings.warn(f"tracepatch: otel_parent {str(explicit)[:80]!r} is not a W3C traceparent "
                      f"(00-<32 hex>-<16 hex>-<2 hex>); the trace is exported as its own",
                      _config.TracepatchWarning, stacklevel=stacklevel + 1)
        return None
    return explicit.strip().lower()
