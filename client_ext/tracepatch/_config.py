"""Configuration: built-in defaults, config files, environment variables.

Precedence, highest first:

1. keyword arguments given to ``trace(...)`` (or ``start_tracing(...)``);
2. environment variables (``TRACEPATCH_MAX_DEPTH`` ...);
3. the config file: ``tracepatch.toml``, or the ``[tool.tracepatch]`` table of
   ``pyproject.toml``, whichever is found first searching upward from the
   working directory (``tracepatch.toml`` wins within one directory);
4. the built-in defaults of the settings schema (_settings.py), which also
   gives every setting's type and range.

Nothing here raises into traced code: a bad config file or environment
variable becomes a :class:`TracepatchWarning` naming the problem and the value
used instead. Only ``python -m tracepatch config --validate`` turns problems
into a failing exit status.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path
from typing import Any, Callable

from . import _settings, _tracepatch

try:  # Python 3.11+
    import tomllib as _toml
except ImportError:  # pragma: no cover - exercised on 3.10 only
    try:
        import tomli as _toml  # type: ignore[no-redef]
    except ImportError:
        _toml = None  # type: ignore[assignment]

CONFIG_NAMES = ("tracepatch.toml", "pyproject.toml")

TOML_MISSING = (
    "reading config files needs Python 3.11+ (tomllib) or the 'tomli' package "
    "(pip install tomli)"
)


class TracepatchWarning(UserWarning):
    """A problem tracepatch worked around (bad setting, failed save...)."""


# The defaults, types and ranges live in the settings schema (_settings.py).
DEFAULTS = _settings.DEFAULTS

# Keys accepted by tracepatch 1.0.0 that this version cannot honour: refusing
# them says so instead of silently ignoring a setting the user relies on.
_UNSUPPORTED: dict[str, str] = {}

_TRUE = _settings.TRUE_WORDS
_FALSE = _settings.FALSE_WORDS
_FILE = _settings.FILE


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _field(kind: str) -> Callable[[Any], str | None]:
    """A check for a key of the [test] tables (not settings: no default)."""
    setting = _settings.Setting("", kind, None, "")

    def check(value: Any) -> str | None:
        try:
            setting.check(value, _FILE)
        except _settings.Invalid as exc:
            return str(exc)
        return None
    return check


def _check_table(value: Any, where: str, fields: dict, problems: list) -> None:
    if not isinstance(value, dict):
        problems.append((where, f"expected a table, got {_describe(value)}"))
        return
    for key, val in value.items():
        check = fields.get(key)
        if check is None:
            problems.append((f"{where}.{key}", "unknown key"))
            continue
        problem = check(val)
        if problem:
            problems.append((f"{where}.{key}", problem))


def _check_table_list(value: Any, where: str, fields: dict, problems: list) -> None:
    if not isinstance(value, list):
        problems.append((where, f"expected an array of tables ([[{where}]]), got {_describe(value)}"))
        return
    for i, item in enumerate(value):
        _check_table(item, f"{where}[{i}]", fields, problems)


_TEST_FILE = {"path": _field("str"), "functions": _field("names")}
_TEST_INPUT = {
    "function": _field("str"),
    "args": lambda v: None if isinstance(v, list) else f"expected an array, got {_describe(v)}",
    "kwargs": lambda v: None if isinstance(v, dict) else f"expected a table, got {_describe(v)}",
}
_TEST_CUSTOM = {"enabled": _field("bool"), "script": _field("str")}


def _check_test(value: Any, prefix: str, problems: list) -> None:
    where = prefix + "test"
    if not isinstance(value, dict):
        problems.append((where, f"expected a table, got {_describe(value)}"))
        return
    for key, val in value.items():
        if key == "files":
            _check_table_list(val, f"{where}.files", _TEST_FILE, problems)
        elif key == "inputs":
            _check_table_list(val, f"{where}.inputs", _TEST_INPUT, problems)
        elif key == "custom":
            _check_table(val, f"{where}.custom", _TEST_CUSTOM, problems)
        else:
            problems.append((f"{where}.{key}", "unknown key"))


def validate_table(data: dict, prefix: str = "") -> tuple[dict, list[tuple[str, str]]]:
    """Check one config table against the schema. Returns (valid settings,
    problems).

    prefix is prepended to key names in problems ("tool.tracepatch." for
    pyproject.toml) so a message names the key as it is written in the file.
    """
    settings: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in data.items():
        if key == "test":
            _check_test(value, prefix, problems)
            continue
        setting = _settings.BY_NAME.get(key)
        if setting is None or not setting.file:
            reason = _UNSUPPORTED.get(key, "unknown key")
            if setting is not None:
                reason = "not a config file setting (a trace() keyword only)"
            problems.append((prefix + key, reason))
            continue
        try:
            settings[key] = setting.check(value, _FILE)
        except _settings.Invalid as exc:
            problems.append((prefix + key, str(exc)))
    return settings, problems


# ---------------------------------------------------------------------------
# Finding and reading config files
# ---------------------------------------------------------------------------

class ConfigFile:
    """A config file found on disk: where, which table, what it says."""

    def __init__(self, path: Path, section: str | None):
        self.path = path
        self.section = section  # None for tracepatch.toml, "tool.tracepatch" for pyproject
        self.settings: dict[str, Any] = {}
        self.problems: list[tuple[str, str]] = []
        self.unreadable: str | None = None  # why the file could not be read at all

    @property
    def ok(self) -> bool:
        return self.unreadable is None and not self.problems


_cache: dict[tuple, ConfigFile] = {}


_sections: dict[tuple, bool] = {}


def _has_tool_section(path: str, st: os.stat_result) -> bool:
    """pyproject.toml counts only with a [tool.tracepatch] table (cached by mtime)."""
    key = (path, st.st_mtime_ns, st.st_size)
    found = _sections.get(key)
    if found is None:
        found = _sections[key] = _read_tool_section(path)
    return found


def _read_tool_section(path: str) -> bool:
    if _toml is not None:
        try:
            with open(path, "rb") as fh:
                data = _toml.load(fh)
        except (OSError, ValueError):
            # A broken pyproject.toml is only ours to report when it mentions us.
            return _mentions_us(path)
        tool = data.get("tool")
        return isinstance(tool, dict) and "tracepatch" in tool
    return _mentions_us(path)


def _mentions_us(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "tool.tracepatch" in fh.read()
    except OSError:
        return False


def _regular_file(path: str):
    # Most candidates do not exist: os.access says so without the
    # FileNotFoundError os.stat would raise (an exception costs more than
    # the system call, and this runs for every trace).
    if not os.access(path, os.F_OK):
        return None
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def find_config_file(start: str | os.PathLike | None = None) -> tuple[Path, str | None] | None:
    """The config file that applies to start (default: the working directory).

    Returns (path, section) or None. Each directory from start upward is
    checked for tracepatch.toml, then for a pyproject.toml that has a
    [tool.tracepatch] table. This runs for every trace, so it sticks to
    os.stat (two per directory) and caches what it parses.
    """
    try:
        directory = os.path.abspath(start) if start is not None else os.getcwd()
    except OSError:  # the working directory was removed
        return None
    return _search(directory)[0]


def _search(directory: str) -> tuple:
    """(find_config_file()'s answer for directory, the paths it looked at,
    in order): the answer stays the same while none of them changes."""
    looked = []
    for toml, pyproject in _candidates(directory):
        looked.append(toml)
        if _regular_file(toml) is not None:
            return (Path(toml), None), tuple(looked)
        looked.append(pyproject)
        st = _regular_file(pyproject)
        if st is not None and _has_tool_section(pyproject, st):
            return (Path(pyproject), "tool.tracepatch"), tuple(looked)
    return None, tuple(looked)


def sources_stamp(paths: tuple = ()) -> bytes | None:
    """What a trace's settings are read from, as bytes equal only while it
    stays the same: the working directory, every TRACEPATCH_* variable
    they read (TRACEPATCH_ENABLED too) and the stat() of each of paths (in
    C: _tracepatch._sources_stamp). None when that cannot be told."""
    data = getattr(os.environ, "_data", None)
    if type(data) is not dict:
        return None
    return _tracepatch._sources_stamp(data, _ALL_ENV_KEYS, paths)


def search_watched(directory: str, before: bytes) -> tuple | None:
    """For a cache of what the config file says: (find_config_file(directory)'s
    answer, the paths it depends on, their sources_stamp()), or None when
    that cannot be told (the working directory or the environment is no
    longer what before, an earlier sources_stamp(), says; a path stat()
    cannot take; a file that changed while it was searched). While
    sources_stamp(paths) gives the same bytes, the answer and the file's
    settings are the same: read_config_file() keys its own cache on less
    (path, mtime, size)."""
    found, looked = _search(directory)
    stamp = sources_stamp(looked)
    # Searched again after the stamp: an answer that is the same both times
    # was true when the stamp was taken, and the file is read after it.
    if stamp is None or not stamp.startswith(before) or _search(directory) != (found, looked):
        return None
    return found, looked, stamp


_candidate_paths: dict = {}


def _candidates(directory: str) -> tuple:
    """The (tracepatch.toml, pyproject.toml) paths of directory and each of
    its parents, nearest first: only string work, kept per directory."""
    paths = _candidate_paths.get(directory)
    if paths is None:
        out, d = [], directory
        while True:
            out.append((os.path.join(d, "tracepatch.toml"), os.path.join(d, "pyproject.toml")))
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
        if len(_candidate_paths) >= 64:
            _candidate_paths.clear()
        paths = _candidate_paths[directory] = tuple(out)
    return paths


def read_config_file(path: Path, section: str | None) -> ConfigFile:
    """Parse and validate one file. Never raises; results are cached by mtime."""
    try:
        st = path.stat()
        key = (str(path), section, st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _cache:
        return _cache[key]
    cfg = ConfigFile(path, section)
    if _toml is None:
        cfg.unreadable = TOML_MISSING
    else:
        try:
            with open(path, "rb") as fh:
                data = _toml.load(fh)
        except OSError as exc:
            cfg.unreadable = f"cannot read the file: {exc.strerror or exc}"
        except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
            cfg.unreadable = f"invalid TOML: {exc}"
        else:
            prefix = ""
            if section is not None:
                for part in section.split("."):
                    data = data.get(part, {}) if isinstance(data, dict) else {}
                prefix = section + "."
            if not isinstance(data, dict):
                cfg.problems.append((section or "", f"expected a table, got {_describe(data)}"))
            else:
                cfg.settings, cfg.problems = validate_table(data, prefix)
    if key is not None:
        _cache[key] = cfg
    return cfg


def load_config_file(start: str | os.PathLike | None = None) -> ConfigFile | None:
    found = find_config_file(start)
    if found is None:
        return None
    return read_config_file(*found)


_warned_files: set = set()


def _warn_file(cfg: ConfigFile, settings: dict, stacklevel: int) -> None:
    """One warning per file (and version of it): what is wrong, and for each
    bad setting the value used instead."""
    try:
        st = cfg.path.stat()
        key = (str(cfg.path), st.st_mtime_ns)
    except OSError:
        key = (str(cfg.path), None)
    if key in _warned_files:
        return
    _warned_files.add(key)
    if cfg.unreadable:
        msg = (f"tracepatch: ignoring config file {cfg.path}: {cfg.unreadable}; "
               f"using the defaults instead")
    else:
        details = []
        for where, problem in cfg.problems:
            name = where[len(cfg.section) + 1:] if cfg.section else where
            if name in settings:
                problem += f"; using {name}={settings[name]!r} instead"
            else:
                problem += "; ignored"
            details.append(f"{where}: {problem}")
        msg = f"tracepatch: config file {cfg.path} has invalid settings: " + "; ".join(details)
    warnings.warn(msg, TracepatchWarning, stacklevel=stacklevel)


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

def env_enabled(stacklevel: int = 2) -> bool:
    """False when TRACEPATCH_ENABLED is 0/false/no/off (any case).

    stacklevel counts frames from this function (1) up to the user's code,
    for the warning about an unrecognised value."""
    raw, = _getenv(_ENABLED_KEY)
    if raw is None:
        return True
    value = raw.strip().lower()
    if value in _FALSE:
        return False
    if value and value not in _TRUE:
        warnings.warn(
            f"tracepatch: TRACEPATCH_ENABLED={raw!r} is not one of "
            f"1/true/yes/on or 0/false/no/off; tracing stays enabled",
            TracepatchWarning, stacklevel=stacklevel)
    return True


_ENV_SETTINGS = tuple(s for s in _settings.SETTINGS if s.env is not None)


def _getenv(keys: tuple) -> tuple:
    """os.environ.get() of each variable named in keys (bytes), for what
    every trace reads. os.environ.get() raises and catches a KeyError for an
    unset variable, which costs more than the rest of the lookup; os.environ
    keeps its bytes in _data on POSIX (all this module runs on), read
    directly when it is there."""
    data = getattr(os.environ, "_data", None)
    if not isinstance(data, dict):
        return tuple(os.environ.get(os.fsdecode(k)) for k in keys)
    return tuple(None if raw is None else os.fsdecode(raw) for raw in map(data.get, keys))


_ENABLED_KEY = (b"TRACEPATCH_ENABLED",)
_ENV_KEYS = tuple(os.fsencode(s.env) for s in _ENV_SETTINGS)
_ALL_ENV_KEYS = _ENABLED_KEY + _ENV_KEYS


def env_enabled_clean() -> bool:
    """True when TRACEPATCH_ENABLED is unset or one of the words
    env_enabled() knows (it then never warns)."""
    raw, = _getenv(_ENABLED_KEY)
    return raw is None or raw.strip().lower() in _FALSE + _TRUE or not raw.strip()


def env_settings() -> tuple[dict, list[tuple[str, str, _settings.Invalid]]]:
    """Settings given by TRACEPATCH_* variables: (valid values by setting
    name, [(variable, setting name, problem)]). An empty variable (or one of
    blanks) counts as unset."""
    values: dict[str, Any] = {}
    problems: list[tuple[str, str, _settings.Invalid]] = []
    for setting, raw in zip(_ENV_SETTINGS, _getenv(_ENV_KEYS)):
        if raw is None or not raw.strip():
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except _settings.Invalid as exc:
            problems.append((setting.env, setting.name, exc))
    return values, problems


def env_problem_text(var: str, exc: _settings.Invalid) -> str:
    return f"{var}={exc.got} is not {exc.expected}"


# ---------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------

_SEARCH: Any = object()  # resolve(): find the config file from start upward


def resolve(explicit: dict, stacklevel: int = 2, start: str | None = None,
            config: ConfigFile | None = _SEARCH) -> tuple[dict, dict]:
    """Effective settings for one trace.

    config is the config file to use (None: none); by default the one found
    searching upward from start (default: the working directory).

    explicit holds only the keyword arguments the caller really passed
    (already checked against the schema). Returns (settings, sources) where
    sources maps each key to "keyword", "env", "config" or "default". Warns
    (never raises) about a bad config file or environment variable, once per
    source, naming the value used instead; stacklevel counts frames from
    this function (1) up to the user's code, so the warning points there.
    """
    settings, sources, _ = resolve_checked(explicit, stacklevel + 1, start, config)
    return settings, sources


def resolve_checked(explicit: dict, stacklevel: int = 2, start: str | None = None,
                    config: ConfigFile | None = _SEARCH) -> tuple[dict, dict, bool]:
    """resolve(), and whether it was clean: nothing to warn about, so the
    same sources give the same answer without a word (trace() caches it)."""
    settings = dict(DEFAULTS)
    sources = dict.fromkeys(DEFAULTS, "default")
    cfg = load_config_file(start) if config is _SEARCH else config
    if cfg is not None:
        for key, value in cfg.settings.items():
            settings[key] = value
            sources[key] = "config"
    env_values, env_problems = env_settings()
    for key, value in env_values.items():
        settings[key] = value
        sources[key] = "env"
    for key, value in explicit.items():
        settings[key] = value
        sources[key] = "keyword"
    # Warn last, so that a warning can say which value is used instead.
    if cfg is not None and not cfg.ok:
        _warn_file(cfg, settings, stacklevel + 1)
    for var, key, exc in env_problems:
        warnings.warn(f"tracepatch: {env_problem_text(var, exc)}; using {key}={settings[key]!r} "
                      f"instead", TracepatchWarning, stacklevel=stacklevel)
    return settings, sources, (cfg is None or cfg.ok) and not env_problems


# What ``python -m tracepatch init`` writes: generated from the schema.
STARTER_CONFIG = _settings.starter_config()
