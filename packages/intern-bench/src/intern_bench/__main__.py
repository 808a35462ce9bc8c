"""``python -m intern_bench``: the ``list`` tool, else the Hydra app ``model=<m> task=<t> protocol=<p>``."""

import sys

from omegaconf import DictConfig

from intern_data.app import AppError, describe, run_app


def main(cfg: DictConfig) -> None:
    """Evaluate the backbone `cfg` composes on its task with its protocol."""
    print(describe(cfg))
    print(f"task {cfg.task.name} ({cfg.task.type}, {cfg.task.metric}), split {cfg.split}")
    raise AppError(f"protocol '{cfg.protocol.name}' is not implemented yet; it arrives with the GV-B issue")


if __name__ == "__main__":
    from intern_bench.cli import SUBCOMMANDS
    from intern_bench.cli import main as cli_main

    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        sys.exit(cli_main(sys.argv[1:]))
    run_app("bench", main, prog="intern_bench")
