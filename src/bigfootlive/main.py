"""The ASGI application for uvicorn/gunicorn: `bigfootlive.main:app`."""

from bigfootlive.app import create_app

app = create_app()
