"""``tph run`` with no arguments: tracepatch 1.0.0's test setup from the
config file, run in this process.

    [[test.files]]            # call these functions of this file, each traced
    path = "app.py"
    functions = ["main", "load"]

    [[test.inputs]]           # with these arguments (default: none)
    function = "load"
    args = [42]
    kwargs = {verbose = true}

    [test.custom]             # or run a script of one's own, traced
    enabled = true
    script = "scripts/try_it.py"

1.0.0 writes a .tracepatch/trace_runner.py and runs it; this runs the same
calls directly and prints each call tree, leaving no files but the saved
traces. Exit status: 0 when every call returned, 1 when one raised or the
setup is missing.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
import traceback
from pathlib import Path

_NO_CONFIG = """\
tph run: no tracepatch configuration file found (tracepatch.toml, or [tool.tracepatch]
in pyproject.toml). Add one with a test setup, e.g.:

    [[test.files]]
    path = "mymodule.py"
    functions = ["my_function"]

    [[test.inputs]]
    function = "my_function"
    args = [42]

or trace a script: tph run script.py [ARGS]"""

_NO_FILES = """\
tph run: {path} has no [[test.files]] (nor an enabled [test.custom] script). Add:

    [[test.files]]
    path = "your_file.py"
    functions = ["function_name"]

or trace a script: tph run script.py [ARGS]"""


def _load_module(path: Path, index: int):
    # Named as 1.0.0's generated runner imports it: by its file name.
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        try:
            sys.path.remove(str(path.parent))
        except ValueError:
            pass
    return module


def run_test_setup(out=None) -> int:
    """Run the config's [test] setup; 0 when every call returned."""
    from . import _compat
    from ._trace import trace
    out = out or sys.stdout
    config, path = _compat.load_config()
    if path is None:
        print(_NO_CONFIG, file=sys.stderr)
        return 1
    test = config.test or {}
    files = test.get("files") or []
    custom = test.get("custom") or {}
    if not files and not (custom.get("enabled") and custom.get("script")):
        print(_NO_FILES.format(path=path), file=sys.stderr)
        return 1
    inputs = {i.get("function"): i for i in test.get("inputs") or [] if isinstance(i, dict)}
    base = path.parent
    failed = 0
    for index, entry in enumerate(files):
        file = (base / entry.get("path", "")).resolve()
        try:
            module = _load_module(file, index)
        except Exception:  # noqa: BLE001 - report and go on with the others
            print(f"tph run: cannot import {file}:\n{traceback.format_exc()}", file=sys.stderr)
            failed += 1
            continue
        for name in entry.get("functions") or []:
            func = getattr(module, name, None)
            if not callable(func):
                print(f"tph run: {file} has no function {name!r}", file=sys.stderr)
                failed += 1
                continue
            given = inputs.get(name, {})
            args, kwargs = list(given.get("args") or []), dict(given.get("kwargs") or {})
            with trace(**{**config.to_trace_kwargs(), "label": f"{file.stem}.{name}"}) as t:
                try:
                    func(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - the trace shows it
                    failed += 1
                    print(f"tph run: {name}() raised {type(exc).__name__}: {exc}",
                          file=sys.stderr)
            print(t.tree(), file=out)
            print(file=out)
    if custom.get("enabled") and custom.get("script"):
        script = (base / custom["script"]).resolve()
        with trace(**{**config.to_trace_kwargs(), "label": script.stem}) as t:
            try:
                runpy.run_path(str(script), run_name="__main__")
            except SystemExit as exc:
                failed += bool(exc.code)
            except Exception as exc:  # noqa: BLE001
                failed += 1
                print(f"tph run: {script.name} raised {type(exc).__name__}: {exc}",
                      file=sys.stderr)
        print(t.tree(), file=out)
    return 1 if failed else 0
