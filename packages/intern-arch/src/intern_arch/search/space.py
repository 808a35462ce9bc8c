"""GV-A's unified search space (INTERN paper, section 4.3) as data.

Per stage four decisions: the operation (convolution or transformer), the expansion ratio (2-6), a
repeat count relative to a base architecture (-2..2) and a channel multiplier relative to it
(0.5-1.5). Six stages give ``(2 * 5 * 5 * 5) ** 6 = 2.44e14`` architectures, the paper's 2.4e14.

An architecture is a tuple of :class:`StageChoice`; :meth:`SearchSpace.encode` turns it into the
token sequence the controller emits (one token per decision, stage by stage) and :meth:`decode`
back. :meth:`SearchSpace.metanet_cfg` builds the MetaNet it names: widths are rounded (transformer
widths to a multiple of the head dim, convolution widths to ``conv_divisor``) so every token sequence
is a valid network; nothing is rejected.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from timm.layers import make_divisible

from ..models.metanet import MetaNetCfg, StageCfg

__all__ = [
    "DECISIONS",
    "Architecture",
    "BaseStage",
    "SearchSpace",
    "SearchSpaceError",
    "StageChoice",
    "arch_key",
    "attention_inputs",
    "round_width",
]

DECISIONS = ("operation", "expansion", "repeat", "multiplier")
"""The decisions of one stage, in token order."""

# The paper's two operations and the MetaNet blocks that implement them (released MetaNet code).
OPERATION_BLOCKS = {"conv": "mbconv", "transformer": "mhsa"}


class SearchSpaceError(ValueError):
    """A search-space config that cannot describe networks; the message names the field."""


@dataclass(frozen=True)
class StageChoice:
    """One stage's decisions."""

    operation: str
    expansion: int
    repeat: int
    multiplier: float


Architecture = tuple[StageChoice, ...]


@dataclass(frozen=True)
class BaseStage:
    """A stage of the base architecture the relative decisions shift."""

    channels: int
    depth: int
    stride: int


def round_width(raw: float, attends: bool, head_dim: int, conv_divisor: int) -> int:
    """A width feeding attention rounds to a multiple of the head dim; any other to ``conv_divisor``
    (timm's ``make_divisible``)."""
    if attends:
        return max(head_dim, round(raw / head_dim) * head_dim)
    return make_divisible(raw, conv_divisor)


def attention_inputs(is_attention: Sequence[bool]) -> tuple[bool, list[bool]]:
    """Which widths attention reads: the stem's if stage 0 attends, a stage's if it or the next one
    does (the first block of an attention stage attends over its input width)."""
    flags = list(is_attention)
    return bool(flags[0]), [flags[i] or (i + 1 < len(flags) and flags[i + 1]) for i in range(len(flags))]


def arch_key(arch: Architecture) -> str:
    """A short readable name: ``c4+0x1.0`` per stage (operation initial, expansion, repeat, multiplier)."""
    return "-".join(f"{c.operation[0]}{c.expansion}{c.repeat:+d}x{c.multiplier:g}" for c in arch)


@dataclass(frozen=True)
class SearchSpace:
    """The choices per stage and the base architecture (paper 4.3; defaults are the paper's choices)."""

    base: tuple[BaseStage, ...]
    operations: tuple[str, ...] = ("conv", "transformer")
    expansions: tuple[int, ...] = (2, 3, 4, 5, 6)
    repeats: tuple[int, ...] = (-2, -1, 0, 1, 2)
    multipliers: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)
    head_dim: int = 32
    conv_divisor: int = 8
    min_depth: int = 1
    stem_width: int = 32
    head_width: int = 1280

    def __post_init__(self) -> None:
        self._check()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SearchSpace:
        """A space from a config mapping (``base`` as a list of {channels, depth, stride}).

        Raises:
            SearchSpaceError: an unknown or invalid field, named.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise SearchSpaceError(f"search space: unknown field(s) {unknown}; fields are {sorted(known)}")
        if not config.get("base"):
            raise SearchSpaceError("search space: field 'base' needs a list of {channels, depth, stride}")
        base = []
        for i, stage in enumerate(config["base"]):
            try:
                base.append(BaseStage(**{k: int(v) for k, v in dict(stage).items()}))
            except (TypeError, ValueError) as err:
                raise SearchSpaceError(
                    f"search space: field 'base[{i}]' needs integer channels, depth and stride ({err})"
                ) from None
        values = {
            k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v
            for k, v in config.items()
        }
        return cls(**{**values, "base": tuple(base)})

    def _check(self) -> None:
        def fail(name: str, why: str) -> None:
            raise SearchSpaceError(f"search space: field '{name}' {why}")

        for name in ("operations", "expansions", "repeats", "multipliers"):
            options = getattr(self, name)
            if not options:
                fail(name, "needs at least one choice")
            if len(set(options)) != len(options):
                fail(name, f"repeats a choice: {list(options)}")
        if bad := [op for op in self.operations if op not in OPERATION_BLOCKS]:
            fail("operations", f"has {bad}; choices are {sorted(OPERATION_BLOCKS)}")
        if any(e <= 0 for e in self.expansions):
            fail("expansions", f"must be positive, got {list(self.expansions)}")
        if any(m <= 0 for m in self.multipliers):
            fail("multipliers", f"must be positive, got {list(self.multipliers)}")
        for name in ("head_dim", "conv_divisor", "min_depth", "stem_width", "head_width"):
            if getattr(self, name) < 1:
                fail(name, f"must be at least 1, got {getattr(self, name)}")
        if len(self.base) != 6:
            fail("base", f"needs 6 stages (MetaNet's pyramid is stages 1, 2, 4, 5), got {len(self.base)}")
        for i, stage in enumerate(self.base):
            if stage.channels < 1 or stage.depth < 1 or stage.stride not in (1, 2):
                fail(f"base[{i}]", f"needs channels >= 1, depth >= 1 and stride 1 or 2, got {asdict(stage)}")

    @property
    def num_stages(self) -> int:
        return len(self.base)

    def options(self, decision: str) -> tuple:
        return {
            "operation": self.operations,
            "expansion": self.expansions,
            "repeat": self.repeats,
            "multiplier": self.multipliers,
        }[decision]

    @property
    def vocab_sizes(self) -> list[int]:
        """Number of choices of each token, in sequence order (``len == 4 * num_stages``)."""
        return [len(self.options(d)) for _ in self.base for d in DECISIONS]

    @property
    def size(self) -> int:
        """Number of architectures in the space (distinct token sequences)."""
        return math.prod(self.vocab_sizes)

    def encode(self, arch: Architecture) -> list[int]:
        """The token sequence of ``arch`` (raises ``ValueError`` for a choice outside the space)."""
        if len(arch) != self.num_stages:
            raise ValueError(f"architecture has {len(arch)} stages; the space has {self.num_stages}")
        tokens = []
        for i, choice in enumerate(arch):
            for decision in DECISIONS:
                value, options = getattr(choice, decision), self.options(decision)
                if value not in options:
                    raise ValueError(f"stage {i}: {decision} {value!r} is not one of {list(options)}")
                tokens.append(options.index(value))
        return tokens

    def decode(self, tokens: Sequence[int]) -> Architecture:
        """The architecture a token sequence names."""
        if len(tokens) != len(self.vocab_sizes):
            raise ValueError(f"{len(tokens)} tokens; the space takes {len(self.vocab_sizes)}")
        arch = []
        for i in range(self.num_stages):
            values = [
                self.options(d)[int(t)] for d, t in zip(DECISIONS, tokens[4 * i : 4 * i + 4], strict=True)
            ]
            arch.append(StageChoice(*values))
        return tuple(arch)

    def sample(self, rng: random.Random) -> Architecture:
        """One architecture drawn uniformly from the space."""
        return self.decode([rng.randrange(n) for n in self.vocab_sizes])

    def metanet_cfg(self, arch: Architecture) -> MetaNetCfg:
        """The MetaNet ``arch`` names (buildable with ``intern_arch.create_model('metanet', arch=...)``):
        base depth + repeat (at least ``min_depth``), base width x multiplier rounded by
        :func:`round_width`."""
        self.encode(arch)  # every choice is in the space
        stem_attends, attends = attention_inputs([c.operation == "transformer" for c in arch])
        stages = tuple(
            StageCfg(
                op=OPERATION_BLOCKS[choice.operation],  # type: ignore[arg-type]
                depth=max(self.min_depth, base.depth + choice.repeat),
                channels=round_width(
                    base.channels * choice.multiplier, attn, self.head_dim, self.conv_divisor
                ),
                stride=base.stride,
                expansion=float(choice.expansion),
                head_dim=self.head_dim,
            )
            for choice, base, attn in zip(arch, self.base, attends, strict=True)
        )
        return MetaNetCfg(
            stages=stages,
            stem_width=round_width(self.stem_width, stem_attends, self.head_dim, self.conv_divisor),
            head_width=self.head_width,
            source=f"GV-A search: {arch_key(arch)}",
        )
