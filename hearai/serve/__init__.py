"""The hearing-assistance service: an HTTP API (FastAPI) around one model, run by uvicorn."""

from hearai.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
