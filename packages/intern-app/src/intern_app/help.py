"""``--help`` of an app: its verbs and the config groups its primary config reads, with their options."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra


def groups_read(conf: Path, config_name: str) -> dict[str, str | None]:
    """``{group: default option}`` of every top-level config group ``conf/<config_name>.yaml`` composes."""
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose(config_name, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    choices = cfg.hydra.runtime.choices
    return {group: choices[group] for group in reversed(list(choices)) if "/" not in group}


def app_help(conf: Path, config_name: str, prog: str, summary: str, verbs: Mapping[str, str]) -> str:
    """The text ``python -m <prog> --help`` prints."""
    lines = [summary, "", f"usage: python -m {prog} [group=option ...] [key=value ...] [--cfg job] [-m]"]
    if verbs:
        lines[-1] += f"\n       python -m {prog} {{{','.join(verbs)}}} ..."
        width = max(map(len, verbs))
        lines += ["", "verbs (each takes --help):"]
        lines += [f"  {name.ljust(width)}  {text}" for name, text in verbs.items()]
    lines += ["", f"config groups ({conf / config_name}.yaml; group=option picks one):"]
    for group, default in groups_read(conf, config_name).items():
        options = ", ".join(sorted(path.stem for path in (conf / group).glob("*.yaml")))
        lines.append(f"  {group}: {options} (default: {default or 'none'})")
    lines += [
        "",
        "--cfg job prints the composed config; -m runs one job per value of a sweep;",
        "--hydra-help lists Hydra's own flags. A key not in the config is added with +key=value.",
    ]
    return "\n".join(lines)
