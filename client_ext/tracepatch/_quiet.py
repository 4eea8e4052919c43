"""Run tracepatch's own work where no trace can see it.

A session records the thread and contextvars context it was started in. The
extension hides tracepatch's own frames, but not the standard library code
they call: reading the config file (pathlib, tomllib), saving a trace (json,
os), functools.wraps when decorating... Inside another active trace (a
decorated function called in a ``with trace()`` block, a program run by
``python -m tracepatch run``), those calls would show up in the outer tree.
Running them in a brand-new, empty context keeps every session out: a new
contextvars.Context has no active session in it.
"""

from __future__ import annotations

from contextvars import Context


def quiet(fn, /, *args, **kwargs):
    """fn(*args, **kwargs), invisible to every trace."""
    # A fresh Context each time: one Context cannot be entered twice at once
    # (threads, or a quiet call nested in another).
    return Context().run(fn, *args, **kwargs)
