"""Faults of a run's folder, checkpoints and configs: each test damages its own input and asserts an exact
recovery, a one-line error, or nothing lost.

The kill test kills a real process (SIGKILL at a seeded step) and resumes it; the rest run the app in this
process on tiny settings."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import intern_arch
from intern_pretrain.app.lock import run_folder_lock
from intern_transfer.runs import (
    AtomicCheckpointIO,
    CheckpointWriteError,
    checkpoint_meta,
    checkpoint_problem,
    newest_checkpoint,
)

from ..conftest import KILLER, app_command, app_processes
from ..pretrain.conftest import UPA_G_TINY

pytestmark = pytest.mark.usefixtures("one_thread")
QUIET = ["+trainer.limit_val_batches=0", "stage.callbacks.probe=null", "progress=false"]


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "csv" / "metrics.csv").open(newline="") as file:
        return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(file)]


def export_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    export = run_dir / "export"
    return {**load_file(export / "model.safetensors"), **load_file(export / "text" / "model.safetensors")}


def test_killed_at_a_seeded_step_resumes_to_the_unbroken_run_exactly(
    run_pretrain: Callable[..., Any], intern_root: Path, tmp_path: Path
) -> None:
    """SIGKILL after optimiser step 5 (step checkpoints every 2), then a resume: the final weights are
    ``torch.equal`` to an unbroken run's and the CSV log holds every step once, as the unbroken run's
    (the killed run in its own process, meanwhile the unbroken run and later the resume in this one)."""
    (tmp_path / "killer.py").write_text(textwrap.dedent(KILLER))
    run = [*QUIET, "trainer.max_epochs=3", "callbacks.step_checkpoint.every_n_train_steps=2"]
    killed = tmp_path / "killed"
    kill = "+callbacks.kill={_target_: killer.KillAt, step: 5}"
    command = app_command("intern_pretrain", killed, *UPA_G_TINY, *run, kill)
    with app_processes([command], intern_root, tmp_path, expect=[-9], pythonpath=tmp_path):
        run_pretrain(tmp_path / "unbroken", *run)
    assert newest_checkpoint(killed / "checkpoints") == killed / "checkpoints" / "step.ckpt"
    assert not (killed / "export").exists()
    run_pretrain(killed, *run)
    unbroken, resumed = export_tensors(tmp_path / "unbroken"), export_tensors(killed)
    assert unbroken.keys() == resumed.keys()
    assert all(torch.equal(unbroken[k], resumed[k]) for k in unbroken), "resumed weights differ"
    assert csv_rows(killed) == csv_rows(tmp_path / "unbroken")
    assert [int(r["step"]) for r in csv_rows(killed) if "train/loss" in r] == list(range(9))


def test_resume_skips_damaged_checkpoints_and_says_which(
    run_pretrain: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    run_pretrain(run_dir, "+trainer.max_steps=4", "callbacks.step_checkpoint.every_n_train_steps=2", *QUIET)
    checkpoints = run_dir / "checkpoints"
    last = checkpoints / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # truncated
    (checkpoints / "random.ckpt").write_bytes(os.urandom(4096))  # not a checkpoint at all
    assert "not a whole torch archive" in checkpoint_problem(last)
    capsys.readouterr()
    run_pretrain(run_dir, "+trainer.max_steps=6", "callbacks.step_checkpoint.every_n_train_steps=2", *QUIET)
    out = capsys.readouterr().out
    for damaged in ("random.ckpt", "last.ckpt"):
        assert f"skipped checkpoint {checkpoints / damaged}: not a whole torch archive" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    resumed_from = Path(summary["resumed_from"])
    assert resumed_from.name in ("step.ckpt", "epoch_001.ckpt") and f"resuming from {resumed_from}" in out
    assert summary["steps"] == 6  # continued from step 4


def test_disk_full_while_checkpointing_is_one_line_and_keeps_the_previous(
    run_pretrain: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    run_pretrain(run_dir, "+trainer.max_steps=2", *QUIET)
    before = (run_dir / "checkpoints" / "last.ckpt").read_bytes()

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("intern_transfer.runs.checkpoint_io.torch.save", full)  # as an OSError from open()
    with pytest.raises(CheckpointWriteError) as raised:
        run_pretrain(run_dir, "+trainer.max_steps=4", *QUIET)
    assert str(raised.value).startswith(f"cannot write checkpoint {run_dir / 'checkpoints'}")
    assert "No space left on device; the previous checkpoints are intact" in str(raised.value)
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == before
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]


def test_a_full_filesystem_leaves_no_partial_checkpoint(tmp_path: Path) -> None:
    """A real full disk: a 256 KiB tmpfs (root can mount one here; skipped where it cannot)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        io = AtomicCheckpointIO()
        io.save_checkpoint({"weights": torch.zeros(1000)}, mount / "small.ckpt")
        with pytest.raises(
            CheckpointWriteError, match=r"cannot write checkpoint .*big.ckpt: No space left on device"
        ):
            io.save_checkpoint({"weights": torch.zeros(200_000)}, mount / "big.ckpt")
        assert [p.name for p in mount.iterdir()] == ["small.ckpt"]
        assert checkpoint_problem(mount / "small.ckpt") is None
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_second_run_on_the_same_folder_fails_at_once(python_m: Callable[..., Any], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with run_folder_lock(run_dir):
        result = python_m(
            "intern_pretrain", *UPA_G_TINY, f"hydra.run.dir={run_dir}", env={"INTERN_ROOT": str(tmp_path)}
        )
    assert result.returncode == 2
    busy = f"run folder {run_dir} is in use by process {os.getpid()}; wait for it or choose another folder"
    assert result.stderr.splitlines() == [f"intern_pretrain: {busy}"]
    assert not (tmp_path / "cache").exists()  # refused before any data was made


def test_a_dead_process_lock_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / ".lock").write_text("999999")  # left by a killed run: the kernel released its lock
    with run_folder_lock(tmp_path):
        assert (tmp_path / ".lock").read_text() == str(os.getpid())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "trainer.max_epochs=abc",
            "trainer.max_epochs='abc' is not int or null (the max_epochs of lightning",
        ),
        (
            "stage.data.batch_size=abc",
            "stage.data.batch_size='abc' is not int (the batch_size of intern_pretrain",
        ),
        ("resume=/dev/null", "resume='/dev/null' is not a checkpoint that loads: not a file"),
    ],
)
def test_bad_values_are_one_line_before_any_set_up(
    python_m: Callable[..., Any], tmp_path: Path, override: str, message: str
) -> None:
    result = python_m("intern_pretrain", *UPA_G_TINY, override, f"hydra.run.dir={tmp_path / 'run'}",
                      env={"INTERN_ROOT": str(tmp_path)})  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"intern_pretrain: {message}")
    assert not (tmp_path / "cache").exists()


def test_random_and_truncated_resume_files_are_one_line(python_m: Callable[..., Any], tmp_path: Path) -> None:
    random_file = tmp_path / "random.ckpt"
    random_file.write_bytes(os.urandom(1000))
    result = python_m(
        "intern_pretrain", *UPA_G_TINY, f"resume={random_file}", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"intern_pretrain: resume='{random_file}' is not a checkpoint that loads: not a"
    )


def test_a_hand_over_that_is_not_safetensors_is_one_line(
    python_m: Callable[..., Any], tmp_path: Path
) -> None:
    folder = intern_arch.save_pretrained(
        intern_arch.create_model("mnb_test", num_classes=0), tmp_path / "export"
    )
    (folder / "model.safetensors").write_bytes(b"PK\x03\x04 a zip, not safetensors")
    env = {"INTERN_ROOT": str(tmp_path)}
    bench = python_m("intern_bench", f"checkpoint={folder}", "progress=false", env=env)
    pretrain = python_m("intern_pretrain", *UPA_G_TINY, f"stage.init_from={folder}", env=env)
    for result, prog in ((bench, "intern_bench"), (pretrain, "intern_pretrain")):
        assert result.returncode == 2
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"{prog}: {folder / 'model.safetensors'} is not a readable safetensors file")
    file_given = python_m("intern_bench", f"checkpoint={folder / 'config.json'}", env=env)
    assert file_given.returncode == 2
    assert f"{folder / 'config.json'} is a file: give the hand-over folder" in file_given.stderr


def test_a_rerun_after_a_kill_during_export_keeps_metrics_and_history(
    run_pretrain: Callable[..., Any], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_pretrain(run_dir, "trainer.max_epochs=1", "stage.callbacks.probe=null", "progress=false")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = csv_rows(run_dir)
    (run_dir / "summary.json").unlink()  # killed while exporting: no summary yet
    run_pretrain(run_dir, "trainer.max_epochs=1", "stage.callbacks.probe=null", "progress=false")
    again = json.loads((run_dir / "metrics.json").read_text())
    assert metrics.keys() <= again.keys() and "val/loss" in again
    assert csv_rows(run_dir) == rows
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metrics"] == again and summary["data"]["seen"] >= 24 and summary["data"]["skipped"] == 0


def test_outputs_follow_the_umask(run_pretrain: Callable[..., Any], tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        run_dir = tmp_path / "run"
        run_pretrain(run_dir, "+trainer.max_steps=1", *QUIET)
    finally:
        os.umask(previous)
    export = run_dir / "export"
    paths = (export, export / "text", export / "config.json", export / "text" / "tokenizer.json",
             run_dir / "summary.json", run_dir / "checkpoints" / "last.ckpt")  # fmt: skip
    modes = {path: path.stat().st_mode & 0o777 for path in paths}
    assert modes == {path: 0o755 if path.is_dir() else 0o644 for path in modes}


def test_tensorboard_drops_the_steps_a_resumed_run_logs_again(
    run_pretrain: Callable[..., Any], tmp_path: Path
) -> None:
    """Resumed from an earlier checkpoint (the newer ones gone), TensorBoard's ``purge_step`` drops the
    events the first attempt logged after it: every training step's loss is there once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog

    run_dir = tmp_path / "run"
    overrides = ["logger=tensorboard", *QUIET]
    run_pretrain(run_dir, "+trainer.max_steps=3", *overrides)
    checkpoints = run_dir / "checkpoints"
    kept = (checkpoints / "last.ckpt").read_bytes()  # step 3
    run_pretrain(run_dir, "+trainer.max_steps=5", *overrides)
    for path in checkpoints.iterdir():  # as if the later checkpoints had been lost
        path.unlink()
    (checkpoints / "last.ckpt").write_bytes(kept)
    run_pretrain(run_dir, "+trainer.max_steps=5", *overrides)
    *_, third = sorted(
        (run_dir / "tensorboard").glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime_ns
    )
    starts = [e.step for e in EventFileLoader(str(third)).Load() if e.session_log.status == SessionLog.START]
    assert starts == [3]  # the purge mark at the resume point, honoured by TensorBoard's readers
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [event.step for event in events.Scalars("train/loss")] == [0, 1, 2, 3, 4]


def test_a_sharded_checkpoint_folder_counts_only_when_whole(tmp_path: Path) -> None:
    """A sharded checkpoint is a folder; one missing its metadata (a kill while it was written elsewhere)
    is reported and skipped, and the newest whole one is chosen by when its ``meta.pt`` was written."""
    older, newer = tmp_path / "step.ckpt", tmp_path / "last.ckpt"
    for folder, step in ((older, 2), (newer, 4)):
        folder.mkdir()
        (folder / ".metadata").write_bytes(b"dcp")
        torch.save({"global_step": step, "epoch": 0}, folder / "meta.pt")
    os.utime(older / "meta.pt", ns=(1, 1))
    assert checkpoint_problem(newer) is None and checkpoint_meta(newer)["global_step"] == 4
    (newer / ".metadata").unlink()
    reports: list[str] = []
    assert newest_checkpoint(tmp_path, report=reports.append) == older
    assert checkpoint_problem(newer) == "a sharded checkpoint folder without .metadata"
    assert len(reports) == 1 and "last.ckpt" in reports[0]
