"""Networks from one registry: ``create_model(name, n_classes=..., n_features=..., n_frames=...)``."""

from hearai.models import cnn, efficientat, sed, vgg  # noqa: F401  (the built-in networks register themselves)
from hearai.models.counting import count_macs, count_parameters
from hearai.models.registry import create_model, list_models, model_task, register_model

__all__ = ["count_macs", "count_parameters", "create_model", "list_models", "model_task", "register_model"]
