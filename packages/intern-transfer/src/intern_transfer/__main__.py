"""`python -m intern_transfer method=<method> model=<model> task=<task> [overrides]`: adapt a backbone."""

from omegaconf import DictConfig

from intern_app import AppError, describe, run_app
from intern_data.progress import set_progress

_ISSUE = {"probe": "intern-transfer", "finetune": "intern-transfer", "down_a": "Down-A"}


def main(cfg: DictConfig) -> None:
    """Adapt the backbone `cfg` composes to its task with its method."""
    method = cfg.method
    if method not in _ISSUE:
        raise AppError(f"unknown method '{method}' (choose from: {', '.join(sorted(_ISSUE))})")
    print(describe(cfg))
    if not cfg.progress:
        set_progress(False)
    print(f"method {method} from {cfg.init_from or 'random init'}, split {cfg.split}")
    raise AppError(f"method '{method}' is not implemented yet; it arrives with the {_ISSUE[method]} issue")


if __name__ == "__main__":
    run_app("transfer", main, prog="intern_transfer")
