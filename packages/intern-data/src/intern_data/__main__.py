"""``python -m intern_data``: ``labels|split|shard ...`` tools, else the Hydra app ``data=<dataset>``."""

import sys

from omegaconf import DictConfig

from intern_data.app import AppError, describe, run_app


def main(cfg: DictConfig) -> None:
    """Write the shards of the dataset `cfg` composes."""
    print(describe(cfg))
    print(f"shards of {cfg.data.name} ({', '.join(cfg.splits)}) -> {cfg.out_dir}")
    missing = f"writing shards of '{cfg.data.name}' is not implemented yet"
    raise AppError(f"{missing}; it arrives with the embedded-world issue")


if __name__ == "__main__":
    from intern_data.cli import SUBCOMMANDS
    from intern_data.cli import main as cli_main

    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        sys.exit(cli_main(sys.argv[1:]))
    run_app("data", main, prog="intern_data")
