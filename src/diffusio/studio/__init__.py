"""diffusio studio: a local web page and JSON HTTP API over the same Python API.

    diffusio serve --port 8000        # then open http://127.0.0.1:8000
"""

from diffusio.studio.api import Limits, create_app

__all__ = ["Limits", "create_app"]
