"""Shared test set-up. Imports only pytest at load time: `nox -s arch_standalone` runs tests/arch
with intern-arch alone installed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu`-marked tests when CUDA is unavailable."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(autouse=True)
def _progress_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with progress switched on; an app run with progress=false (which switches it off
    for its process) does not leak into the next test."""
    monkeypatch.setenv("INTERN_PROGRESS", "1")


@dataclass
class AppRun:
    """What ``python -m <app> ...`` did: its exit code and output."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def python_m(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., AppRun]:
    """``python_m(module, *args, cwd=, env=)`` runs ``python -m module args`` in this process (as
    ``runpy`` does for ``-m``), from ``cwd`` with ``env`` set and ``INTERN_CONF_DIR`` / ``INTERN_ROOT``
    unset unless given: the app's own code path without a new interpreter's start-up."""
    import logging
    import runpy
    import sys

    from hydra.core.global_hydra import GlobalHydra

    def run(module: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> AppRun:
        with monkeypatch.context() as patch:
            for name in ("INTERN_CONF_DIR", "INTERN_ROOT"):
                patch.delenv(name, raising=False)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            if cwd is not None:
                patch.chdir(cwd)
            patch.setattr(sys, "argv", [module, *args])
            capsys.readouterr()
            handlers, level = list(logging.root.handlers), logging.root.level
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            finally:
                GlobalHydra.instance().clear()
                for handler in set(logging.root.handlers) - set(handlers):  # Hydra's job logging
                    handler.close()
                logging.root.handlers[:] = handlers
                logging.root.setLevel(level)
            out = capsys.readouterr()
        return AppRun(code, out.out, out.err)

    return run


def _composer(output_dir: Path) -> Callable[..., Any]:
    """Compose a primary config the way the apps see it: Hydra's runtime set, run folder ``output_dir``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from intern_app import config_dir

    def _compose(config_name: str, overrides: Sequence[str] = ()) -> Any:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(
                config_name,
                overrides=[*overrides, f"hydra.runtime.output_dir={output_dir}"],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        return cfg

    return _compose


def _reset_hydra() -> None:
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().cfg = None


@pytest.fixture
def compose_app(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Compose an app config (see :func:`_composer`), run folder in tmp_path."""
    yield _composer(tmp_path)
    _reset_hydra()


@pytest.fixture(scope="module")
def compose_app_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    """``compose_app`` for module-scoped fixtures (one run shared by a module's tests)."""
    yield _composer(tmp_path_factory.mktemp("app"))
    _reset_hydra()


@pytest.fixture(scope="session")
def intern_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One INTERN_ROOT for the session: the world's datasets, proposals and regime manifests are made
    once under its cache/ and reused by every test that asks for the same ones."""
    return tmp_path_factory.mktemp("intern_root")


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Torch on one thread for a module (these CPUs are shared; two threads on a busy core thrash)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# A callback module a test writes next to a run: ``+callbacks.kill={_target_: killer.KillAt, step: N}``
# kills the run's process after optimiser step N, before its checkpoint (the resume tests).
KILLER = '''
import os, signal
import lightning as L

class KillAt(L.Callback):
    """SIGKILL this process at the end of the optimiser step ``step`` (before its checkpoint)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
'''


def app_command(app: str, run_dir: Path, *overrides: str) -> list[str]:
    """``python -m <app> overrides hydra.run.dir=run_dir`` with this interpreter."""
    import sys

    return [sys.executable, "-m", app, *overrides, f"hydra.run.dir={run_dir}"]


@contextlib.contextmanager
def app_processes(
    commands: Sequence[list[str]],
    root: Path,
    logs: Path,
    *,
    expect: Sequence[int],
    pythonpath: Path | None = None,
    timeout: float = 300,
) -> Iterator[None]:
    """Run ``commands`` in processes of their own while the ``with`` block runs in this one.

    All start at once, from ``root`` with ``INTERN_ROOT=root``, one torch thread and ``pythonpath`` first
    on ``PYTHONPATH``, each in a session of its own (output in ``logs/process<i>.log``). Leaving the block
    waits for all; then whatever they started is killed. A process that exits with other than its
    ``expect`` code or outlives ``timeout`` fails the test with the logs' tails: a rank that dies or
    hangs fails instead of hanging the suite, and none outlives the test."""
    import os
    import signal
    import subprocess
    import time

    env = {k: v for k, v in os.environ.items() if k != "INTERN_CONF_DIR"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    env |= {"INTERN_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    paths = [logs / f"process{i}.log" for i in range(len(commands))]
    deadline = time.monotonic() + timeout
    procs = []
    try:
        for command, path in zip(commands, paths, strict=True):
            with path.open("w") as log:
                procs.append(
                    subprocess.Popen(
                        command,
                        cwd=root,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield
        got: list[int | None] = []
        for proc in procs:
            try:
                got.append(proc.wait(timeout=max(deadline - time.monotonic(), 0.1)))
            except subprocess.TimeoutExpired:
                got.append(None)
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in paths)
    assert got == list(expect), (
        f"exit codes {got} (None: past {timeout} s), expected {list(expect)}:\n{tails}"
    )


def run_ranks(
    rank_fn: Callable[..., None], args: tuple[Any, ...], *, world: int = 2, timeout: float = 120
) -> None:
    """Run ``rank_fn(rank, *args)`` in ``world`` processes forked from this one: they inherit its imports,
    so they start at once (``rank_fn`` sets its torch threads to 1 before any work: forked OpenMP pools
    are not safe). A rank that raises or dies fails the test with its traceback; ranks still running
    after ``timeout`` are killed and the test fails."""
    import time

    import torch.multiprocessing as mp

    context = mp.start_processes(rank_fn, args=args, nprocs=world, join=False, start_method="fork")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):  # raises when a rank dies
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {world} ranks did not finish within {timeout} s")


# Up-A-G in a few steps at 32 px: 3 steps of 8 per epoch, a small world, a small probe task.
UPA_G_TINY = [
    "stage=upa_g",
    "data.sizes={train:48,val:16}",
    "stage.data.img_size=32",
    "stage.data.batch_size=8",
    "stage.data.val_batch_size=16",
    "stage.data.samples_per_epoch=24",
    "stage.module.scheduler.warmup_steps=2",
    "stage.callbacks.probe.sizes={train:36,val:18}",
    "trainer.log_every_n_steps=1",
    "evaluate=null",
]


@pytest.fixture
def run_pretrain(intern_root: Path) -> Iterator[Callable[..., Any]]:
    """``run_pretrain(run_dir, *overrides)``: compose the pretrain app's config as Hydra would for
    ``hydra.run.dir=run_dir`` and run the stage in this process; returns the config."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from intern_app import config_dir
    from intern_pretrain.app.run import run_stage

    def run(run_dir: Path, *overrides: str, tiny: Sequence[str] = UPA_G_TINY) -> Any:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(
                "pretrain",
                overrides=[
                    *tiny,
                    *overrides,
                    f"paths.root_dir={intern_root}",
                    f"hydra.runtime.output_dir={run_dir}",
                ],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        run_stage(cfg)
        return cfg

    yield run
    HydraConfig.instance().cfg = None
