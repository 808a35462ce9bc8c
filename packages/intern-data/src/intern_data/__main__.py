"""`python -m intern_data data=<dataset> [overrides]`: write a dataset's shards."""

from omegaconf import DictConfig

from intern_data.app import AppError, describe, run_app


def main(cfg: DictConfig) -> None:
    """Write the shards of the dataset `cfg` composes."""
    print(describe(cfg))
    print(f"shards of {cfg.data.name} ({', '.join(cfg.splits)}) -> {cfg.out_dir}")
    missing = f"writing shards of '{cfg.data.name}' is not implemented yet"
    raise AppError(f"{missing}; it arrives with the embedded-world issue")


if __name__ == "__main__":
    run_app("data", main, prog="intern_data")
