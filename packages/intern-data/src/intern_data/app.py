"""The Hydra layer shared by the INTERN apps (`python -m intern_pretrain`, ...).

Finds the top-level `conf/` from any working directory, checks command-line overrides before Hydra
runs (one line and exit code 2 for a misspelt option or key), and reports a task's `AppError` the
same way. The `intern_data` library never imports this module, so it stays usable without Hydra.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

CONF_DIR_ENV = "INTERN_CONF_DIR"
_EXIT_USAGE = 2


class AppError(Exception):
    """A failure the user can act on; the app prints its message as one line and exits with 2."""


def config_dir() -> Path:
    """Return the config directory: `$INTERN_CONF_DIR`, else `conf/` at the root of the repository.

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


def check_overrides(conf: Path, config_name: str, overrides: list[str]) -> str | None:
    """Compose `config_name` with `overrides` and return why that fails in one line, or None."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
        single = [o.input_line for o in parsed if not o.is_sweep_override()]
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose(config_name, overrides=single, return_hydra_config=True)
        if sweeps and cfg.hydra.mode != RunMode.MULTIRUN:
            return f"'{sweeps[0]}' sweeps over values; add -m to run one job per value"
    except MissingConfigException as err:
        if err.options is None or err.missing_cfg_file is None:
            return _first_line(err)
        group, _, option = err.missing_cfg_file.rpartition("/")
        return f"unknown {group} '{option}' (choose from: {', '.join(err.options)})"
    except ConfigCompositionException as err:
        if isinstance(err.__cause__, ConfigAttributeError | ConfigKeyError) and err.__cause__.full_key:
            return f"unknown config key '{err.__cause__.full_key}' (prefix with + to add a new key)"
        return _first_line(err)
    except (HydraException, OmegaConfBaseException) as err:
        return _first_line(err)
    finally:
        GlobalHydra.instance().clear()
    return None


def describe(cfg: DictConfig) -> str:
    """Two lines: the config-group options composed into `cfg` and the run folder."""
    runtime = HydraConfig.get().runtime
    picked = [(g, o) for g, o in runtime.choices.items() if o is not None and not g.startswith("hydra/")]
    choices = " ".join(f"{group}={option}" for group, option in reversed(picked))
    return f"composed: {choices}\nrun folder: {runtime.output_dir}"


def run_app(config_name: str, task: Callable[[DictConfig], None], prog: str) -> None:
    """Run `task` as the Hydra app `prog` on `conf/<config_name>.yaml` and exit like a CLI.

    A bad override or an `AppError` from `task` ends the process with one line on stderr and exit
    code 2. In a multirun every job runs; the failures are reported together at the end.
    """
    try:
        conf = config_dir()
    except FileNotFoundError as err:
        _fail(prog, str(err))
    args = get_args_parser().parse_args()
    if _wants_check(args):
        problem = check_overrides(conf, args.config_name or config_name, args.overrides)
        if problem is not None:
            _fail(prog, problem)

    failures: list[str] = []
    jobs = 0

    def job(cfg: DictConfig) -> None:
        nonlocal jobs
        jobs += 1
        try:
            task(cfg)
        except AppError as err:
            failures.append(str(err))

    hydra.main(config_path=str(conf), config_name=config_name, version_base="1.3")(job)()
    if len(failures) == 1 and jobs == 1:
        _fail(prog, failures[0])
    if failures:
        _fail(prog, f"{len(failures)} of {jobs} jobs failed; the first: {failures[0]}")


def _wants_check(args: argparse.Namespace) -> bool:
    """Whether the command composes one config from `conf/` that can be checked up front."""
    skip = (
        args.multirun,
        args.help,
        args.hydra_help,
        args.info is not None,
        args.shell_completion,
        args.experimental_rerun,
        args.config_path,
        args.config_dir,
    )
    return not any(skip)


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: {message}", file=sys.stderr)
    sys.exit(_EXIT_USAGE)
