"""Web framework integrations: each request in its own trace.

* ``tracepatch.integrations.wsgi``: ``TracepatchMiddleware`` for any WSGI app
* ``tracepatch.integrations.flask``: ``init_tracepatch(app, ...)``
* ``tracepatch.integrations.django``: ``TracepatchMiddleware`` (settings.TRACEPATCH)
* ``tracepatch.integrations.fastapi``: ``TracepatchMiddleware`` for FastAPI and
  Starlette (any ASGI app)

The names and parameters are tracepatch 1.0.0's, and so is the default of
tracing every request; ``trace_header=`` / ``sample_rate=`` trace only the
requests that ask or are drawn (see ``_common``). A framework is imported
only by its own module, which raises ImportError naming the package to
install when it is missing.
"""
