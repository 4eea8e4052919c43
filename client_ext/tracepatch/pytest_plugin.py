"""pytest plugin: trace tests, assert on what they called.

Enable it with ``-p tracepatch.pytest_plugin`` (an installed tracepatch
registers it through the ``pytest11`` entry point), then::

    def test_checkout(tracepatch):
        checkout(cart)
        tracepatch.assert_called("shop.pricing.*")
        tracepatch.assert_not_called("shop.db.query")
        tracepatch.assert_max_calls(200)

The ``tracepatch`` fixture's trace records the test function's call, and
only that: not the setup of other fixtures, nor pytest's or other plugins'
frames (an async test is recorded inside the task that runs it). Its results are
read as tracepatch 1.0.0's were; reading one from inside the test (any
property or ``assert_*`` helper) ends the recording there, so the
assertions themselves are not recorded. ``@pytest.mark.tracepatch(**kw)``
passes trace() options for one test and applies the fixture to it.

Flags: ``--tracepatch`` (every test), ``--tracepatch-save`` (write every
test's trace as JSON), ``--tracepatch-save-on-failure``,
``--tracepatch-fail-on-limited`` (a test whose trace hit a limit errors),
``--tracepatch-output DIR`` (instead of ``.tracepatch/traces``). A failing
test's report gets a "tracepatch" section: the last lines of its call tree,
the saved file, and its report URL when tphd stored it.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from ._trace import trace as _trace

__all__ = ["TraceResult"]

# Lines of the call tree a failing test's report shows (its end: where the
# test was when it failed).
TAIL_LINES = 40

# The test's own calls into pytest (assertion rewriting's helpers,
# pytest.raises) are left out; what they call is kept (filters lift
# descendants).
_PYTEST_MODULES = ("_pytest", "pluggy")

_RESULT = pytest.StashKey["TraceResult"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tracepatch", "tracepatch call tracing")
    group.addoption("--tracepatch", action="store_true", default=False,
                    help="Trace every test (as if each used the tracepatch fixture).")
    group.addoption("--tracepatch-save", action="store_true", default=False,
                    help="Save every traced test's trace as JSON.")
    group.addoption("--tracepatch-save-on-failure", action="store_true", default=False,
                    help="Save the trace of each traced test that fails.")
    group.addoption("--tracepatch-fail-on-limited", action="store_true", default=False,
                    help="Error a test whose trace was cut by a limit (max_calls...).")
    group.addoption("--tracepatch-output", default=None, metavar="DIR",
                    help="Directory for saved traces (default .tracepatch/traces).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tracepatch(**kwargs): trace this test with these trace() options "
        "(max_depth, max_calls, include_modules, ignore_modules, ...)")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """--tracepatch or the marker gives a test the fixture it did not ask for."""
    everywhere = config.getoption("--tracepatch")
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        if (everywhere or item.get_closest_marker("tracepatch") is not None) \
                and "tracepatch" not in item.fixturenames:
            item.fixturenames.append("tracepatch")


class TraceResult:
    """What the ``tracepatch`` fixture gives a test: the trace's results and
    assertion helpers. Patterns are globs (``fnmatch``) matched against
    ``module.qualname`` (and ``module.name``), e.g. ``"myapp.db.*"``."""

    def __init__(self, label: str, trace_kwargs: dict) -> None:
        self._label = label
        self._trace_kwargs = trace_kwargs
        self._trace_obj: _trace | None = None
        self.saved_path: Path | None = None

    # -- recording (driven by the plugin's hooks) -------------------------

    def _start(self) -> None:
        kwargs = dict(self._trace_kwargs)
        kwargs["ignore_modules"] = [*(kwargs.get("ignore_modules") or ()), *_PYTEST_MODULES]
        self._trace_obj = _trace(label=self._label, **kwargs)
        self._trace_obj.__enter__()

    def _stop(self) -> None:
        t = self._trace_obj
        if t is not None and t.active:
            t.__exit__(None, None, None)

    @property
    def trace(self) -> _trace | None:
        """The underlying trace object (None before the test ran); reading it
        ends the recording."""
        self._stop()
        return self._trace_obj

    # -- results -----------------------------------------------------------

    @property
    def label(self) -> str:
        return self._label

    @property
    def call_count(self) -> int:
        t = self.trace
        return t.call_count if t is not None else 0

    @property
    def was_limited(self) -> bool:
        t = self.trace
        return t.was_limited if t is not None else False

    @property
    def roots(self) -> list:
        t = self.trace
        return t.roots if t is not None else []

    def tree(self, **options: Any) -> str:
        t = self.trace
        return t.tree(**options) if t is not None else "<no trace>"

    def _nodes(self) -> Iterator[Any]:
        for root in self.roots:
            yield from root.walk()

    @staticmethod
    def _matches(node: Any, pattern: str) -> bool:
        return fnmatch.fnmatchcase(node.full_name, pattern) or (
            bool(node.module) and fnmatch.fnmatchcase(f"{node.module}.{node.name}", pattern))

    def _count(self, pattern: str) -> int:
        return sum(1 for n in self._nodes() if self._matches(n, pattern))

    def assert_called(self, pattern: str) -> None:
        """At least one call matches pattern."""
        if self._count(pattern) == 0:
            pytest.fail(f"Expected a call matching '{pattern}', but none found", pytrace=False)

    def assert_not_called(self, pattern: str) -> None:
        """No call matches pattern."""
        found = sorted({n.full_name for n in self._nodes() if self._matches(n, pattern)})
        if found:
            pytest.fail(f"Expected no calls matching '{pattern}', but found: "
                        f"{', '.join(found)}", pytrace=False)

    def assert_called_once(self, pattern: str) -> None:
        """Exactly one call matches pattern."""
        self.assert_called_n_times(pattern, 1)

    def assert_called_n_times(self, pattern: str, n: int) -> None:
        """Exactly n calls match pattern."""
        count = self._count(pattern)
        if count != n:
            calls = "call" if n == 1 else "calls"
            pytest.fail(f"Expected exactly {n} {calls} matching '{pattern}', but found {count}",
                        pytrace=False)

    def assert_max_calls(self, max_n: int) -> None:
        """The trace recorded at most max_n calls."""
        if self.call_count > max_n:
            pytest.fail(f"Expected at most {max_n} calls, but got {self.call_count}",
                        pytrace=False)

    def assert_max_depth(self, max_d: int) -> None:
        """No call is deeper than max_d (a root is depth 0, as in 1.0.0)."""
        deepest = max((n.depth for n in self._nodes()), default=0)
        if deepest > max_d:
            pytest.fail(f"Expected max depth {max_d}, but reached {deepest}", pytrace=False)

    def assert_under_ms(self, pattern: str, max_ms: float) -> None:
        """Every call matching pattern took at most max_ms (total time)."""
        for n in self._nodes():
            if self._matches(n, pattern) and n.elapsed_ms > max_ms:
                pytest.fail(f"{n.full_name} took {n.elapsed_ms:.2f}ms (total), exceeding "
                            f"limit of {max_ms}ms", pytrace=False)

    def assert_self_time_under_ms(self, pattern: str, max_ms: float) -> None:
        """Every call matching pattern spent at most max_ms in its own code
        (its time minus its direct children's)."""
        for n in self._nodes():
            if self._matches(n, pattern):
                own = max(0.0, n.elapsed - sum(c.elapsed for c in n.children)) * 1000.0
                if own > max_ms:
                    pytest.fail(f"{n.full_name} self-time was {own:.2f}ms, exceeding limit "
                                f"of {max_ms}ms", pytrace=False)

    def assert_no_exceptions(self) -> None:
        """No call ended by an exception (one raised and handled inside a
        call does not count: that call returned)."""
        for n in self._nodes():
            if n.exception is not None:
                pytest.fail(f"{n.full_name} raised an exception: {n.exception}",
                            pytrace=False)

    def assert_call_order(self, patterns: list[str]) -> None:
        """The first calls matching each pattern come in this order."""
        nodes = list(self._nodes())
        previous, previous_pattern = -1, ""
        for pattern in patterns:
            index = next((i for i, n in enumerate(nodes) if self._matches(n, pattern)), None)
            if index is None:
                pytest.fail(f"Expected a call matching '{pattern}', but none found",
                            pytrace=False)
            if index <= previous:
                pytest.fail(f"Expected '{pattern}' to be called after '{previous_pattern}', "
                            f"but it appeared earlier or at the same position", pytrace=False)
            previous, previous_pattern = index, pattern

    def __repr__(self) -> str:
        return f"<TraceResult {self._label!r}>"


# tracepatch 1.0.0's earlier name of the class.
_TraceResult = TraceResult


def _safe_filename(label: str) -> str:
    return re.sub(r"[^\w.\-]", "_", label)


@pytest.fixture()
def tracepatch(request: pytest.FixtureRequest) -> Iterator[TraceResult]:
    """Trace the test function; see the module's docstring."""
    kwargs: dict[str, Any] = {}
    marker = request.node.get_closest_marker("tracepatch")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("@pytest.mark.tracepatch takes keyword arguments only")
        kwargs.update(marker.kwargs)
    if "label" in kwargs:
        label = kwargs.pop("label")
    else:
        label = request.node.nodeid
    result = TraceResult(label, kwargs)
    request.node.stash[_RESULT] = result
    yield result
    result._stop()
    t = result._trace_obj
    if t is None:
        return
    request.node.user_properties.append(("tracepatch.call_count", t.call_count))
    request.node.user_properties.append(("tracepatch.was_limited", t.was_limited))
    if request.config.getoption("--tracepatch-fail-on-limited") and t.was_limited:
        pytest.fail(f"Trace was limited for {label} ({t.limit_reason})", pytrace=False)


def _recording(result: TraceResult, func):
    """func wrapped so that the trace records exactly its call: pytest's own
    frames and other plugins' hooks stay out, and an async test (run by
    pytest-asyncio or anyio from pytest_pyfunc_call) is recorded inside its
    task, where it runs."""
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def traced_async(*args, **kwargs):
            result._start()
            try:
                return await func(*args, **kwargs)
            finally:
                result._stop()
        return traced_async

    @functools.wraps(func)
    def traced(*args, **kwargs):
        result._start()
        try:
            return func(*args, **kwargs)
        finally:
            result._stop()
    return traced


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = item.stash.get(_RESULT, None)
    if result is None or not isinstance(item, pytest.Function):
        yield
        return
    original = item.obj
    item.obj = _recording(result, original)
    try:
        outcome = yield
    finally:
        item.obj = original
    result._stop()
    if result._trace_obj is None:
        return
    config = item.config
    failed = outcome.excinfo is not None
    if config.getoption("--tracepatch-save") or (
            failed and config.getoption("--tracepatch-save-on-failure")):
        out = config.getoption("--tracepatch-output")
        directory = Path(out) if out else Path(".tracepatch") / "traces"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{_safe_filename(result.label)}.json"
        result._trace_obj.to_json(path)
        result.saved_path = path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    result = item.stash.get(_RESULT, None)
    if call.when != "call" or not report.failed or result is None \
            or result._trace_obj is None:
        return
    report.sections.append(("tracepatch", _failure_text(result)))


def _failure_text(result: TraceResult) -> str:
    t = result.trace
    lines = t.tree(color=False).splitlines()
    if len(lines) > TAIL_LINES:
        shown = [f"... {len(lines) - TAIL_LINES} lines above not shown"] + lines[-TAIL_LINES:]
    else:
        shown = lines
    if result.saved_path is not None:
        shown.append(f"trace saved to: {result.saved_path}")
    url = t.url if t.upload_state != "none" else None
    if url:
        shown.append(f"report: {url}")
    return "\n".join(shown)
