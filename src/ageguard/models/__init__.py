"""Model assets: the pinned registry sources, their converters, and the SHA-256-checked store."""

from ageguard.models.registry import ASSETS, ModelAsset, Source, get_asset
from ageguard.models.store import ModelStoreError, ensure, install_all, is_installed, model_path, session

__all__ = [
    "ASSETS",
    "ModelAsset",
    "ModelStoreError",
    "Source",
    "ensure",
    "get_asset",
    "install_all",
    "is_installed",
    "model_path",
    "session",
]
