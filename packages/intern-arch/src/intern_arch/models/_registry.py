"""INTERN's model names, registered in timm's registry too."""

from collections.abc import Callable

from timm.models import register_model

_INTERN_MODELS: list[str] = []


def intern_model(fn: Callable) -> Callable:
    """Register ``fn`` with timm (so ``timm.create_model(name)`` works) and in INTERN's own list."""
    _INTERN_MODELS.append(fn.__name__)
    return register_model(fn)


def list_models() -> list[str]:
    """Names of the models intern-arch provides."""
    return sorted(_INTERN_MODELS)
