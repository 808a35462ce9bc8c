"""`python -m intern_bench model=<model> task=<task> protocol=<protocol> [overrides]`: evaluate a backbone."""

from omegaconf import DictConfig

from intern_data.app import AppError, describe, run_app


def main(cfg: DictConfig) -> None:
    """Evaluate the backbone `cfg` composes on its task with its protocol."""
    print(describe(cfg))
    print(f"task {cfg.task.name} ({cfg.task.type}, {cfg.task.metric}), split {cfg.split}")
    raise AppError(f"protocol '{cfg.protocol.name}' is not implemented yet; it arrives with the GV-B issue")


if __name__ == "__main__":
    run_app("bench", main, prog="intern_bench")
