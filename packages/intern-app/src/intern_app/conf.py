"""Where the apps' configs live: ``$INTERN_CONF_DIR``, else ``conf/`` at the root of the checkout."""

from __future__ import annotations

import os
from pathlib import Path

CONF_DIR_ENV = "INTERN_CONF_DIR"


def config_dir() -> Path:
    """The config directory: ``$INTERN_CONF_DIR``, else ``conf/`` at the root of the repository.

    The repository is found from this file's location, which needs the editable install.

    Raises:
        FileNotFoundError: neither location is a directory.
    """
    here = Path(__file__).resolve().parents
    default = here[4] / "conf" if len(here) > 4 else None
    env = os.environ.get(CONF_DIR_ENV)
    path = Path(env).expanduser() if env else default
    if path is None or not path.is_dir():
        raise FileNotFoundError(
            f"no config directory: ${CONF_DIR_ENV} is {env!r} and the repository's conf/ "
            f"({default}) does not exist; set {CONF_DIR_ENV} to the conf/ folder of an INTERN checkout"
        )
    return path.resolve()
