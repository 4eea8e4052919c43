"""trace(): the context manager, decorator and result object."""

from __future__ import annotations

import json
import os
import random
import sys
import time
import warnings
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, TypeVar, Union

from . import _cache, _compat, _config, _otel, _settings, _tracepatch
from ._compat import TraceSummary
from ._node import build_roots
from ._quiet import quiet

# The settings a trace's config JSON holds (_config_dict()), which also key
# its cache (_config_json()).
_CONFIG_KEYS = ("max_depth", "max_calls", "max_repr", "max_time", "max_repr_args",
                "max_repr_return", "ignore_modules", "include_modules", "show_args",
                "show_return", "show_asyncio", "track_memory", "lines", "line_samples",
                "sample", "sample_traces", "threads", "daemon")
_config_json_cache: dict = {}


class _Default:
    """Marks a keyword the caller did not pass; shows as its value in help()."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


_NEW, _ACTIVE, _DONE = 0, 1, 2

# This process's id, kept up to date at fork (as the extension's own state
# is): os.getpid() is a system call, and a trace asks twice.
_this_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _this_pid.__setitem__(0, os.getpid()))

_F = TypeVar("_F", bound=Callable[..., Any])
# Where an output goes: None (return the text), a file name or an open text file.
_Dest = Union[str, "os.PathLike[str]", IO[str], None]
_DAEMON_WORDS = _settings.DAEMON_WORDS


def _check_keywords(kw: dict) -> dict:
    """Validate the keywords a caller passed against the settings schema;
    return the explicit settings.

    A value equal to a _Default is "not passed": it is left to the
    environment, the config file and the defaults. Wrong types raise
    TypeError, out-of-range values ValueError, here, before any traced code
    runs.
    """
    explicit: dict[str, Any] = {}
    for key, value in kw.items():
        if isinstance(value, _Default) or (value is None and key in _NONE_MEANS_UNSET):
            continue
        try:
            explicit[key] = _settings.BY_NAME[key].check(value)
        except _settings.Invalid as exc:
            raise exc.error(f"trace(): {key} must be {exc.expected}, got {exc.got}") from None
    return explicit


_NONE_MEANS_UNSET = ("label", "max_repr_args", "max_repr_return", "ignore_modules",
                     "include_modules", "sample", "sample_traces", "cache", "cache_dir",
                     "otel_parent", "lines")


def _kw_default(name: str) -> Any:
    return _Default(_settings.default(name))


def _keywords(self: Any, func: Callable[..., Any] | None = None, /, *,
              label: str | None = None,
              max_depth: int = _kw_default("max_depth"),
              max_calls: int = _kw_default("max_calls"),
              max_time: float = _kw_default("max_time"),
              max_repr: int = _kw_default("max_repr"),
              max_repr_args: int | None = None, max_repr_return: int | None = None,
              ignore_modules: Iterable[str] | None = None,
              include_modules: Iterable[str] | None = None,
              show_args: bool = _kw_default("show_args"),
              show_return: bool = _kw_default("show_return"),
              show_asyncio: bool = _kw_default("show_asyncio"),
              track_memory: bool = _kw_default("track_memory"),
              lines: Iterable[Any] | None = None,
              line_samples: int = _kw_default("line_samples"),
              repr_notes: bool = _kw_default("repr_notes"),
              sample: float | None = None, sample_traces: float | None = None,
              cache: bool | None = None,
              cache_dir: str | os.PathLike[str] | None = None,
              daemon: str | os.PathLike[str] = _kw_default("daemon"),
              threads: bool = _kw_default("threads"),
              keep: str = _kw_default("keep"),
              keep_slower_than: float = _kw_default("keep_slower_than"),
              stream_after: float = _kw_default("stream_after"),
              stream_memory: int = _kw_default("stream_memory"),
              otel_parent: str | None = None) -> None:
    """trace.__init__ as help(), inspect.signature() and type checkers see
    it: every keyword. The one that runs takes **kw (see there)."""


_KEYWORDS = frozenset(s.name for s in _settings.SETTINGS if s.keyword)
# Types a keyword's value may have for _checked to hold it: the same
# (type, value) is then the same setting. A float 0.0 is left out, as
# -0.0 equals it and shows otherwise in the trace's config.
_PLAIN = frozenset((str, int, float, bool, type(None)))
# trace()'s keywords as given (items, types) -> (explicit settings, plan key).
_checked: dict = {}


def _check_new(kw: dict) -> tuple:
    """_check_keywords() of keywords not seen before: (explicit settings,
    _explicit_key() of them), kept in _checked when their values are plain."""
    for key in kw:
        if key not in _KEYWORDS:
            # Python's own message for trace's signature (3.13's has "Did
            # you mean ...?"), under trace's name.
            try:
                _keywords(None, **kw)
            except TypeError as exc:
                raise TypeError(str(exc).replace("_keywords()", "trace.__init__()")) from None
            raise TypeError(f"trace.__init__() got an unexpected keyword argument '{key}'")
    explicit = quiet(_check_keywords, kw)
    checked = (explicit, _explicit_key(explicit))
    types = tuple(map(type, kw.values()))
    if _PLAIN.issuperset(types) and 0.0 not in [v for v in kw.values() if type(v) is float]:
        if len(_checked) >= 256:
            _checked.clear()
        _checked[(tuple(kw.items()), types)] = checked
    return checked


def _explicit_key(explicit: dict) -> "tuple | None":
    """The key of a trace's cached settings (_Plan) for these explicit
    settings, or None when they are not cached: values of other types than
    plain ones and tuples of module names (functions of lines=), an
    otel_parent (one per request, and it can warn), a zero sample (-0.0
    equals 0.0)."""
    if "otel_parent" in explicit or explicit.get("sample") == 0 \
            or explicit.get("sample_traces") == 0:
        return None
    for value in explicit.values():
        if type(value) is tuple:
            if not all(type(v) is str for v in value):
                return None
        elif type(value) not in _PLAIN:
            return None
    return tuple(explicit.items())



def _start_tracemalloc() -> bool:
    """Start tracemalloc for a track_memory trace unless it is tracing
    already; True when started here (the trace then stops it). One frame per
    traceback, the cheapest: only the totals are read. Memory allocated
    before is not traced, so a call freeing it shows no negative delta for
    it. Imported on first use: most programs never need it."""
    import tracemalloc
    if tracemalloc.is_tracing():
        return False
    tracemalloc.start()
    return True

class _Plan:
    """What a trace's explicit settings resolve to in one place (working
    directory, environment, config files), and what its Session is given:
    worked out once (_make_plan) and shared by the traces that follow while
    those sources stay the same (_cached_plan). A service opening a
    trace(keep="slow") per request otherwise spent more on this than on
    recording the request. Never changed once made."""

    __slots__ = ("paths", "stamp", "enabled", "settings", "sources",
                 "label_template", "off", "tail", "session_kwargs", "config_json")


# _explicit_key() -> _Plan, the latest one for each explicit settings.
_plans: dict = {}


def _cached_plan(key: tuple) -> "_Plan | None":
    """The cached plan for key while its sources are as they were: the same
    working directory, the same TRACEPATCH_* variables, and the config file
    candidates it looked at unchanged on disk (_config.sources_stamp(): one
    call into C, a stat() for each)."""
    plan = _plans.get(key)
    if plan is None:
        return None
    # _config.sources_stamp(plan.paths), inline: this runs for every trace.
    data = getattr(os.environ, "_data", None)
    if type(data) is not dict or _tracepatch._sources_stamp(
            data, _config._ALL_ENV_KEYS, plan.paths) != plan.stamp:
        return None
    return plan


def _make_plan(explicit: dict, key: "tuple | None", stacklevel: int) -> _Plan:
    """Resolve explicit against the environment and the config file (the
    order of precedence in _config.py), and keep the result in _plans when
    nothing needed a warning (a cached plan must say the same as a fresh one,
    warnings included). stacklevel counts frames from here (1) up to the
    user's code."""
    plan = _Plan()
    plan.paths, plan.stamp = (), None
    # The sources are stamped before they are read: one that changes
    # meanwhile leaves a plan that no longer matches them, never the reverse.
    cwd = None
    if key is not None:
        try:
            cwd = os.getcwd()
        except OSError:  # the working directory was removed
            pass
        else:
            plan.stamp = _config.sources_stamp()
    cacheable = (plan.stamp is not None and plan.stamp.startswith(os.fsencode(cwd) + b"\0")
                 and _config.env_enabled_clean())
    plan.enabled = enabled = _config.env_enabled(stacklevel + 1)
    if enabled:
        config: Any = _config._SEARCH
        if cacheable:
            watched = _config.search_watched(cwd, plan.stamp)
            if watched is None:
                cacheable = False
            else:
                found, plan.paths, plan.stamp = watched
                config = _config.read_config_file(*found) if found is not None else None
        settings, plan.sources, clean = _config.resolve_checked(explicit, stacklevel + 1,
                                                                config=config)
        cacheable = cacheable and clean
        settings = {**_settings.ALL_DEFAULTS, **settings}
    else:
        # Disabled: no config file lookup either, this must stay cheap.
        settings = {**_settings.ALL_DEFAULTS, **explicit}
        plan.sources = {}
    plan.label_template = False
    if settings.get("label") is None:
        default_label = settings["default_label"]
        if default_label is not None and "{" in default_label:
            plan.label_template = True
        settings["label"] = _compat.expand_label(default_label)
    plan.settings = settings
    plan.off = not enabled or settings["max_calls"] == _settings.BY_NAME["max_calls"].off
    # keep="slow" records structure only: most of these traces are
    # dropped, so they should cost the recording and no repr() calls.
    plan.tail = tail = settings["keep"] == "slow"
    plan.session_kwargs = {
        "max_depth": settings["max_depth"], "max_calls": settings["max_calls"],
        "max_time": settings["max_time"], "max_repr": settings["max_repr"],
        "show_args": settings["show_args"] and not tail,
        "show_return": settings["show_return"] and not tail,
        "ignore_modules": tuple(settings["ignore_modules"]),
        "include_modules": tuple(settings["include_modules"]),
        "threads": settings["threads"], "show_asyncio": settings["show_asyncio"],
        "sample_calls": settings["sample"], "max_repr_args": settings["max_repr_args"],
        "max_repr_return": settings["max_repr_return"],
        "track_memory": settings["track_memory"],
        "stream_after": settings["stream_after"], "stream_memory": settings["stream_memory"],
    }
    plan.config_json = None if plan.off else trace._config_json(settings)
    if cacheable:
        if len(_plans) >= 64:
            _plans.clear()
        _plans[key] = plan
    return plan


class trace:
    """Record every Python call made inside one scope, as a call tree.

    Use it as a context manager (``with`` or ``async with``) or as a decorator
    (``@trace``, ``@trace()``, ``@trace(label="x")``) on functions, methods,
    coroutine functions, generator functions and async generator functions::

        with trace(label="debug-request") as t:
            handle_request(42)
        print(t.tree())

    All arguments are keyword-only (the list comes from the settings schema):

    @SETTINGS@

    daemon="auto" sends the finished trace to tphd when it listens on its
    socket ($TRACEPATCH_SOCKET, else the user's, else the system's), from a
    background thread so the program never waits; otherwise it is saved as a
    file (cache). "off": never sent. "required": like "auto", but a trace
    that cannot be sent gives a TracepatchWarning and counts as dropped. A
    socket path: like "auto", with that daemon.

    otel_parent comes from a request (its ``traceparent`` header), so a
    malformed one is a TracepatchWarning and the trace is exported as its
    own; the opentelemetry API is only consulted when the program has
    imported it.

    Where settings come from, highest precedence first: the keywords given
    here, then ``TRACEPATCH_MAX_DEPTH`` / ``_MAX_CALLS`` / ``_MAX_TIME`` /
    ``_MAX_REPR`` (and ``TRACEPATCH_LABEL``, ``_OUTPUT_DIR``, ``_NO_CACHE``,
    ``_COLOR``), then ``tracepatch.toml`` or ``[tool.tracepatch]`` in
    ``pyproject.toml`` (searched upward from the working directory), then the
    defaults above. ``TRACEPATCH_ENABLED=0`` (or false/no/off) turns every
    trace into a no-op that installs nothing; its result is an empty trace.
    Bad environment values or config entries are reported with a
    :class:`TracepatchWarning` naming the value used instead, never raised;
    a bad keyword raises TypeError or ValueError here, before any code runs.

    As a decorator, every call of the decorated function is its own trace
    (saved like any other; the latest one is the wrapper's ``last_trace``),
    except a call nested in one of its own (recursion in the same thread
    and context): that is recorded in the outer call's trace.
    Whether tracing is enabled is decided when decorating: with
    ``TRACEPATCH_ENABLED=0`` the function itself is returned, untouched.

    Results are read once recording has stopped: ``tree()``, ``summary()``,
    ``to_json()``, ``to_csv()``, ``to_chrome()``, ``roots``, ``stats``,
    ``call_count``, ``was_limited``, ``limit_reason``, ``trace_id``...
    """

    def __new__(cls, func=None, /, **kwargs):
        if func is not None:
            # Bare ``@trace``: decorate right away with default settings.
            if kwargs:
                raise TypeError("trace() takes keyword arguments only; "
                                "write @trace(label=...) or with trace(label=...)")
            if not callable(func) and not isinstance(func, (staticmethod, classmethod)):
                raise TypeError(f"trace() takes keyword arguments only, got {func!r}")
            return decorate(func, {}, stacklevel=3)
        return object.__new__(cls)

    if TYPE_CHECKING:
        __init__ = _keywords
    else:
        def __init__(self, func: Callable[..., Any] | None = None, /, **kw: Any) -> None:
            # The keywords are _keywords()'s (its signature is trace's). Taken
            # as **kw so that a trace() costs the keywords given, not all of
            # them: a service opens one per request with the same few.
            try:
                checked = _checked.get((tuple(kw.items()), tuple(map(type, kw.values()))))
            except TypeError:  # an unhashable value (a list of modules)
                checked = None
            if checked is None:
                checked = _check_new(kw)
            self._explicit, self._key = checked
            self._trace_id = os.urandom(16).hex()

    def _setup(self, explicit: dict) -> None:
        """A trace of settings already checked (_decorate.py)."""
        self._explicit = explicit
        self._key = _explicit_key(explicit)
        self._trace_id = os.urandom(16).hex()

    # What a trace starts with: class attributes, set on the instance when
    # they change (a trace per request creates only what it uses).
    _state = _NEW
    _session = None
    _settings: "dict | None" = None  # shared with other traces (_Plan): never changed
    _sources: Any = MappingProxyType({})
    _recording = False
    _wall_start: "float | None" = None
    _wall_end: "float | None" = None
    _roots = None
    _cache_path = None
    _rescue_said = False  # _rescue_refused() spoke
    _pid = None  # the process that recorded (a forked child never sends it)
    _extra_ignore: tuple = ()  # added by the runner (import machinery)
    _otel_parent: "str | None" = None  # the traceparent this trace joins (_otel.py)
    _lines = None  # _lines.LineRecorder when lines= names functions
    _source: "bytes | None" = None  # the "source" key's JSON, once taken (_source.py)
    _raised = False  # the traced scope ended with an exception (keep="slow")
    _discarded = False  # keep="slow" dropped it: neither sent nor saved
    # keep="slow": set by frame(trace=True) before the trace ends, the
    # frame's own verdict (slower than its threshold, or sampled)
    # instead of comparing the trace's duration with keep_slower_than.
    _keep_slow: "bool | None" = None
    _tracemalloc_started = False  # track_memory started tracemalloc: stop it after

    # ------------------------------------------------------------------
    # Recording
    # ------------------------------------------------------------------

    def _begin(self, stacklevel: int = 3) -> None:
        """Start recording. stacklevel counts frames from here (1) up to the
        user's code, for warnings about the settings."""
        # Everything but start() runs quietly: an enclosing trace must not
        # record tracepatch reading its config (see _quiet.py). Settings
        # found cached run no code of the standard library (tracepatch's
        # own frames are never recorded): no fresh context is needed.
        # (Not with the opentelemetry API loaded: its current span is asked.)
        plan = _cached_plan(self._key) if self._key is not None else None
        if plan is not None and "opentelemetry.trace" not in sys.modules:
            # Then no otel_parent either (_explicit_key()): none to look up.
            session = self._prepare(stacklevel + 1, plan, otel=False)
        else:
            session = quiet(self._prepare, stacklevel + 2)
        if session is None:
            return
        try:
            if self._settings["track_memory"]:
                self._tracemalloc_started = quiet(_start_tracemalloc)
            session.start()
            if self._lines is not None:
                self._lines.start()
        except Exception as exc:  # noqa: BLE001 - tracing must not break the program
            self._stop_tracemalloc()
            self._session, self._recording = None, False
            quiet(warnings.warn, f"tracepatch: could not start tracing ({exc}); "
                  f"this trace records nothing", _config.TracepatchWarning,
                  stacklevel=stacklevel + 1)

    def _prepare(self, stacklevel: int, plan: "_Plan | None" = None, otel: bool = True):
        if self._state != _NEW:
            what = "is already recording" if self._state == _ACTIVE else "has already recorded"
            raise RuntimeError(f"this trace() {what}; create a new trace() for each recording")
        if plan is None:
            plan = _make_plan(self._explicit, self._key, stacklevel + 1)
        settings = plan.settings
        self._sources = plan.sources
        if plan.label_template:
            # Expanded per trace ({timestamp}); only the config's
            # default_label is a template: an explicit label is used as written.
            settings = {**settings, "label": _compat.expand_label(settings["default_label"])}
        self._settings = settings
        if plan.enabled and otel:
            self._otel_parent = _otel.resolve(settings["otel_parent"], stacklevel + 1)
        sample = settings["sample_traces"]
        if plan.off or (sample is not None and random.random() >= sample):
            self._state = _ACTIVE
            self._wall_start = time.time()
            return None
        kwargs = plan.session_kwargs
        if self._extra_ignore:
            kwargs = {**kwargs, "ignore_modules": kwargs["ignore_modules"] + self._extra_ignore}
        config_json = plan.config_json
        if self._otel_parent is not None:
            config_json = self._config_json(settings, self._otel_parent)
        session = _tracepatch.Session(
            label=settings["label"], trace_id=self._trace_id, config_json=config_json,
            stream_socket=self._stream_socket(settings, plan.tail), **kwargs)
        self._session = session
        if settings["lines"]:
            from ._lines import LineRecorder
            self._lines = LineRecorder(session, settings["lines"], settings["max_repr"],
                                       settings["line_samples"], settings["threads"])
        self._recording = True
        self._pid = _this_pid[0]
        self._state = _ACTIVE
        self._wall_start = time.time()
        return session

    @staticmethod
    def _stream_socket(settings: dict, tail: bool) -> "str | None":
        """Where a long trace streams while it records: the socket its
        upload would go to, or None (daemon off, or keep="slow", which
        decides only at the end whether the trace goes at all)."""
        mode = settings["daemon"]
        if tail or mode == "off":
            return None
        return _tracepatch.default_socket() if mode in _DAEMON_WORDS else mode

    def _end(self) -> None:
        if self._state != _ACTIVE:
            return
        if self._session is not None:
            self._session.stop()
        if self._tracemalloc_started:
            self._stop_tracemalloc()
        if self._lines is not None:
            quiet(self._lines.stop)
        if not self._drop_fast():
            quiet(self._finish)

    def _drop_fast(self) -> bool:
        """_finish() for a keep="slow" trace that is dropped (fast, no
        exception, no gap to warn about), without the fresh context
        _finish() runs in: nothing here runs code of the standard library.
        False, having changed nothing, for any other trace."""
        session, settings = self._session, self._settings
        if session is None or settings["keep"] != "slow" or self._raised:
            return False
        slow = self._keep_slow
        if slow is None:
            slow = session.duration_ns > settings["keep_slower_than"] * 1e9
        if slow or session.limit_reason == "profiler":
            return False
        self._wall_end = time.time()
        self._state = _DONE
        failures = _tracepatch._repr_failures()
        if failures:
            quiet(_repr_notes, settings["repr_notes"], failures)
        # As _finish(): a trace with no calls, or recorded before a fork,
        # is neither kept nor said to be dropped.
        if (session.call_count != 0 or session.streamed) and self._pid == _this_pid[0]:
            self._discarded = True
        return True

    def _stop_tracemalloc(self) -> None:
        # Only when this trace started it: a program (or an enclosing
        # trace) that traces memory itself keeps tracing.
        if self._tracemalloc_started:
            self._tracemalloc_started = False
            import tracemalloc
            tracemalloc.stop()

    def _finish(self) -> None:
        self._wall_end = time.time()
        self._state = _DONE
        settings = self._settings
        if not self._recording:
            return
        _repr_notes(settings["repr_notes"])
        if self._session.limit_reason == "profiler":
            # 3.10/3.11: the program's own profiler took the slot a while.
            # stacklevel: _finish, quiet, _end, __exit__/wrapper, user code.
            gap = next((e for e in self._session.errors if e.startswith("another profiler")),
                       "another profiler replaced tracepatch's")
            warnings.warn(f"tracepatch: trace {self._trace_id[:8]} has a gap: {gap}; "
                          f"recording resumed when it was removed",
                          _config.TracepatchWarning, stacklevel=5)
        if self._session.call_count == 0 and not self._session.streamed:
            return
        if self._pid != _this_pid[0]:
            # Recorded before a fork: the process that started the trace
            # sends or saves it; a second copy from here would duplicate it.
            return
        if self._keep_slow is not None:
            slow = self._keep_slow
        else:
            slow = self._session.duration_ns > settings["keep_slower_than"] * 1e9
        if settings["keep"] == "slow" and not self._raised and not slow:
            self._discarded = True  # fast and fine: nothing is serialised
            return
        uploaded = self._upload(settings)
        if uploaded and not self._cache_asked():
            return  # tphd has it: no local file unless one was asked for
        if not uploaded and self._session.streamed:
            # The stream broke off while recording (tphd went away) and tphd
            # cannot take the whole trace now: it holds part of it, as
            # truncated, so the file is said, not silent.
            self._rescue_refused(broke_off=True)
            return
        if settings["cache"] and settings["auto_save"]:
            self._cache_path = _cache.save(self, settings["cache_dir"])

    def _cache_asked(self) -> bool:
        """True when a file was asked for explicitly (cache=True, or
        auto_save = true in the config file): then it is written even when
        tphd stored the trace, as tracepatch 1.0.0's file workflow expects."""
        if self._explicit.get("cache") is True:
            return True
        return bool(self._sources.get("auto_save") in ("config", "env")
                    and self._settings.get("auto_save"))

    def _rescue_at_exit(self) -> None:
        """The interpreter exits and the sender did not deliver this trace:
        save it where a trace goes without a daemon, and say so on stderr."""
        session = self._session
        if session.upload_state == "acked":
            return
        reason = session.upload_error or "the interpreter exited before tphd acknowledged it"
        settings = self._settings
        where = "not saved: cache is off"
        if settings["cache"] and settings["auto_save"]:
            path = _cache.save(self, settings["cache_dir"])
            if path is not None:
                self._cache_path = path
                where = f"saved to {path}"
            else:
                where = "and saving it failed (see the warning above)"
        sys.stderr.write(f"tracepatch: trace {self._trace_id[:8]} ({self.label or 'no label'}, "
                         f"{self.call_count} calls) was not delivered to tphd before the "
                         f"interpreter exited ({reason}); {where}\n")

    def _rescue_refused(self, broke_off: bool | None = None) -> None:
        """tphd refused the sender's connection (its connection limit, a
        protocol version): the trace never reached it; or the trace's stream
        broke off (tphd went away). Save it where a trace goes without a
        daemon, once, and say so on stderr."""
        session = self._session
        # A stream that broke off left tphd part of the trace (truncated):
        # the whole one goes to the file.
        if broke_off is None:
            broke_off = session.streamed and session.upload_state == "failed"
        if (self._rescue_said or self._cache_path is not None
                or not (session.upload_refused or broke_off)):
            return
        settings = self._settings
        where = "not saved: cache is off"
        if settings["cache"] and settings["auto_save"]:
            path = _cache.save(self, settings["cache_dir"])
            if path is None:
                where = "and saving it failed (see the warning above)"
            else:
                self._cache_path = path
                where = f"saved to {path}"
        self._rescue_said = True
        sys.stderr.write(f"tracepatch: trace {self._trace_id[:8]} ({self.label or 'no label'}, "
                         f"{self.call_count} calls) was not stored by tphd "
                         f"({session.upload_error}); {where}\n")

    def _upload(self, settings: dict) -> bool:
        """Hand the finished trace to tphd's background sender when a daemon
        listens (never waits for it); True when handed over."""
        mode = settings["daemon"]
        if mode == "off":
            return False
        required = mode == "required"
        path = None if mode in _DAEMON_WORDS else mode
        session = self._session
        lines = quiet(self._lines_json) if self._lines is not None else None
        # The source is taken here, once the recording ended (never while it
        # records), and goes before the trace's END (PROTOCOL.md 4.6b).
        source = quiet(self._source_json)
        try:
            if session.upload(path, required=required, lines=lines, source=source):
                _note_handed_over(self)
                _flush_at_process_exit()
                return True
            reason = session.upload_error
        except (ValueError, OSError) as exc:  # a socket path the OS cannot take
            reason = str(exc)
        if required:
            # stacklevel: _upload, _finish, quiet, _end, __exit__/wrapper, user code.
            warnings.warn(f"tracepatch: daemon='required' but trace {self._trace_id[:8]} "
                          f"({self.label or 'no label'}) was not sent to tphd: {reason}",
                          _config.TracepatchWarning, stacklevel=6)
        return False

    @staticmethod
    def _config_json(settings: dict, otel_parent: str | None = None) -> str:
        """json.dumps(_config_dict(...)), kept for the last few distinct
        settings: encoding it is a fifth of a discarded keep="slow" trace's
        cost, and a service opens its traces with the same settings."""
        try:
            key = (tuple(settings[k] for k in _CONFIG_KEYS), otel_parent)
            hit = _config_json_cache.get(key)
        except TypeError:  # an unhashable value (a lines= entry): no cache
            return json.dumps(trace._config_dict(settings, otel_parent))
        if hit is None:
            if len(_config_json_cache) >= 32:
                _config_json_cache.clear()
            hit = _config_json_cache[key] = json.dumps(trace._config_dict(settings, otel_parent))
        return hit

    @staticmethod
    def _config_dict(settings: dict, otel_parent: str | None = None) -> dict:
        """The settings a trace file's "config" shows: _CONFIG_KEYS, in order."""
        d = {k: settings[k] for k in _CONFIG_KEYS}
        d["ignore_modules"] = list(d["ignore_modules"])
        d["include_modules"] = list(d["include_modules"])
        d["lines"] = [x if isinstance(x, str) else
                      f"{getattr(x, '__module__', '')}.{getattr(x, '__qualname__', repr(x))}"
                      for x in d["lines"]]
        if otel_parent:
            d["otel_parent"] = otel_parent
        return d

    def __enter__(self) -> "trace":
        self._begin()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        self._raised = exc_type is not None
        self._end()
        return False

    async def __aenter__(self) -> "trace":
        self._begin()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool:
        self._raised = exc_type is not None
        self._end()
        return False

    def __call__(self, func: _F) -> _F:
        """Decorate func: each of its calls becomes its own trace."""
        return decorate(func, self._explicit, stacklevel=3)

    # ------------------------------------------------------------------
    # Facts available at any time
    # ------------------------------------------------------------------

    @property
    def trace_id(self) -> str:
        """32 lowercase hex digits, random per trace; once tphd has acknowledged
        the trace, the id it stored it under (the same unless that id was taken)."""
        if self._session is not None and self._state == _DONE:
            return self._session.trace_id
        return self._trace_id

    @property
    def otel_trace_id(self) -> str:
        """The OpenTelemetry trace id tphd's OTLP exporter gives this trace's
        spans: the joined traceparent's (``otel_parent``, or the current
        span of the opentelemetry API), else the trace's own id."""
        ids = _otel.parse(self._otel_parent)
        return ids[0] if ids else self.trace_id

    @property
    def label(self) -> str | None:
        if self._settings is not None:
            return self._settings["label"]
        return self._explicit.get("label")

    @property
    def active(self) -> bool:
        """True while recording."""
        return self._state == _ACTIVE

    @property
    def enabled(self) -> bool:
        """False when this trace was a no-op (TRACEPATCH_ENABLED=0, max_calls=0, or
        not picked by sample_traces)."""
        return self._recording

    @property
    def daemon(self) -> str:
        return self._explicit.get("daemon", _settings.default("daemon"))

    @property
    def call_count(self) -> int:
        """Calls recorded (exact; equals max_calls when the trace was capped)."""
        return self._session.call_count if self._session is not None else 0

    @property
    def kept(self) -> bool | None:
        """None until the trace ends; then False when keep="slow" dropped it
        (fast and no exception), else True."""
        if self._state != _DONE:
            return None
        return not self._discarded

    @property
    def was_limited(self) -> bool:
        """True when a limit (max_depth, max_calls, max_time, memory) cut the
        trace, or another profiler left a gap in it (limit_reason)."""
        return bool(self._session.was_limited) if self._session is not None else False

    @property
    def limit_reason(self) -> str | None:
        """"max_depth", "max_calls", "max_time", "memory", "profiler" (on
        3.10/3.11, a profiler the program installed held the interpreter's
        profile slot a while: the calls made meanwhile are missing; see
        errors) or None."""
        return self._session.limit_reason if self._session is not None else None

    @property
    def sample_skipped(self) -> int:
        """Calls left out by sample= (call sampling; exact)."""
        return self._session.sample_skipped if self._session is not None else 0

    @property
    def dropped(self) -> int:
        """Events lost: out of memory while recording, or an upload to tphd that
        failed (the trace stays complete here; see errors for why). A trace
        that was not uploaded because no daemon listens (daemon="auto") is not
        counted; with daemon="required" it is."""
        return self._session.dropped if self._session is not None else 0

    @property
    def errors(self) -> list:
        """Internal problems the recorder met (never raised into your code)."""
        return list(self._session.errors) if self._session is not None else []

    @property
    def cache_path(self) -> Path | None:
        """Where the finished trace was saved, or None."""
        return self._cache_path

    @property
    def url(self) -> str | None:
        """The trace's report link in tphd's web UI, or None (not stored, or
        tphd serves no HTTP). Waits up to 2 s for an upload still under way."""
        session = self._session
        if session is None or self._state != _DONE or session.upload_state == "none":
            return None
        session.wait_upload(2.0)
        return session.url

    @property
    def upload_state(self) -> str:
        """"none" (not sent: daemon="off", no daemon listening, nothing
        recorded), "pending", "acked" (stored by tphd) or "failed"."""
        if self._session is None or self._state != _DONE:
            return "none"
        return self._session.upload_state

    @property
    def settings(self) -> dict:
        """The effective settings of this trace (after it started)."""
        return dict(self._settings or {})

    # ------------------------------------------------------------------
    # Results (after recording)
    # ------------------------------------------------------------------

    def _done_session(self):
        if self._state == _ACTIVE:
            raise RuntimeError("the trace is still recording: read its results after the "
                               "'with' block (or the decorated call) has finished")
        if self._state == _NEW:
            raise RuntimeError("this trace has not run: use it as 'with trace() as t:' "
                               "and read the results afterwards")
        if self._session is None:
            # A no-op trace still answers, with an empty recording.
            self._session = quiet(self._empty_session)
        return self._session

    def _empty_session(self):
        # The extension renders only sessions that ran, so an empty one is
        # started and stopped at once. This runs in a fresh context (quiet)
        # where no Python code executes between the two: it records nothing.
        settings = self._settings
        session = _tracepatch.Session(
            label=settings["label"], trace_id=self._trace_id,
            config_json=self._config_json(settings))
        session.start()
        session.stop()
        return session

    def tree(self, *, style: str | None = None, color: bool | None = _Default(False),
             args: bool = True, returns: bool = True, self_time: bool = False,
             source: bool = False, depth: int | None = None,
             filter: str | Iterable[str] | None = None, fold: bool = True,
             header: bool = True, fold_threshold: int = 0, units: str = "auto",
             lines: bool = False,
             show_args: bool | None = None, show_return: bool | None = None,
             show_source: bool | None = None, show_self_time: bool | None = None) -> str:
        """The call tree as text.

        style: "unicode" (default, or the config file's tree_style), "ascii"
        (7-bit) or "ansi" (unicode with colours). color: True/False, or None
        for "when stdout is a terminal"; by default colours are off unless
        the config file (or TRACEPATCH_COLOR) asks for them, and even then
        only on a terminal. args/returns: show arguments / return values.
        self_time: add each call's own time. source: add file:line.
        depth: show this many levels (None = all). filter: glob pattern(s)
        on "module.function" or module; "!pattern" hides matches. fold:
        fold repeated sibling calls into one "[xN]" line. header: the
        statistics block above the tree. units: "auto" (850ns, 1.23µs,
        12.3ms, 1.23s: 3 significant digits) or "ms" (tracepatch 1.0.0's
        fixed "0.01ms"). lines: then, for each call of a lines= function,
        its source lines with hit counts and values. show_args, show_return,
        show_source and show_self_time are tracepatch 1.0.0's names for args,
        returns, source and self_time (when given, they win).
        """
        args = args if show_args is None else show_args
        returns = returns if show_return is None else show_return
        source = source if show_source is None else show_source
        self_time = self_time if show_self_time is None else show_self_time
        text = quiet(self._tree, style, color, args, returns, self_time, source, depth,
                     filter, fold, header, fold_threshold, units)
        records = quiet(self._line_records) if lines else []
        if records:
            from ._lines import render_text
            text += "\n\n" + render_text(records)
        return text

    def _tree(self, style, color, args, returns, self_time, source, depth, filter, fold,
              header, fold_threshold, units="auto") -> str:
        session = self._done_session()
        settings = self._settings or {}
        if style is None:
            # tracepatch 1.0.0's `tph init` writes tree_style = "ascii" and
            # its "ascii" trees are drawn with box characters: the file's
            # word means that; "7bit" asks for 7-bit connectors.
            style = {"ascii": "unicode", "7bit": "ascii"}.get(
                settings.get("tree_style", "unicode"), settings.get("tree_style", "unicode"))
        elif style == "7bit":
            style = "ascii"
        if isinstance(color, _Default):
            color = None if settings.get("color") else False
        if style == "ansi":
            style, color = "unicode", True
        elif style not in ("unicode", "ascii"):
            raise ValueError(f"tree(): style must be 'unicode', 'ascii', '7bit' or 'ansi', "
                             f"got {style!r}")
        if color is None:
            color = _stdout_is_tty()
        if isinstance(filter, str):
            filter = (filter,)
        elif filter is None:
            filter = ()
        else:
            filter = tuple(filter)
        if depth is None:
            depth = -1
        text = session.tree(style=style, color=bool(color), args=args, returns=returns,
                            self_time=self_time, source=source, depth=depth,
                            filter=filter, fold=fold, header=header,
                            fold_threshold=fold_threshold, units=units)
        # Like tracepatch 1.0.0: no final newline, so print(t.tree()) adds none.
        return text[:-1] if text.endswith("\n") else text

    def summary(self) -> TraceSummary:
        """The statistics (tracepatch 1.0.0's TraceSummary: call_count,
        max_depth_reached, unique_functions, unique_modules,
        total_duration_ms, slowest_call_ms, slowest_call_name, most_called);
        ``str()`` of it is the statistics block above the tree."""
        session = self._done_session()
        text = session.summary()
        text = text[:-1] if text.endswith("\n") else text
        summary = TraceSummary._from_stats(session.stats(), text)
        # 1.0.0's total_duration_ms is the sum of the top-level calls' times.
        summary.total_duration_ms = sum(r.elapsed for r in self.roots) * 1000
        return summary

    def explain(self, *, verbose: bool = False) -> str:
        """What happened, in sentences, by fixed rules (the same trace gives
        the same text): recursion, loops, the same call repeated with the same
        arguments (N+1), slow calls, exceptions; verbose adds complexity
        hints for recursive functions."""
        return _compat.explain(self.roots, verbose=verbose)

    def show(self) -> None:
        """Display the trace: in a notebook (IPython with a rich front end)
        the HTML report inline, elsewhere the tree printed to stdout."""
        display = _notebook_display()
        if display is not None:
            display(self)
        else:
            print(self.tree())

    def _repr_html_(self) -> str | None:
        """Jupyter's rich display: the self-contained report (no external
        URLs), in an iframe so its scripts and styles stay its own."""
        if self._state != _DONE:
            return None
        import html as _html
        page = self.to_html()
        return ('<iframe style="width:100%;height:600px;border:0" sandbox="allow-scripts" '
                f'srcdoc="{_html.escape(page, quote=True)}"></iframe>')

    def to_flamegraph(self, path: _Dest = None) -> Any:
        """An SVG flame graph (one bar per call, width by time, tooltips);
        text when path is None, else written to path. The same renderer as
        ``tph export --format flamegraph``."""
        return quiet(_emit, self._done_session().to_svg(), path)

    @property
    def stats(self) -> dict:
        """Statistics as a dict: what ``tph stats --json`` prints for the same
        trace (calls, modules, max_depth, slowest, most_called, functions,
        by_module; docs/QUERY.md)."""
        return self._done_session().stats()

    @property
    def roots(self) -> list:
        """The top-level calls, as :class:`tracepatch.Node` trees (a read-only
        sequence; each node and its children are built when first reached)."""
        session = self._done_session()
        if self._roots is None:
            self._roots = build_roots(session, self._wall_start_seconds(session))
        return self._roots

    def _wall_start_seconds(self, session) -> float:
        wall = getattr(session, "wall_start_ns", 0)
        return wall / 1e9 if wall else (self._wall_start or 0.0)

    def to_json(self, path: _Dest = None, *, pretty: bool = True,
                compact: bool | None = None) -> Any:
        """The trace in tracepatch's JSON schema: returned as text when path is
        None, otherwise written to path (a file name or an open text file) and
        path is returned. Written to a file, the text is never held whole in
        memory: it goes out in pieces of 1 MiB, so a trace of millions of
        calls costs little more than its tree. The last keys are "lines"
        (lines= data) and "source" (the traced functions' source text, taken
        from this process's files once; docs/API.md).

        compact=True (or pretty=False) leaves out the indentation and line
        breaks (same document; a big trace shrinks by half or more). By
        default the config file's compact_json decides (off unless set)."""
        if compact is None:
            compact = bool((self._settings or {}).get("compact_json", False))
        pretty = pretty and not compact
        return quiet(_emit_json, self._done_session(), pretty, path, self._sections())

    def _sections(self) -> tuple:
        """The trace file's last keys as (key, JSON bytes): "lines" (lines=
        data) and "source" (its functions' source text), those it has."""
        out = []
        lines = quiet(self._lines_json) if self._lines is not None else None
        if lines:
            out.append(("lines", lines))
        source = quiet(self._source_json)
        if source:
            out.append(("source", source))
        return tuple(out)

    def _source_json(self) -> bytes | None:
        """The "source" key's JSON text (docs/API.md), taken from this
        process's files the first time the trace is written out or uploaded
        to tphd, then kept (the file may change, or be read elsewhere,
        later)."""
        if self._source is None and self._session is not None and self._state == _DONE:
            from . import _source
            value = _source.capture(self._session.functions())
            self._source = _source.to_bytes(value) if value else b""
        return self._source or None

    def _lines_json(self) -> bytes | None:
        """The lines= data as tphd takes it (PROTOCOL.md 4.6a): the JSON text
        of the trace file's "lines" key, or None when there is none. A repr
        with a lone surrogate cannot be UTF-8: it reads "?"."""
        records = self._line_records()
        if not records:
            return None
        return json.dumps(records, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "replace")

    def _line_records(self) -> list:
        """lines= data per recorded call ([] without lines=)."""
        if self._lines is None or self._session is None or self._state != _DONE:
            return []
        return self._lines.records(self._session.nodes())

    def to_csv(self, path: _Dest = None) -> Any:
        """One row per call (CSV); text when path is None, else written to path."""
        return quiet(_emit, self._done_session().to_csv(), path)

    def to_chrome(self, path: _Dest = None) -> Any:
        """Chrome trace-event JSON (Perfetto, chrome://tracing); text or written to path."""
        return quiet(_emit, self._done_session().to_chrome(), path)

    def to_html(self, path: _Dest = None) -> Any:
        """The self-contained HTML report (the tphd report page with this trace
        inlined; opens offline); text when path is None, else written to path."""
        text = self._done_session().to_html()
        sections = self._sections()
        if sections:
            from ._lines import splice_html
            text = splice_html(text, sections)
        return quiet(_emit, text, path)

    def to_folded(self, path: _Dest = None) -> Any:
        """Folded stacks for flamegraph.pl / speedscope; text or written to path."""
        return quiet(_emit, self._done_session().to_folded(), path)

    # ------------------------------------------------------------------
    # Saved traces (tracepatch 1.0.0 helpers)
    # ------------------------------------------------------------------

    @staticmethod
    def logs(cache_dir: str | os.PathLike[str] | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
        """Saved traces under cache_dir (default: the working directory), newest first."""
        return _cache.list_saved(cache_dir, limit)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> dict[str, Any]:
        """A saved trace file, parsed."""
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)

    def __repr__(self) -> str:
        state = {_NEW: "new", _ACTIVE: "recording", _DONE: "finished"}[self._state]
        label = f" label={self.label!r}" if self.label else ""
        calls = f" calls={self.call_count}" if self._state == _DONE else ""
        return f"<tracepatch.trace {self._trace_id[:8]}{label} {state}{calls}>"


_exit_hook_pid = None
# Traces handed to the sender and maybe not acknowledged yet (this process's:
# a forked child starts with the parent's list, whose states read "none").
_handed_over: list[trace] = []


def _note_handed_over(t: trace) -> None:
    # Settled traces leave the list, so it holds at most the sender's queue;
    # one that tphd refused is saved as a file first.
    for h in _handed_over:
        if h._session.upload_state != "pending":
            try:
                h._rescue_refused()
            except Exception:  # noqa: BLE001 - a rescue must not break the program
                pass
    _handed_over[:] = [h for h in _handed_over if h._session.upload_state == "pending"]
    _handed_over.append(t)


def _exit_flush() -> None:
    """At exit: let the sender finish within a bound that scales with what is
    left (the extension's _flush_uploads()), then save each trace it did not
    deliver to the local fallback file and say so on stderr: a finished trace
    is never lost in silence."""
    handed = list(_handed_over)
    pending = [t for t in handed if t._session.upload_state == "pending"]
    _handed_over.clear()
    try:
        _tracepatch._flush_uploads()
    except Exception:  # noqa: BLE001 - an exit nicety must not break the program
        pass
    for t in handed:
        try:
            if t in pending:
                t._rescue_at_exit()
            else:
                t._rescue_refused()
        except Exception:  # noqa: BLE001
            pass


_noted_types: set = set()


def _repr_notes(show: bool, failures: "list | None" = None) -> None:
    """tracepatch 1.0.0's stderr note for a __repr__ that raised, once per
    type in this process (the extension records, it never prints);
    failures: _tracepatch._repr_failures(), when already taken."""
    if failures is None:
        failures = _tracepatch._repr_failures()
    if not show:
        return
    for type_name, exc_name in failures:
        if type_name in _noted_types:
            continue
        _noted_types.add(type_name)
        try:
            print(f"[tracepatch] repr failed: {exc_name}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - a closed stderr must not break the program
            pass


def _flush_at_process_exit() -> None:
    """Register the exit flush (_exit_flush), once per process.

    With atexit it runs before the extension's own flush, registered (with
    atexit, by the first upload) before it. multiprocessing's forked
    children end with os._exit(), after running only multiprocessing's own
    finalizers: there it is registered as one of those."""
    global _exit_hook_pid
    pid = os.getpid()
    if _exit_hook_pid == pid:
        return
    _exit_hook_pid = pid
    import atexit

    atexit.register(_exit_flush)
    mp = sys.modules.get("multiprocessing")
    try:
        if mp is None or mp.parent_process() is None:
            return
        from multiprocessing import util
        util.Finalize(None, _exit_flush, exitpriority=-100)
    except Exception:  # noqa: BLE001 - an exit nicety must not break the program
        pass


def _notebook_display():
    """IPython.display.display when running under a rich (notebook) front
    end, else None. Never imports IPython when it is not already loaded."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001
        return None
    if shell is None or type(shell).__name__ == "TerminalInteractiveShell":
        return None
    from IPython.display import display
    return display


def _stdout_is_tty() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _emit_json(session, pretty: bool, path, sections: tuple = ()):
    if path is None:
        return session.to_json(pretty=pretty, sections=sections)
    if hasattr(path, "write"):
        session.to_json(pretty=pretty, file=path, sections=sections)
        return path
    with _cache.open_private(path, "wb") as fh:
        session.to_json(pretty=pretty, file=fh, binary=True, sections=sections)
    return path


def _emit(text: str, path):
    if path is None:
        return text
    if hasattr(path, "write"):
        path.write(text)
        return path
    with _cache.open_private(path) as fh:
        fh.write(text)
    return path


def _public_signature():
    import inspect
    sig = inspect.signature(_keywords)
    return sig.replace(parameters=list(sig.parameters.values())[1:])


# help(trace) and inspect.signature(trace) show __init__'s keywords, not __new__'s.
trace.__signature__ = _public_signature()
if trace.__doc__:  # None under python -OO
    trace.__doc__ = trace.__doc__.replace("@SETTINGS@", _settings.keyword_doc("    ").lstrip())

# At the end: _decorate needs the trace class defined above. (A function-level
# import would run importlib code on every call, visible to enclosing traces.)
from ._decorate import decorate  # noqa: E402
