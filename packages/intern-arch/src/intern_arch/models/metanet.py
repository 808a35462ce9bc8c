"""MetaNet (GV-A): hybrid convolution / transformer networks from a unified search space.

INTERN paper, section 4 and Table 8. A network is six stages, each one operator (MBConv, Fused-MBConv,
global self-attention, local self-attention or cross-covariance attention) repeated ``depth`` times;
variants are data (``MetaNetCfg``), not classes. Block designs follow the released MetaNet code
(OpenGVLab's gv-benchmark, ``metanet.py``).
"""

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import torch
from timm.layers import ClassifierHead, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import Tensor, nn

from ..layers import DownsampleTransformerBlock, FusedMBConv, MBConv, TransformerBlock
from ..layers.recompute import CheckpointedSequential
from ._contract import PyramidMixin, pyramid_feature_info
from ._registry import intern_model

BlockOp = Literal["mbconv", "fused", "mhsa", "lsa", "xca"]
CONV_OPS = ("mbconv", "fused")


@dataclass(frozen=True)
class StageCfg:
    """One stage of the search space: an operator, how often it repeats, its width and stride."""

    op: BlockOp
    depth: int
    channels: int
    stride: int
    expansion: float
    head_dim: int = 32
    window_size: int = 7


@dataclass(frozen=True)
class MetaNetCfg:
    """A MetaNet variant. ``source`` names the figures the variant follows."""

    stages: tuple[StageCfg, ...]
    stem_width: int = 32
    head_width: int = 1280
    layer_scale_init: float = 1e-6
    pyramid_stages: tuple[int, ...] = (1, 2, 4, 5)
    source: str = ""
    reference: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The variant as JSON-ready data (what :func:`metanet_cfg_from_dict` reads back)."""
        data = asdict(self)
        data["stages"] = [asdict(stage) for stage in self.stages]
        data["pyramid_stages"] = list(self.pyramid_stages)
        return data


def metanet_cfg_from_dict(data: Mapping[str, Any]) -> MetaNetCfg:
    """A variant from :meth:`MetaNetCfg.as_dict`'s data (a searched architecture, a saved config).

    Raises:
        ValueError: an unknown key or operator, named with the stage it is in.
    """
    data = dict(data)
    stages = []
    for i, raw in enumerate(data.pop("stages", None) or []):
        unknown = set(raw) - set(StageCfg.__dataclass_fields__)
        if unknown:
            raise ValueError(f"MetaNet stage {i}: unknown key(s) {sorted(unknown)}")
        if raw.get("op") not in get_args(BlockOp):
            raise ValueError(f"MetaNet stage {i}: op {raw.get('op')!r} is not one of {get_args(BlockOp)}")
        stages.append(StageCfg(**raw))
    if not stages:
        raise ValueError("a MetaNet config needs a non-empty 'stages' list")
    unknown = set(data) - set(MetaNetCfg.__dataclass_fields__)
    if unknown:
        raise ValueError(f"MetaNet config: unknown key(s) {sorted(unknown)}")
    if "pyramid_stages" in data:
        data["pyramid_stages"] = tuple(data["pyramid_stages"])
    return MetaNetCfg(stages=tuple(stages), **data)


def six_stages(
    ops: tuple[BlockOp, ...],
    channels: tuple[int, ...],
    depths: tuple[int, ...],
    head_dim: int,
    expansions: tuple[float, ...] = (1, 4, 6, 3, 2, 5),
    strides: tuple[int, ...] = (1, 2, 2, 2, 1, 2),
) -> tuple[StageCfg, ...]:
    """The six-stage layout of the released code: strides 1,2,2,2,1,2, expansions 1,4,6,3,2,5."""
    return tuple(
        StageCfg(op, d, c, s, e, head_dim)
        for op, c, d, e, s in zip(ops, channels, depths, expansions, strides, strict=True)
    )


_CONV4_ATTN2: tuple[BlockOp, ...] = ("mbconv",) * 4 + ("mhsa",) * 2

# ``reference``: the figures each variant is checked against (params in millions, GMACs at ``img_size``).
metanet_cfgs: dict[str, MetaNetCfg] = {
    "mnb1": MetaNetCfg(
        stages=six_stages(
            _CONV4_ATTN2,
            (24, 48, 80, 128, 128, 256),
            (1, 2, 4, 4, 4, 8),
            head_dim=32,
            expansions=(1, 4, 6, 4, 4, 6),
        ),
        source=(
            "UniNet-B1 widths/depths (closest public relative; MN-B1 is not in released code) with "
            "expansions 1,4,6,4,4,6 chosen to reach UniNet-B1's 11.5M / 1.1 GMACs "
            "(the B4 ratios give 10.1M / 0.98G)"
        ),
        reference={"params_m": 11.5, "gmacs": 1.1, "img_size": 224},
    ),
    "mnb4": MetaNetCfg(
        stages=six_stages(_CONV4_ATTN2, (32, 64, 128, 192, 192, 384), (2, 3, 6, 6, 6, 12), head_dim=48),
        source="released gv-benchmark code; paper Table 8: 29.8M, 4.6 GMACs at 256",
        reference={"params_m": 29.8, "gmacs": 4.6, "img_size": 256},
    ),
    "mnb7": MetaNetCfg(
        stages=six_stages(_CONV4_ATTN2, (48, 96, 160, 256, 256, 512), (2, 4, 8, 8, 8, 16), head_dim=32),
        source="released gv-benchmark code; paper Table 8: 78.5M, 10.2 GMACs at 256",
        reference={"params_m": 78.5, "gmacs": 10.2, "img_size": 256},
    ),
    "mnb15": MetaNetCfg(
        stages=six_stages(
            ("fused",) * 2 + ("mbconv",) * 2 + ("xca",) * 2,
            (128, 256, 512, 768, 768, 1536),
            (4, 6, 12, 12, 12, 24),
            head_dim=64,
        ),
        stem_width=96,
        source="released gv-benchmark code: ~1.00B params, ~138 GMACs at 224",
        reference={"params_m": 1000.0, "gmacs": 138.0, "img_size": 224},
    ),
    "mnb_test": MetaNetCfg(
        stages=six_stages(
            ("fused", "mbconv", "mbconv", "mbconv", "mhsa", "xca"),
            (8, 16, 24, 32, 32, 48),
            (1, 1, 1, 1, 1, 1),
            16,
        ),
        stem_width=8,
        head_width=64,
        source="tiny test variant: every operator family on the real code path",
    ),
}


def _make_block(stage: StageCfg, in_chs: int, first: bool, drop_path: float, layer_scale: float) -> nn.Module:
    stride = stage.stride if first else 1
    if stage.op in CONV_OPS:
        block_cls = MBConv if stage.op == "mbconv" else FusedMBConv
        return block_cls(in_chs, stage.channels, stride, stage.expansion, drop_path)
    if stride != 1 or in_chs != stage.channels:
        return DownsampleTransformerBlock(
            in_chs, stage.channels, stride, stage.op, stage.head_dim, layer_scale, stage.window_size
        )
    return TransformerBlock(
        stage.channels, stage.op, stage.head_dim, stage.expansion, drop_path, layer_scale, stage.window_size
    )


class MetaNetStage(CheckpointedSequential):
    """A stage: blocks run in order, each optionally under activation checkpointing."""


class MetaNet(PyramidMixin, nn.Module):
    """MetaNet backbone with a timm-style interface and the INTERN pyramid contract."""

    def __init__(
        self,
        cfg: MetaNetCfg,
        num_classes: int = 1000,
        in_chans: int = 3,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, cfg.stem_width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(cfg.stem_width),
            nn.GELU(),
        )
        total_blocks = sum(s.depth for s in cfg.stages)
        rates = [drop_path_rate * i / max(total_blocks - 1, 1) for i in range(total_blocks)]
        stages, in_chs, reduction = [], cfg.stem_width, 2
        feature_chs, feature_reductions, feature_modules = [], [], []
        for idx, stage in enumerate(cfg.stages):
            blocks = []
            for j in range(stage.depth):
                blocks.append(_make_block(stage, in_chs, j == 0, rates.pop(0), cfg.layer_scale_init))
                in_chs = stage.channels
            stages.append(MetaNetStage(*blocks))
            reduction *= stage.stride
            if idx in cfg.pyramid_stages:
                feature_chs.append(stage.channels)
                feature_reductions.append(reduction)
                feature_modules.append(f"stages.{idx}")
        self.stages = nn.Sequential(*stages)
        self.feature_info = pyramid_feature_info(feature_chs, feature_reductions, feature_modules)
        self.pyramid_indices = cfg.pyramid_stages
        self.conv_head = nn.Sequential(
            nn.Conv2d(in_chs, cfg.head_width, 1, bias=False), nn.BatchNorm2d(cfg.head_width), nn.GELU()
        )
        self.num_features = self.head_hidden_size = cfg.head_width
        self.head = ClassifierHead(cfg.head_width, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        self.apply(_init_linear)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """XCA temperatures (1-D norms, biases and layer-scales are excluded by timm's optimizer factory)."""
        return {name for name, _ in self.named_parameters() if name.endswith("temperature")}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return {"stem": r"^stem", "blocks": r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)"}

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for stage in self.stages:
            stage.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, pool_type=global_pool)

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """Outputs of the stages named by ``indices`` (timm semantics), optionally with the final map."""
        if output_fmt != "NCHW":
            raise ValueError(f"MetaNet gives NCHW intermediates, not {output_fmt!r}")
        take, max_index = feature_take_indices(len(self.stages), indices)
        intermediates = []
        x = self.stem(x)
        last = max_index if (stop_early or intermediates_only) else len(self.stages) - 1
        for idx, stage in enumerate(self.stages[: last + 1]):
            x = stage(x)
            if idx in take:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return self.conv_head(x), intermediates

    def forward_features(self, x: Tensor) -> Tensor:
        return self.conv_head(self.stages(self.stem(x)))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _init_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _create_metanet(
    variant: str, pretrained: bool = False, cfg: MetaNetCfg | None = None, **kwargs
) -> MetaNet:
    return build_model_with_cfg(
        MetaNet,
        variant,
        pretrained,
        model_cfg=cfg or metanet_cfgs[variant],
        feature_cfg={"out_indices": (0, 1, 2, 3), "flatten_sequential": True},
        **kwargs,
    )


def _cfg(input_size: int, **kwargs) -> dict:
    """GV-B preprocessing: resize the shorter side to ``r`` and centre-crop ``r`` (crop_pct 1.0)."""
    return {
        "num_classes": 1000,
        "input_size": (3, input_size, input_size),
        "pool_size": (input_size // 32, input_size // 32),
        "crop_pct": 1.0,
        "crop_mode": "center",
        "interpolation": "bicubic",
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "first_conv": "stem.0",
        "classifier": "head.fc",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        "mnb1": _cfg(224),
        "mnb4": _cfg(256),
        "mnb7": _cfg(256),
        "mnb15": _cfg(256),
        "mnb_test": _cfg(64),
        "metanet": _cfg(224),
    }
)


@intern_model
def mnb1(pretrained: bool = False, **kwargs) -> MetaNet:
    return _create_metanet("mnb1", pretrained, **kwargs)


@intern_model
def mnb4(pretrained: bool = False, **kwargs) -> MetaNet:
    return _create_metanet("mnb4", pretrained, **kwargs)


@intern_model
def mnb7(pretrained: bool = False, **kwargs) -> MetaNet:
    return _create_metanet("mnb7", pretrained, **kwargs)


@intern_model
def mnb15(pretrained: bool = False, **kwargs) -> MetaNet:
    return _create_metanet("mnb15", pretrained, **kwargs)


@intern_model
def mnb_test(pretrained: bool = False, **kwargs) -> MetaNet:
    return _create_metanet("mnb_test", pretrained, **kwargs)


@register_model
def metanet(pretrained: bool = False, arch: Mapping[str, Any] | None = None, **kwargs) -> MetaNet:
    """Any MetaNet from its stage list (:meth:`MetaNetCfg.as_dict`): how a searched architecture is
    built, saved and loaded (its hand-over config records ``arch`` like any constructor argument)."""
    if arch is None:
        raise ValueError("model 'metanet' needs arch=<a MetaNet config dict> (MetaNetCfg.as_dict())")
    return _create_metanet("metanet", pretrained, cfg=metanet_cfg_from_dict(arch), **kwargs)


def register_metanet(name: str, cfg: MetaNetCfg, input_size: int = 224) -> Callable[..., MetaNet]:
    """Register ``cfg`` as the named variant ``name`` (in timm's registry and ``list_models()``)."""
    if name in metanet_cfgs:
        raise ValueError(f"MetaNet variant {name!r} is already registered")
    metanet_cfgs[name] = cfg

    def entry(pretrained: bool = False, **kwargs) -> MetaNet:
        return _create_metanet(name, pretrained, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__module__ = __name__
    default_cfgs[name] = generate_default_cfgs({name: _cfg(input_size)})[name]
    return intern_model(entry)
