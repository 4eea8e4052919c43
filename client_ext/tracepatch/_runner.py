"""``python -m tracepatch run``: trace a whole script or module run.

The program runs as Python would run it: its ``__main__`` module has the
attributes ``python script.py`` / ``python -m mod`` give it (``__builtins__``
the builtins module, the loader and spec the interpreter sets), sys.argv and
sys.path[0] are Python's, it has the same recursion room, its stdin and
stdout are left alone and its exit status is kept (Ctrl-C ends it by SIGINT,
as Python does). Its tracebacks show none of tracepatch's or runpy's
frames. The call tree goes to stderr after any traceback, or to a file with
``-o``; a forked child that runs to the end prints no second tree.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import os
import runpy
import sys
import traceback
import types

from ._cache import open_private
from ._trace import trace


# The interpreter's import machinery: every import in the program would add
# dozens of these calls. The imported modules' own code is still recorded.
IMPORT_MACHINERY = ("importlib._bootstrap", "importlib._bootstrap_external", "zipimport")


class _RunError(Exception):
    """The program could not be started (missing file, no such module...)."""


def _script_main(path: str):
    """Code object and fresh __main__ module for ``python path``."""
    try:
        with open(path, "rb") as fh:
            source = fh.read()
    except OSError as exc:
        raise _RunError(f"can't open file {os.path.abspath(path)!r}: "
                        f"[Errno {exc.errno}] {exc.strerror}") from None
    abspath = os.path.abspath(path)
    code = compile(source, abspath, "exec", dont_inherit=True)
    module = _fresh_main()
    module.__file__ = abspath
    module.__cached__ = None
    # What the interpreter gives a script: a source loader named __main__, no spec.
    module.__loader__ = importlib.machinery.SourceFileLoader("__main__", abspath)
    module.__spec__ = None
    module.__package__ = None
    sys.argv[0] = path
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    return code, module


def _module_main(name: str):
    """Code object and fresh __main__ module for ``python -m name``."""
    # runpy's own lookup, as ``python -m`` uses it: packages run their
    # __main__, and every error message is the interpreter's.
    mod_name, spec, code = runpy._get_module_details(name, _RunError)
    module = _fresh_main()
    module.__file__ = spec.origin
    module.__cached__ = spec.cached
    module.__loader__ = spec.loader
    module.__spec__ = spec
    module.__package__ = spec.parent
    sys.argv[0] = spec.origin or name
    return code, module


def _fresh_main() -> types.ModuleType:
    """A __main__ module as the interpreter creates it at startup."""
    module = types.ModuleType("__main__")
    module.__annotations__ = {}
    # The module, not this module's __builtins__ (a dict outside __main__).
    module.__builtins__ = builtins
    return module


def _stack_depth() -> int:
    """Python frames on the stack, the caller's included."""
    depth, frame = 0, sys._getframe(1)
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


# What a plain run spends of the recursion limit below the program's code,
# counted like _stack_depth() counts here: for ``python -m``, runpy's
# _run_module_as_main and _run_code. On 3.10/3.11 C calls count against the
# limit too: this module's exec() costs one more level than a plain script's
# start, and runpy's exec() one level a plain -m run has as well. (Measured
# equal to plain runs on 3.10-3.13; tests/py/test_runner.py checks it.)
_PLAIN_DEPTH = {False: 0, True: 2} if sys.version_info >= (3, 12) else {False: -2, True: 1}


def _exit_status(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if code >= 0 else code % 256
    # sys.exit("message"): Python prints the message and exits with 1.
    sys.stderr.write(f"{code}\n")
    return 1


def _program_tb(exc: BaseException):
    """The exception's traceback from the program's first frame on."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb


def _print_exception(exc: BaseException) -> None:
    """The traceback Python would print, without tracepatch's own frames,
    through sys.excepthook as Python prints it (the program may set its own).
    The exception's own traceback is cut too: the default hook prints that
    one, not its argument."""
    tb = _program_tb(exc)
    sys.excepthook(type(exc), exc.with_traceback(tb), tb)


def _report_after_interrupt(exc: KeyboardInterrupt, report) -> None:
    """Let the KeyboardInterrupt end the process as Python ends it (the
    interpreter exits by SIGINT once it has finalized), but print the
    program's own traceback, then the tree, instead of a traceback through
    runpy and tracepatch."""
    tb = _program_tb(exc)
    previous = sys.excepthook

    def hook(exc_type, value, _tb):
        sys.excepthook = previous
        if value is exc:
            previous(exc_type, value.with_traceback(tb), tb)
            report()
        else:
            previous(exc_type, value, _tb)

    sys.excepthook = hook


def run_program(target: str, is_module: bool, args: list, trace_options: dict,
                tree_options: dict, output: str | None, json_path: str | None,
                trace_imports: bool = False) -> int:
    """Run the program under a trace; returns the exit status to use."""
    sys.argv[:] = [target, *args]
    try:
        code, module = _module_main(target) if is_module else _script_main(target)
    except _RunError as exc:
        sys.stderr.write(f"tracepatch run: {exc}\n")
        return 2 if not is_module else 1
    except SyntaxError as exc:
        traceback.print_exception(type(exc), exc, None)
        return 1

    sys.modules["__main__"] = module
    t = trace(**trace_options)
    if not trace_imports:
        t._extra_ignore = IMPORT_MACHINERY
    status, failure, interrupted = 0, None, None
    pid = os.getpid()
    # The frames below the program (runpy, the CLI, this function, exec)
    # would cost it recursion room a plain run has: give them back.
    extra = _stack_depth() - _PLAIN_DEPTH[is_module]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + extra)
    t._begin(stacklevel=2)
    try:
        exec(code, module.__dict__)
    except SystemExit as exc:
        failure = exc
    except KeyboardInterrupt as exc:
        interrupted = exc
    except BaseException as exc:  # noqa: BLE001 - report like the interpreter does
        failure = exc
    finally:
        t._end()
        # The program may have set its own limit: keep it then.
        if sys.getrecursionlimit() == limit + extra:
            sys.setrecursionlimit(limit)
    child = os.getpid() != pid
    if isinstance(failure, SystemExit):
        status = _exit_status(failure)
    elif failure is not None:
        _print_exception(failure)
        status = 1
    failure = None  # drop the traceback's frames before the tree is rendered

    if child:
        # A forked child that ran to the end: Python would just exit; the
        # parent prints the tree of the run (the child's trace is not sent).
        if interrupted is not None:
            raise interrupted
        return status
    if interrupted is not None:
        _report_after_interrupt(
            interrupted, lambda: _report(t, tree_options, output, json_path))
        raise interrupted
    _report(t, tree_options, output, json_path)
    return status


def _report(t: trace, tree_options: dict, output: str | None, json_path: str | None) -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        pass
    options = dict(tree_options)
    if options.get("color") is None:
        stream = sys.stderr if output is None else None
        options["color"] = bool(stream is not None and stream.isatty()
                                and not os.environ.get("NO_COLOR"))
    text = t.tree(**options)
    if output is None:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()
    else:
        try:
            with open_private(output) as fh:
                fh.write(text if text.endswith("\n") else text + "\n")
        except OSError as exc:
            sys.stderr.write(f"tracepatch run: cannot write the tree to {output}: "
                             f"{exc.strerror or exc}\n")
    if json_path is not None:
        try:
            t.to_json(json_path)
        except OSError as exc:
            sys.stderr.write(f"tracepatch run: cannot write JSON to {json_path}: "
                             f"{exc.strerror or exc}\n")
