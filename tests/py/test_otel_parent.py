"""trace(otel_parent=...) and the opentelemetry API's current span: the
traceparent a trace joins travels in its config (tphd's OTLP exporter reads
it there) and names the trace's OpenTelemetry trace id."""

import json
import sys
import types
import warnings

import pytest

from tracepatch import TracepatchWarning, trace

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def work(n):
    return n + 1


def config_of(t):
    return json.loads(t.to_json())["config"]


def test_otel_parent_goes_into_the_config_and_names_the_trace_id():
    with trace(label="joined", daemon="off", cache=False, otel_parent=PARENT) as t:
        work(1)
    assert config_of(t)["otel_parent"] == PARENT
    assert t.otel_trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert t.trace_id != t.otel_trace_id


def test_uppercase_traceparent_is_normalised():
    with trace(daemon="off", cache=False, otel_parent=PARENT.upper()) as t:
        work(1)
    assert config_of(t)["otel_parent"] == PARENT


def test_without_a_parent_the_trace_is_its_own_otel_trace():
    with trace(daemon="off", cache=False) as t:
        work(1)
    assert "otel_parent" not in config_of(t)
    assert t.otel_trace_id == t.trace_id


@pytest.mark.parametrize("bad", [
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    "garbage",
])
def test_malformed_traceparent_warns_and_is_ignored(bad):
    with pytest.warns(TracepatchWarning, match="not a W3C traceparent"):
        with trace(daemon="off", cache=False, otel_parent=bad) as t:
            work(1)
    assert "otel_parent" not in config_of(t)
    assert t.otel_trace_id == t.trace_id


def test_otel_parent_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="trace\\(\\): otel_parent must be a string, got int 123"):
        trace(otel_parent=123)


class _Ctx:
    def __init__(self, trace_id, span_id, valid=True):
        self.trace_id, self.span_id, self.trace_flags, self.is_valid = trace_id, span_id, 1, valid


class _Span:
    def __init__(self, ctx):
        self._ctx = ctx

    def get_span_context(self):
        return self._ctx


@pytest.fixture
def otel_api(monkeypatch):
    """A stand-in for opentelemetry.trace (not packaged in Debian): the same
    two calls tracepatch makes, get_current_span().get_span_context()."""
    api = types.ModuleType("opentelemetry.trace")
    api.current = _Span(_Ctx(0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7))
    api.get_current_span = lambda: api.current
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", api)
    return api


def test_current_span_of_the_opentelemetry_api_is_joined(otel_api):
    with trace(daemon="off", cache=False) as t:
        work(1)
    assert config_of(t)["otel_parent"] == PARENT


def test_explicit_otel_parent_wins_over_the_current_span(otel_api):
    other = "00-" + "1" * 32 + "-" + "2" * 16 + "-00"
    with trace(daemon="off", cache=False, otel_parent=other) as t:
        work(1)
    assert config_of(t)["otel_parent"] == other


def test_invalid_current_span_is_not_joined(otel_api):
    otel_api.current = _Span(_Ctx(0, 0, valid=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with trace(daemon="off", cache=False) as t:
            work(1)
    assert "otel_parent" not in config_of(t)


def test_a_failing_opentelemetry_api_does_not_break_tracing(otel_api):
    def boom():
        raise RuntimeError("no context")
    otel_api.get_current_span = boom
    with trace(daemon="off", cache=False) as t:
        work(1)
    assert "otel_parent" not in config_of(t)
    assert t.call_count == 1
