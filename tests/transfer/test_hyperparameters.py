"""``save_plain_hyperparameters``: every ``__init__`` argument of a module and its subclasses is a
hyper-parameter except the ignored ones and those holding modules (given directly, in a mapping, list
or tuple), so ``hparams.yaml`` is plain YAML and checkpoints carry no pickled module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.core.saving import save_hparams_to_yaml
from torch import nn

from intern_transfer.runs import save_plain_hyperparameters


class _Base(L.LightningModule):
    def __init__(
        self, backbone: nn.Module, *, lr: float = 0.1, factory: Callable[..., Any] | None = None
    ) -> None:
        super().__init__()
        save_plain_hyperparameters(self, ignore=["factory"])
        self.backbone = backbone


class _Expert(_Base):
    def __init__(
        self,
        backbone: nn.Module,
        *,
        parts: Mapping[str, nn.Module],
        heads: list[nn.Module],
        names: tuple[str, ...] = ("a", "b"),
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, **kwargs)
        self.parts, self.heads = nn.ModuleDict(parts), nn.ModuleList(heads)


def test_modules_and_ignored_arguments_are_left_out(tmp_path: Path) -> None:
    module = _Expert(
        nn.Linear(2, 2), parts={"neck": nn.Linear(2, 2)}, heads=[nn.Linear(2, 1)], lr=0.5, factory=print
    )
    assert dict(module.hparams) == {"lr": 0.5, "names": ("a", "b")}
    save_hparams_to_yaml(tmp_path / "hparams.yaml", module.hparams)
    assert yaml.safe_load((tmp_path / "hparams.yaml").read_text()) == {"lr": 0.5, "names": ["a", "b"]}
