"""The pureai gateway: an OpenAI-compatible HTTP API over the router and litellm.

    from service import Settings, create_app
    app = create_app(Settings(database_url="sqlite:///pureai.db"))

Or from a shell: `pureai serve`. Importing this package loads nothing heavy: the router, the
catalogue, the store and litellm are loaded when the app starts (its lifespan).
"""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
