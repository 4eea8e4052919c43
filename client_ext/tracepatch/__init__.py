"""tracepatch: see exactly what your code did, every call in one readable tree.

    from tracepatch import trace

    with trace(label="debug-request") as t:
        handle_request(42)
    print(t.tree())

``trace`` also decorates functions, methods, coroutines, generators and async
generators (each call is one trace). ``start_tracing()`` / ``stop_tracing()`` /
``print_tree()`` give FlowTrace's session API (all of it: ``tracepatch.flow``);
``tracefunc(fn, *args)`` records one function's statements and values. ``python -m tracepatch run
script.py`` traces a whole program. Settings: keywords > ``TRACEPATCH_*``
environment variables > ``tracepatch.toml`` / ``[tool.tracepatch]`` > defaults.
"""

from ._version import __version__
from ._config import TracepatchWarning
from ._node import Node
from ._trace import trace
from ._compat import (ConfigError, TraceSummary, TracepatchConfig, collapse_tree,
                      fold_repeated_calls, load_config, render_summary_header, render_tree)
from .flow import CallEvent, get_trace, get_trace_data, print_tree, start_tracing, stop_tracing
from .tracefunc import tracefunc
from .frames import frame, frame_mark, frame_mark_end, frame_mark_start, frames_flush

__all__ = [
    "__version__",
    "trace",
    "Node",
    "TracepatchWarning",
    "start_tracing",
    "stop_tracing",
    "print_tree",
    "get_trace_data",
    "get_trace",
    "CallEvent",
    "tracefunc",
    "frame",
    "frame_mark",
    "frame_mark_start",
    "frame_mark_end",
    "frames_flush",
    # tracepatch 1.0.0's helpers
    "TraceSummary",
    "TracepatchConfig",
    "load_config",
    "ConfigError",
    "render_tree",
    "fold_repeated_calls",
    "render_summary_header",
    "collapse_tree",
]


def load_ipython_extension(shell):
    """``%load_ext tracepatch``: the ``%tracepatch`` / ``%%tracepatch`` magics."""
    from ._ipython import load_ipython_extension as load

    load(shell)
