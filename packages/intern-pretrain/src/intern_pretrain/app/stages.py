"""What a stage config asks for: its phases in order, their modules, and the hand-over each starts from.

``conf/stage/`` is the only list of stages. A stage config names its module and data builder with
``_target_`` (``module``, ``data``); a stage made of phases lists them in ``phases`` and holds each
phase's own stage config under its name (``upa`` = ``upa_g`` then ``upa_l``). Every phase but the last
runs in ``<run folder>/<phase>``, the last in the run folder itself, and each phase after the first
starts from the previous phase's export.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from intern_pretrain.core import StageConfigError

__all__ = [
    "Phase",
    "StageUnavailable",
    "check_implemented",
    "phase_parents",
    "phases",
    "plan_dir",
    "resolve_init_from",
]


class StageUnavailable(LookupError):
    """A stage whose module does not exist (yet)."""


@dataclass(frozen=True)
class Phase:
    """One stage to run: its name, its own stage config and its run folder."""

    name: str
    stage: DictConfig
    run_dir: Path


def phases(stage: DictConfig, run_dir: Path) -> list[Phase]:
    """The phases of ``stage`` in order (a stage without ``phases`` is its own single phase)."""
    names = list(stage.get("phases") or [])
    if not names:
        return [Phase(stage.name, stage, run_dir)]
    missing = [name for name in names if name not in stage]
    if missing:
        raise StageConfigError(f"stage {stage.name}: phases {missing} have no config under stage.<phase>")
    return [
        Phase(name, stage[name], run_dir if i == len(names) - 1 else run_dir / name)
        for i, name in enumerate(names)
    ]


def phase_parents(stage: DictConfig, plan: list[Phase]) -> dict[str, str | None]:
    """The phase whose export each phase starts from: the previous one, unless ``stage.parents`` names
    another earlier phase or null (the stage's ``init_from``); the first phase starts from ``init_from``.

    Raises:
        StageConfigError: ``stage.parents`` names a phase that is not earlier in ``stage.phases``.
    """
    given = dict(stage.get("parents") or {})
    names = [phase.name for phase in plan]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise StageConfigError(
            f"stage.parents names {unknown}, which are not phases of {stage.name} ({names})"
        )
    parents: dict[str, str | None] = {}
    for i, name in enumerate(names):
        parent = given.get(name, names[i - 1] if i > 0 else None)
        if parent is not None and parent not in names[:i]:
            raise StageConfigError(
                f"stage.parents.{name}={parent!r}: a phase starts from an earlier phase of {names} or null"
            )
        parents[name] = parent
    return parents


def plan_dir(plan: list[Phase], name: str) -> Path:
    """The run folder of phase ``name`` of ``plan``."""
    return next(phase.run_dir for phase in plan if phase.name == name)


def check_implemented(phase: Phase) -> None:
    """Fail with one line when the phase's module or data builder cannot be imported.

    Raises:
        StageUnavailable: the ``_target_`` of ``stage.module`` or ``stage.data`` is missing.
        StageConfigError: the stage config names no module.
    """
    for key in ("module", "data"):
        target = (phase.stage.get(key) or {}).get("_target_")
        if not target:
            raise StageConfigError(f"stage {phase.name} has no {key}._target_")
        module_name, _, attr = target.rpartition(".")
        try:
            found = hasattr(importlib.import_module(module_name), attr)
        except ModuleNotFoundError:
            found = False
        if not found:
            section = phase.stage.get("paper_section", "?")
            raise StageUnavailable(
                f"stage '{phase.name}' is not implemented yet: {target} does not exist "
                f"(paper section {section})"
            )


def resolve_init_from(
    value: Any, stage: str, model: str, root_dir: str | Path, conf_dir: Path
) -> Path | None:
    """The hand-over folder ``stage.init_from`` names: a path, or a stage's name meaning the newest run
    of that stage with the same model under ``<root>/runs``; None when the stage starts fresh.

    Raises:
        StageConfigError: the field names no hand-over folder (the message names it).
    """
    if value is None:
        return None
    if not isinstance(value, str | Path):
        raise StageConfigError(f"stage.init_from of {stage} must be one folder, got {value}")
    value = str(value)
    if (conf_dir / "stage" / f"{value}.yaml").is_file():
        runs = Path(root_dir) / "runs" / value / model
        found = sorted(p.parent for p in runs.glob("*/export/config.json"))
        if not found:
            raise StageConfigError(
                f"stage.init_from={value!r}: no {value} export under {runs}; run stage={value} first "
                f"or pass stage.init_from=<path to a {value} export folder>"
            )
        return found[-1]
    folder = Path(value).expanduser()
    if not (folder / "config.json").is_file():
        raise StageConfigError(
            f"stage.init_from={value!r} is not a hand-over folder (no config.json); "
            "pass the export/ folder of an earlier run"
        )
    return folder
