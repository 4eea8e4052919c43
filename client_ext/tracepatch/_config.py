"""Configuration: built-in defaults, config files, environment variables.

Precedence, highest first:

1. keyword arguments given to ``trace(...)`` (or ``start_tracing(...)``);
2. environment variables (``TRACEPATCH_MAX_DEPTH`` ...);
3. the config file: ``tracepatch.toml``, or the ``[tool.tracepatch]`` table of
   ``pyproject.toml``, whichever is found first searching upward from the
   working directory (``tracepatch.toml`` wins within one directory);
4. the built-in defaults below.

Nothing here raises into traced code: a bad config file or environment
variable becomes a :class:`TracepatchWarning` naming the problem and the value
used instead. Only ``python -m tracepatch config --validate`` turns problems
into a failing exit status.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from pathlib import Path
from typing import Any

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


DEFAULTS: dict[str, Any] = {
    "ignore_modules": (),
    "include_modules": (),
    "max_depth": 30,
    "max_calls": 10000,
    "max_repr": 120,
    "max_time": 60.0,
    "cache": True,
    "cache_dir": None,
    "auto_save": True,
    "show_args": True,
    "show_return": True,
    "tree_style": "unicode",
    "color": False,
    "default_label": None,
}

TREE_STYLES = ("unicode", "ascii", "ansi")

# Keys accepted by tracepatch 1.0.0 that this version cannot honour: refusing
# them says so instead of silently ignoring a setting the user relies on.
_UNSUPPORTED = {
    "max_repr_args": "not supported by tracepatch 2; use max_repr",
    "max_repr_return": "not supported by tracepatch 2; use max_repr",
}

_ENV_INT = {
    "TRACEPATCH_MAX_DEPTH": ("max_depth", 1),
    "TRACEPATCH_MAX_CALLS": ("max_calls", 1),
    "TRACEPATCH_MAX_REPR": ("max_repr", 1),
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


# ---------------------------------------------------------------------------
# Value checks shared by config files and keyword arguments
# ---------------------------------------------------------------------------

def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def check_int(value: Any, minimum: int) -> str | None:
    """Return a problem description, or None when value is a valid int."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected an integer >= {minimum}, got {_describe(value)}"
    if value < minimum:
        return f"expected an integer >= {minimum}, got {value}"
    return None


def check_seconds(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a finite number of seconds > 0, got {_describe(value)}"
    if not (value > 0) or math.isinf(value):
        return f"expected a finite number of seconds > 0, got {value!r}"
    return None


def check_bool(value: Any) -> str | None:
    if not isinstance(value, bool):
        return f"expected true or false, got {_describe(value)}"
    return None


def check_str_list(value: Any) -> str | None:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        return f"expected a list of module names, got {_describe(value)}"
    for item in value:
        if not isinstance(item, str) or not item:
            return f"expected a list of non-empty strings, found {_describe(item)}"
    return None


def check_str(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected a string, got {_describe(value)}"
    return None


def check_style(value: Any) -> str | None:
    if value not in TREE_STYLES:
        return f"expected one of {', '.join(map(repr, TREE_STYLES))}, got {value!r}"
    return None


_CHECKS = {
    "ignore_modules": check_str_list,
    "include_modules": check_str_list,
    "max_depth": lambda v: check_int(v, 1),
    "max_calls": lambda v: check_int(v, 1),
    "max_repr": lambda v: check_int(v, 1),
    "max_time": check_seconds,
    "cache": check_bool,
    "cache_dir": check_str,
    "auto_save": check_bool,
    "show_args": check_bool,
    "show_return": check_bool,
    "tree_style": check_style,
    "color": check_bool,
    "default_label": check_str,
}


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


_TEST_FILE = {"path": check_str, "functions": check_str_list}
_TEST_INPUT = {
    "function": check_str,
    "args": lambda v: None if isinstance(v, list) else f"expected an array, got {_describe(v)}",
    "kwargs": lambda v: None if isinstance(v, dict) else f"expected a table, got {_describe(v)}",
}
_TEST_CUSTOM = {"enabled": check_bool, "script": check_str}


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
    """Check one config table. Returns (valid settings, problems).

    prefix is prepended to key names in problems ("tool.tracepatch." for
    pyproject.toml) so a message names the key as it is written in the file.
    """
    settings: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in data.items():
        if key == "test":
            _check_test(value, prefix, problems)
            continue
        check = _CHECKS.get(key)
        if check is None:
            reason = _UNSUPPORTED.get(key, "unknown key")
            problems.append((prefix + key, reason))
            continue
        problem = check(value)
        if problem:
            problems.append((prefix + key, problem))
            continue
        if key in ("ignore_modules", "include_modules"):
            value = tuple(value)
        elif key == "max_time":
            value = float(value)
        settings[key] = value
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
    while True:
        candidate = os.path.join(directory, "tracepatch.toml")
        if _regular_file(candidate) is not None:
            return Path(candidate), None
        candidate = os.path.join(directory, "pyproject.toml")
        st = _regular_file(candidate)
        if st is not None and _has_tool_section(candidate, st):
            return Path(candidate), "tool.tracepatch"
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


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


def _warn_file(cfg: ConfigFile, stacklevel: int) -> None:
    try:
        st = cfg.path.stat()
        key = (str(cfg.path), st.st_mtime_ns)
    except OSError:
        key = (str(cfg.path), None)
    if key in _warned_files:
        return
    _warned_files.add(key)
    if cfg.unreadable:
        msg = f"tracepatch: ignoring config file {cfg.path}: {cfg.unreadable}"
    else:
        details = "; ".join(f"{k}: {m}" for k, m in cfg.problems)
        msg = (f"tracepatch: config file {cfg.path} has invalid settings, "
               f"which are ignored (defaults apply to them): {details}")
    warnings.warn(msg, TracepatchWarning, stacklevel=stacklevel)


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

def env_enabled(stacklevel: int = 2) -> bool:
    """False when TRACEPATCH_ENABLED is 0/false/no/off (any case).

    stacklevel counts frames from this function (1) up to the user's code,
    for the warning about an unrecognised value."""
    raw = os.environ.get("TRACEPATCH_ENABLED")
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


def _env_overrides(base: dict, stacklevel: int) -> dict:
    """Settings from TRACEPATCH_* variables; bad values warn and are skipped.

    stacklevel counts frames from this function (1) up to the user's code."""
    out: dict[str, Any] = {}
    env = os.environ
    for var, (key, minimum) in _ENV_INT.items():
        raw = env.get(var)
        if raw is None or not raw.strip():
            continue
        try:
            value = int(raw.strip())
        except ValueError:
            value = None
        if value is None or value < minimum:
            warnings.warn(
                f"tracepatch: {var}={raw!r} is not an integer >= {minimum}; "
                f"using {key}={base[key]!r} instead",
                TracepatchWarning, stacklevel=stacklevel)
            continue
        out[key] = value
    raw = env.get("TRACEPATCH_MAX_TIME")
    if raw is not None and raw.strip():
        try:
            value = float(raw.strip())
        except ValueError:
            value = float("nan")
        if not (value > 0) or math.isinf(value):
            warnings.warn(
                f"tracepatch: TRACEPATCH_MAX_TIME={raw!r} is not a number of seconds > 0; "
                f"using max_time={base['max_time']!r} instead",
                TracepatchWarning, stacklevel=stacklevel)
        else:
            out["max_time"] = value
    raw = env.get("TRACEPATCH_LABEL")
    if raw:
        out["default_label"] = raw
    raw = env.get("TRACEPATCH_OUTPUT_DIR")
    if raw:
        out["cache_dir"] = raw
    raw = env.get("TRACEPATCH_NO_CACHE")
    if raw is not None and raw.strip():
        flag = raw.strip().lower()
        if flag in _TRUE:
            out["cache"] = False
        elif flag not in _FALSE:
            warnings.warn(
                f"tracepatch: TRACEPATCH_NO_CACHE={raw!r} is not 1/true/yes/on or "
                f"0/false/no/off; using cache={base['cache']!r} instead",
                TracepatchWarning, stacklevel=stacklevel)
    raw = env.get("TRACEPATCH_COLOR")
    if raw is not None and raw.strip():
        flag = raw.strip().lower()
        if flag in _TRUE or flag in _FALSE:
            out["color"] = flag in _TRUE
        else:
            warnings.warn(
                f"tracepatch: TRACEPATCH_COLOR={raw!r} is not 1/true/yes/on or "
                f"0/false/no/off; using color={base['color']!r} instead",
                TracepatchWarning, stacklevel=stacklevel)
    return out


# ---------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------

def resolve(explicit: dict, stacklevel: int = 2, start: str | None = None) -> tuple[dict, dict]:
    """Effective settings for one trace.

    explicit holds only the keyword arguments the caller really passed.
    Returns (settings, sources) where sources maps each key to "keyword",
    "env", "config" or "default". Warns (never raises) about a bad config
    file or environment variable; stacklevel counts frames from this function
    (1) up to the user's code, so the warning points there.
    """
    settings = dict(DEFAULTS)
    sources = dict.fromkeys(DEFAULTS, "default")
    cfg = load_config_file(start)
    if cfg is not None:
        if not cfg.ok:
            _warn_file(cfg, stacklevel + 1)
        for key, value in cfg.settings.items():
            settings[key] = value
            sources[key] = "config"
    for key, value in _env_overrides(settings, stacklevel + 1).items():
        settings[key] = value
        sources[key] = "env"
    for key, value in explicit.items():
        settings[key] = value
        sources[key] = "keyword"
    return settings, sources


STARTER_CONFIG = '''\
# tracepatch configuration (https://github.com/levinismynameirl/tracepatch keys).
# Precedence: trace(...) keywords > TRACEPATCH_* environment variables >
# this file > built-in defaults. Check it with: python -m tracepatch config --validate

# Tracing behaviour
ignore_modules = []      # module prefixes to leave out, e.g. ["logging", "urllib3"]
# include_modules = ["myapp"]  # allowlist: only trace these modules
max_depth = 30           # deepest call nesting recorded
max_calls = 10000        # stop recording after this many calls
max_repr = 120           # longest repr() kept for arguments and return values
max_time = 60.0          # stop recording after this many seconds

# Saving traces (.tracepatch/traces/ under the working directory)
cache = true
auto_save = true
# cache_dir = "/tmp/traces"

# Display
show_args = true
show_return = true
tree_style = "unicode"   # "unicode", "ascii" or "ansi"
color = false
# default_label = "my-app"
'''
