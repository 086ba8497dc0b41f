"""The HTTP service: the Flask app factory, admin API, dashboard and metrics.

In production: ``gunicorn 'integration.app:create_app()'``.
"""

from integration.app.factory import create_app

__all__ = ["create_app"]
