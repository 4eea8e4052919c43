"""Flask: trace each request of an application.

    from tracepatch.integrations.flask import init_tracepatch

    init_tracepatch(app, ignore_modules=["flask", "werkzeug"])

The application's WSGI callable is wrapped with
:class:`tracepatch.integrations.wsgi.TracepatchMiddleware`, so the options,
response headers and thread separation are the WSGI middleware's. The label
is ``"METHOD /route"`` with Flask's URL rule (``"GET /users/<int:uid>"``),
so every request of one route shares a label; a URL that matches no rule is
labelled with its path.
"""

from __future__ import annotations

from typing import Any, Iterable

try:
    import flask as _flask
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("tracepatch.integrations.flask requires Flask "
                      "(Debian: python3-flask; pip: flask)") from exc

from .wsgi import TracepatchMiddleware, _default_label

__all__ = ["init_tracepatch"]


def _route_label(app: "_flask.Flask"):
    def label(environ: dict) -> str:
        try:
            rule, _ = app.url_map.bind_to_environ(environ).match(return_rule=True)
        except Exception:  # noqa: BLE001 - 404/405/redirects: Flask answers them
            return _default_label(environ)
        root = environ.get("SCRIPT_NAME", "")
        return f"{environ.get('REQUEST_METHOD', 'GET')} {root}{rule.rule}"
    return label


def init_tracepatch(app: "_flask.Flask", *, ignore_modules: Iterable[str] | None = None,
                    save: bool = False, enabled: bool = True, **options: Any
                    ) -> TracepatchMiddleware:
    """Trace the requests of app. Keywords are the WSGI middleware's
    (``label_fn``, ``trace_header``, ``sample_rate``, ``capture_traceparent``)
    and trace()'s. Returns the middleware, now ``app.wsgi_app``."""
    options.setdefault("label_fn", _route_label(app))
    middleware = TracepatchMiddleware(app.wsgi_app, ignore_modules=ignore_modules,
                                      save=save, enabled=enabled, **options)
    app.wsgi_app = middleware
    return middleware
