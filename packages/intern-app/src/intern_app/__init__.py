"""The Hydra app layer shared by the INTERN apps (``python -m intern_pretrain``, ``intern_bench``, ...)."""

from intern_app.app import AppError, Verbs, describe, run_app
from intern_app.conf import CONF_DIR_ENV, config_dir
from intern_app.overrides import check_overrides

__version__ = "0.1.0"

__all__ = ["CONF_DIR_ENV", "AppError", "Verbs", "check_overrides", "config_dir", "describe", "run_app"]
