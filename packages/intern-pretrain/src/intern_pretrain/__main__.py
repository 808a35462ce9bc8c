"""``python -m intern_pretrain stage=<stage> model=<model> [overrides]``: run one upstream stage."""

from intern_app import run_app
from intern_pretrain.app.main import main

if __name__ == "__main__":
    run_app("pretrain", main, prog="intern_pretrain")
