"""Running an INTERN app: override checks, ``--help``, verbs, and one-line errors with exit code 2."""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from intern_app.conf import config_dir
from intern_app.flags import composes_one_config, parse_flags
from intern_app.help import app_help
from intern_app.overrides import check_overrides

EXIT_USAGE = 2


class AppError(Exception):
    """A failure the user can act on; the app prints its message as one line and exits with 2."""


@dataclass(frozen=True)
class Verbs:
    """An app's sub-commands that take files and names rather than configs (``python -m intern_data shard``).

    Attributes:
        run: runs ``argv`` (the verb first) and returns the exit code.
        help: one line per verb, for ``--help``.
    """

    run: Callable[[list[str]], int]
    help: Mapping[str, str] = field(default_factory=dict)


def describe(cfg: DictConfig, leave_out: Collection[str] = ()) -> str:
    """Two lines: the config-group options composed into ``cfg`` (but the groups ``leave_out`` names, which
    the run does not use) and the run folder."""
    runtime = HydraConfig.get().runtime
    picked = [
        (g, o)
        for g, o in runtime.choices.items()
        if o is not None and not g.startswith("hydra/") and g not in leave_out
    ]
    choices = " ".join(f"{group}={option}" for group, option in reversed(picked))
    return f"composed: {choices}\nrun folder: {runtime.output_dir}"


def run_app(
    config_name: str,
    task: Callable[[DictConfig], None],
    prog: str,
    verbs: Verbs | None = None,
    moved: Mapping[str, str] | None = None,
) -> None:
    """Run ``task`` as the Hydra app ``prog`` on ``conf/<config_name>.yaml`` and exit like a CLI.

    ``python -m <prog> <verb> ...`` runs a verb instead; ``--help`` lists the verbs and the config groups
    the app reads. ``moved`` maps config keys that no longer exist (glob patterns, ``stage.losses.*``) to
    what replaced them, so an old command fails saying so. A bad override or an ``AppError`` from
    ``task`` ends the process with one line on stderr and exit code 2. In a multirun every job runs;
    the failures are reported together at the end.
    """
    argv = sys.argv[1:]
    if verbs is not None and argv[:1] and argv[0] in verbs.help:
        sys.exit(verbs.run(argv))
    problem = moved_key(argv, moved or {})
    if problem is not None:
        fail(prog, problem)
    try:
        conf = config_dir()
    except FileNotFoundError as err:
        fail(prog, str(err))
    args = parse_flags(argv)
    if args.help:
        summary = (task.__doc__ or prog).strip().splitlines()[0]
        print(app_help(conf, args.config_name or config_name, prog, summary, verbs.help if verbs else {}))
        sys.exit(0)
    if composes_one_config(args):
        problem = check_overrides(conf, args.config_name or config_name, args.overrides)
        if problem is not None:
            fail(prog, problem)

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
        fail(prog, failures[0])
    if failures:
        fail(prog, f"{len(failures)} of {jobs} jobs failed; the first: {failures[0]}")


def moved_key(argv: list[str], moved: Mapping[str, str]) -> str | None:
    """Why an override of a key that no longer exists fails, naming its replacement; None if none does."""
    for override in argv:
        key = override.lstrip("+~").partition("=")[0]
        for pattern, replacement in moved.items():
            if fnmatch.fnmatchcase(key, pattern):
                return f"'{override}': {key} is gone; {replacement}"
    return None


def fail(prog: str, message: str) -> NoReturn:
    """Print ``<prog>: <message>`` on stderr and exit with the usage error code."""
    print(f"{prog}: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)
