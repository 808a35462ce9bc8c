"""The command-line flags Hydra's apps take (as documented in ``--hydra-help``), parsed without Hydra's
private parser, to tell a plain run from one Hydra handles itself (``--cfg``, ``-m``, ``--help``...)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

_VALUE_FLAGS = {
    ("--cfg", "-c"): "cfg",
    ("--package", "-p"): "package",
    ("--config-path", "-cp"): "config_path",
    ("--config-name", "-cn"): "config_name",
    ("--config-dir", "-cd"): "config_dir",
    ("--experimental-rerun",): "experimental_rerun",
}
_SWITCHES = {
    ("--help", "-h"): "help",
    ("--hydra-help",): "hydra_help",
    ("--version",): "version",
    ("--resolve",): "resolve",
    ("--run", "-r"): "run",
    ("--multirun", "-m"): "multirun",
    ("--shell-completion", "-sc"): "shell_completion",
}


def parse_flags(argv: Sequence[str]) -> argparse.Namespace:
    """Hydra's flags and the overrides in ``argv`` (without the program name)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("overrides", nargs="*")
    for flags, dest in _VALUE_FLAGS.items():
        parser.add_argument(*flags, dest=dest)
    for flags, dest in _SWITCHES.items():
        parser.add_argument(*flags, dest=dest, action="store_true")
    parser.add_argument("--info", "-i", nargs="?", const="all")
    args, _ = parser.parse_known_args(list(argv))
    return args


def composes_one_config(args: argparse.Namespace) -> bool:
    """Whether the command runs one job on the app's own config, so its overrides can be checked first."""
    handled_by_hydra = (
        args.multirun,
        args.help,
        args.hydra_help,
        args.version,
        args.info is not None,
        args.shell_completion,
        args.experimental_rerun,
        args.config_path,
        args.config_dir,
    )
    return not any(handled_by_hydra)
