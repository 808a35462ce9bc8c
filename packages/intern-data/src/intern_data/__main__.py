"""``python -m intern_data``: the ``shard``, ``split`` and ``labels`` verbs, else the Hydra app
``data=<dataset>`` that makes a configured dataset's shards."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from intern_data.cli import VERB_HELP
from intern_data.cli import main as run_verb

if TYPE_CHECKING:
    from omegaconf import DictConfig


def main(cfg: DictConfig) -> None:
    """Make (or reuse) the shards of a configured dataset (data=<dataset>) and print what they hold."""
    from omegaconf import OmegaConf

    from intern_app import AppError, describe
    from intern_data.progress import set_progress
    from intern_data.readers import ReaderError
    from intern_data.schema import SampleError
    from intern_data.shards import ShardWriteError, load_index
    from intern_data.sources import DataConfigError, prepare_shards

    print(describe(cfg))
    if not cfg.progress:
        set_progress(False)
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
    try:
        from intern_app import Verbs, run_app
    except ModuleNotFoundError:  # intern-data installed without its `app` extra: the verbs still work
        if sys.argv[1:2] and sys.argv[1] in VERB_HELP:
            sys.exit(run_verb(sys.argv[1:]))
        print("intern_data: data=<dataset> needs the app: pip install 'intern-data[app]'", file=sys.stderr)
        sys.exit(2)
    run_app("data", main, prog="intern_data", verbs=Verbs(run_verb, VERB_HELP))
