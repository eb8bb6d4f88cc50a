"""The app for ASGI servers: `uvicorn --factory service.asgi:factory` (settings from PUREAI_*)."""

from fastapi import FastAPI

from .app import create_app
from .settings import Settings


def factory() -> FastAPI:
    return create_app(Settings())
