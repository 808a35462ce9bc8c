"""``python -m intern_data``: ``labels|split|shard ...`` tools, else the Hydra app ``data=<dataset>``."""

import sys

from omegaconf import DictConfig, OmegaConf

from intern_data.app import AppError, describe, run_app
from intern_data.readers import ReaderError
from intern_data.schema import SampleError
from intern_data.shards import ShardWriteError, load_index
from intern_data.sources import DataConfigError, prepare_shards


def main(cfg: DictConfig) -> None:
    """Make (or reuse) the shards of the dataset `cfg.data` describes and print what they hold."""
    print(describe(cfg))
    data = OmegaConf.to_container(cfg.data, resolve=True)
    try:
        folder = prepare_shards(data)
    except (DataConfigError, ReaderError, ShardWriteError, SampleError) as err:
        raise AppError(str(err)) from err
    splits = load_index(folder)["splits"]
    for split in data["splits"]:
        count, shards = splits[split]["count"], len(splits[split]["shards"])
        print(f"{cfg.data.name}/{split}: {count} samples in {shards} shards")
    print(f"shards: {folder.resolve()}")


if __name__ == "__main__":
    from intern_data.cli import SUBCOMMANDS
    from intern_data.cli import main as cli_main

    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        sys.exit(cli_main(sys.argv[1:]))
    run_app("data", main, prog="intern_data")
