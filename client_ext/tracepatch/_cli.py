"""Command line: ``python -m tracepatch {run,config,init,view,explain}``.

(``tph run``, ``tph init``, ``tph config``, ``tph view`` and ``tph explain``
hand over to these.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from typing import Any, Callable

from . import __version__, _config, _settings

_DESCRIPTION = """\
tracepatch records every Python call made by a program (or a block of it)
and shows them as a call tree: arguments, return values, exceptions, timing.

In code:   from tracepatch import trace
           with trace(label="debug") as t: handle_request(42)
           print(t.tree())
"""

_RUN_EPILOG = """\
examples:
  python -m tracepatch run app.py --port 8000      trace app.py, tree on stderr
  python -m tracepatch run -o tree.txt -m mypkg.tool  trace a module, tree to a file
  python -m tracepatch run --filter 'myapp.*' --depth 4 app.py

Options go before the script (or -m MODULE); everything after it is passed
to the program. The program's exit status, stdin and stdout are untouched.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _setting_type(name: str) -> Callable[[str], Any]:
    """An argparse type that reads an option as the settings schema reads
    the environment: the same types and ranges as trace(name=...)."""
    setting = _settings.BY_NAME[name]

    def parse(text: str) -> Any:
        try:
            return setting.parse(text)
        except _settings.Invalid as exc:
            raise argparse.ArgumentTypeError(f"expected {exc.expected}, got {text!r}") from None
    parse.__name__ = name  # argparse names the type in some messages
    return parse


def _option_help(name: str) -> str:
    setting = _settings.BY_NAME[name]
    return f"{setting.doc} ({setting.expected()}; default {setting.default!r})"


def _add_run(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "run", help="run a script or module under a trace and print its call tree",
        description="Run a Python script (or -m module) with every call recorded; "
                    "print the call tree to stderr (or -o FILE) when it ends.",
        usage="python -m tracepatch run [options] (SCRIPT | -m MODULE) [args ...]",
        epilog=_RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", dest="module", metavar="MODULE",
                   help="run library module MODULE as a script (like python -m)")
    p.add_argument("script", nargs="?", metavar="SCRIPT", help="the Python file to run")
    out = p.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="FILE",
                     help="write the tree to FILE instead of stderr")
    out.add_argument("--json", metavar="FILE", dest="json_path",
                     help="also write the trace as JSON to FILE")
    out.add_argument("--style", choices=_settings.BY_NAME["tree_style"].choices,
                     help="tree connectors (default: the config's tree_style, else unicode)")
    color = out.add_mutually_exclusive_group()
    color.add_argument("--color", dest="color", action="store_const", const=True,
                       help="colour by duration (default: when stderr is a terminal)")
    color.add_argument("--no-color", dest="color", action="store_const", const=False,
                       help="never colour")
    out.add_argument("--no-args", action="store_true", help="hide arguments")
    out.add_argument("--no-returns", action="store_true", help="hide return values")
    out.add_argument("--self-time", action="store_true", help="show each call's own time")
    out.add_argument("--source", action="store_true", help="show file:line of each function")
    out.add_argument("--depth", type=_positive_int, metavar="N", help="show N levels only")
    out.add_argument("--filter", action="append", metavar="PATTERN", default=[],
                     help="keep calls matching glob PATTERN on module.function; "
                          "'!PATTERN' hides them (repeatable)")
    out.add_argument("--no-fold", action="store_true",
                     help="do not fold repeated sibling calls into one [xN] line")
    out.add_argument("--no-header", action="store_true", help="omit the statistics header")
    rec = p.add_argument_group(
        "recording", "These win over TRACEPATCH_* variables and the config file, which "
        "apply otherwise.")
    rec.add_argument("--label", help="trace label (default: the script or module name)")
    rec.add_argument("--max-calls", type=_setting_type("max_calls"), metavar="N",
                     help=_option_help("max_calls"))
    rec.add_argument("--max-depth", type=_setting_type("max_depth"), metavar="N",
                     help=_option_help("max_depth"))
    rec.add_argument("--max-time", type=_setting_type("max_time"), metavar="SECONDS",
                     help=_option_help("max_time"))
    rec.add_argument("--max-repr", type=_setting_type("max_repr"), metavar="N",
                     help=_option_help("max_repr"))
    rec.add_argument("--ignore-module", action="append", metavar="PREFIX", dest="ignore_modules",
                     help="leave out modules with this prefix (repeatable)")
    rec.add_argument("--include-module", action="append", metavar="PREFIX",
                     dest="include_modules", help="record only these modules (repeatable)")
    rec.add_argument("--threads", action="store_true", help="also record threads it starts")
    rec.add_argument("--trace-imports", action="store_true",
                     help="also record the import machinery (importlib._bootstrap*, "
                          "zipimport), which is left out by default")
    rec.add_argument("--no-cache", action="store_true",
                     help="do not save the trace under .tracepatch/traces/")
    return p


def _split_run_args(parser: argparse.ArgumentParser, argv: list) -> tuple[list, list]:
    """Split ``run`` arguments into (ours, the program's).

    Ours end at the script name, or right after ``-m MODULE``; everything
    after belongs to the program, even things that look like our options.
    """
    actions = parser._option_string_actions  # argparse's option table
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[:i] + argv[i + 1:i + 2], argv[i + 2:]
        if arg == "-m":
            return argv[:i + 2], argv[i + 2:]
        if arg.startswith("-m") and not arg.startswith("--"):
            return argv[:i + 1], argv[i + 1:]
        if not arg.startswith("-") or arg == "-":
            return argv[:i + 1], argv[i + 1:]
        name = arg.split("=", 1)[0]
        action = actions.get(name)
        takes_value = action is not None and action.nargs != 0
        i += 2 if (takes_value and "=" not in arg) else 1
    return argv, []


def _cmd_run(parser: argparse.ArgumentParser, ours: list, rest: list) -> int:
    args = parser.parse_args(ours)
    if args.module is None and args.script is None:
        if not ours:
            # tracepatch 1.0.0: `tph run` alone runs the config's [test] setup.
            from ._testrun import run_test_setup
            return run_test_setup()
        parser.error("give a SCRIPT to run, or -m MODULE")
    if args.module is not None and args.script is not None:
        parser.error("give either a SCRIPT or -m MODULE, not both")
    from ._runner import run_program
    target = args.module or args.script
    label = args.label
    if label is None:
        label = args.module or Path(args.script).stem
    trace_options = {"label": label}
    for key in ("max_calls", "max_depth", "max_time", "max_repr",
                "ignore_modules", "include_modules"):
        value = getattr(args, key)
        if value is not None:
            trace_options[key] = value
    if args.threads:
        trace_options["threads"] = True
    if args.no_cache:
        trace_options["cache"] = False
    tree_options = {
        "style": args.style, "color": args.color, "args": not args.no_args,
        "returns": not args.no_returns, "self_time": args.self_time,
        "source": args.source, "depth": args.depth, "filter": args.filter,
        "fold": not args.no_fold, "header": not args.no_header,
    }
    return run_program(target, args.module is not None, rest, trace_options,
                       tree_options, args.output, args.json_path, args.trace_imports)


def _cmd_config(args) -> int:
    if args.file is not None:
        path = Path(args.file)
        if not path.is_file():
            print(f"tracepatch config: no such file: {path}", file=sys.stderr)
            return 2
        section = "tool.tracepatch" if path.name == "pyproject.toml" else None
        cfg = _config.read_config_file(path.resolve(), section)
    else:
        cfg = _config.load_config_file()
    if args.validate:
        return _validate(cfg)
    return _show(cfg, args.json)


def _validate(cfg: _config.ConfigFile | None) -> int:
    """Check the config file and the TRACEPATCH_* variables against the
    schema: 0 with "OK: ..." on stdout, else 1 with one line per problem."""
    _, env_problems = _config.env_settings()
    bad = [f"environment: {_config.env_problem_text(var, exc)}" for var, _, exc in env_problems]
    if cfg is None:
        where = f"no config file found (searched upward from {os.getcwd()}); defaults apply"
    elif cfg.unreadable:
        bad.insert(0, f"{cfg.path}: {cfg.unreadable}")
        where = str(cfg.path)
    else:
        bad[:0] = [f"{cfg.path}: {key}: {problem}" for key, problem in cfg.problems]
        where = str(cfg.path)
    if not bad:
        print(f"OK: {where}")
        return 0
    for line in bad:
        print(line, file=sys.stderr)
    if cfg is not None and cfg.unreadable and len(bad) == 1:
        print(f"INVALID: {cfg.path}", file=sys.stderr)
    else:
        what = str(cfg.path) if cfg is not None else "environment"
        print(f"INVALID: {what} ({len(bad)} problem{'s' if len(bad) != 1 else ''})",
              file=sys.stderr)
    return 1


def _show(cfg, as_json: bool) -> int:
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings, sources = _config.resolve({}, config=cfg)
        enabled = _config.env_enabled()
    if as_json:
        data = {
            "file": str(cfg.path) if cfg else None,
            "enabled": enabled,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
            "sources": sources,
            "problems": ([{"key": k, "problem": m} for k, m in cfg.problems] if cfg else []),
            "warnings": [str(w.message) for w in caught],
        }
        print(json.dumps(data, indent=2))
        return 0
    if cfg is None:
        print(f"Config file: none (searched upward from {os.getcwd()})")
    else:
        print(f"Config file: {cfg.path}" + (f" [{cfg.section}]" if cfg.section else ""))
    print(f"Tracing:     {'enabled' if enabled else 'disabled by TRACEPATCH_ENABLED'}")
    print()
    width = max(len(k) for k in settings)
    for key in sorted(settings):
        value = settings[key]
        if isinstance(value, tuple):
            value = list(value)
        shown = json.dumps(value) if value is not None else "(none)"
        print(f"  {key:<{width}} = {shown:<24} ({sources[key]})")
    for w in caught:
        print(f"\nwarning: {w.message}", file=sys.stderr)
    return 0


def _load_trace(target: str):
    """A trace file's JSON ("-": standard input, as tph passes a stored trace)."""
    try:
        if target == "-":
            return json.load(sys.stdin)
        with open(target, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        print(f"tph: {target}: {exc.strerror or exc}", file=sys.stderr)
    except ValueError as exc:
        print(f"tph: {target}: not a tracepatch JSON file: {exc}", file=sys.stderr)
    return None


def _escaped(value):
    """value (a trace file's JSON) with every string escaped for a terminal:
    the file's text is the traced program's, so none of it may drive the
    terminal or start a line of its own (keys are the format's)."""
    from ._tracepatch import escape
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    return value


def _cmd_view(args) -> int:
    """Metadata and summary of one trace, as tracepatch 1.0.0's `tph view`."""
    raw = _load_trace(args.target)
    if raw is None:
        return 1
    data = _escaped(raw) if isinstance(raw, dict) else {}
    rule = "=" * 70
    name = "<stdin>" if args.target == "-" else _escaped(args.target)
    lines = [rule, "TRACE METADATA", rule, f"File: {name}",
             f"Timestamp: {data.get('timestamp', 'unknown')}",
             f"Label: {data.get('label') or '(no label)'}",
             f"Trace ID: {data.get('trace_id') or '-'}",
             f"Call count: {data.get('call_count', 0)}",
             f"Was limited: {data.get('was_limited', False)}"]
    if data.get("limit_reason"):
        lines.append(f"Limit reason: {data['limit_reason']}")
    for key, title in (("hostname", "Host"), ("python_version", "Python"),
                       ("platform", "Platform"), ("working_directory", "Working directory")):
        if data.get(key):
            lines.append(f"{title}: {data[key]}")
    config = data.get("config") or {}
    if config:
        lines += ["", "Configuration:", f"  max_depth: {config.get('max_depth')}",
                  f"  max_calls: {config.get('max_calls')}",
                  f"  max_repr: {config.get('max_repr')}"]
        if config.get("ignore_modules"):
            lines.append(f"  ignore_modules: {', '.join(config['ignore_modules'])}")
    lines += ["", f"Root calls: {len(data.get('trace') or [])}"]
    if args.json:
        # json.dumps escapes control and non-ASCII characters itself
        lines += ["", rule, "RAW JSON", rule, json.dumps(raw, indent=2)]
    print("\n".join(lines))
    return 0


def _cmd_explain(args) -> int:
    data = _load_trace(args.target)
    if data is None:
        return 1
    from ._compat import explain, nodes_from_json
    print(explain(nodes_from_json(_escaped(data)), verbose=args.verbose))
    return 0


def _cmd_init(args) -> int:
    directory = Path(args.dir) if args.dir else Path.cwd()
    path = directory / "tracepatch.toml"
    if path.exists() and not args.force:
        print(f"tracepatch init: {path} already exists; use --force to overwrite it",
              file=sys.stderr)
        return 1
    try:
        path.write_text(_config.STARTER_CONFIG, encoding="utf-8")
    except OSError as exc:
        print(f"tracepatch init: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"Wrote {path}")
    return 0


def build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser(
        prog="python -m tracepatch", description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'python -m tracepatch COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"tracepatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_parser = _add_run(sub)
    cfg = sub.add_parser(
        "config", help="show the effective configuration, or validate the config file",
        description="Show the settings every trace() starts from and where each comes "
                    "from (default, config file, environment). With --validate, check "
                    "the config file: exit 0 with 'OK: PATH' or 1 with the problems.")
    cfg.add_argument("--validate", action="store_true",
                     help="check the config file; non-zero exit status if it is invalid")
    cfg.add_argument("--file", metavar="PATH",
                     help="use this file instead of searching tracepatch.toml / pyproject.toml "
                          "upward from the working directory")
    cfg.add_argument("--json", action="store_true", help="print the settings as JSON")
    init = sub.add_parser(
        "init", help="write a starter tracepatch.toml",
        description="Write a commented tracepatch.toml with the default settings.")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("-y", "--yes", action="store_true",
                      help="accepted for tracepatch 1.0.0 (init never asks questions)")
    view = sub.add_parser("view", help="a trace file's metadata and summary",
                          description="Show a trace file's metadata (tracepatch 1.0.0's "
                                      "`tph view`); - reads standard input.")
    view.add_argument("target", metavar="FILE")
    view.add_argument("--json", action="store_true", help="add the whole trace as JSON")
    explain = sub.add_parser("explain", help="explain a trace file in sentences",
                             description="What a trace shows, by fixed rules: recursion, "
                                         "loops, repeated calls, slow calls, exceptions.")
    explain.add_argument("target", metavar="FILE")
    explain.add_argument("-v", "--verbose", action="store_true", help="add complexity hints")
    init.add_argument("--dir", metavar="DIR", help="where to write it (default: here)")
    return parser, run_parser


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, run_parser = build_parser()
    if argv and argv[0] == "run":
        ours, rest = _split_run_args(run_parser, argv[1:])
        return _cmd_run(run_parser, ours, rest)
    args = parser.parse_args(argv)
    if args.command == "config":
        return _cmd_config(args)
    if args.command == "init":
        return _cmd_init(args)
    if args.command == "view":
        return _cmd_view(args)
    if args.command == "explain":
        return _cmd_explain(args)
    parser.print_help()
    return 2
