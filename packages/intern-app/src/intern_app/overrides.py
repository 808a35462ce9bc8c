"""Checking command-line overrides before Hydra runs, so a mistake is one line, not a traceback."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from intern_app.typecheck import config_type_errors


def check_overrides(conf: Path, config_name: str, overrides: list[str]) -> str | None:
    """Compose ``config_name`` with ``overrides`` and return why that fails in one line, or None: an
    unknown option or key, a sweep without ``-m``, a value of the wrong type for its ``_target_``."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
        single = [o.input_line for o in parsed if not o.is_sweep_override()]
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose(config_name, overrides=single, return_hydra_config=True)
        if sweeps and cfg.hydra.mode != RunMode.MULTIRUN:
            return f"'{sweeps[0]}' sweeps over values; add -m to run one job per value"
        errors = [e for key in cfg if key != "hydra" for e in config_type_errors(cfg._get_node(key), key)]
        if errors:
            return errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
    except MissingConfigException as err:
        if err.options is None or err.missing_cfg_file is None:
            return first_line(err)
        group, _, option = err.missing_cfg_file.rpartition("/")
        return f"unknown {group} '{option}' (choose from: {', '.join(err.options)})"
    except ConfigCompositionException as err:
        if isinstance(err.__cause__, ConfigAttributeError | ConfigKeyError) and err.__cause__.full_key:
            return f"unknown config key '{err.__cause__.full_key}' (prefix with + to add a new key)"
        return first_line(err)
    except (HydraException, OmegaConfBaseException) as err:
        return first_line(err)
    finally:
        GlobalHydra.instance().clear()
    return None


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
