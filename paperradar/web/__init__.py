"""The web app and JSON API (FastAPI + Jinja2): thin shells over the core API."""

from .app import create_app

__all__ = ["create_app"]
