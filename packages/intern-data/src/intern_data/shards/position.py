"""Where a shard reader is in its data: a small state dict that goes into the Lightning checkpoint.

Every batch a reader worker yields carries the worker's cursor after that batch (raw samples taken
from its stream, samples and batches emitted, skip counters). :class:`ShardLoader` strips the cursor
from the batch and records it here, so the position always matches the batches the consumer has
actually received, however far the DataLoader's workers have read ahead. Under Lightning the
DataModule records it in ``on_before_batch_transfer``, i.e. when the batch reaches the training step,
not when Lightning's fetcher reads one batch ahead. A restored position makes
each worker regenerate its (deterministic) stream and skip the raw samples it had already taken,
without decoding them, so the next batch is the one an uninterrupted run would have given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class WorkerCursor:
    """One reader worker's progress through the current epoch."""

    raw: int = 0  # raw samples taken from the worker's (shuffled) stream, good or bad
    emitted: int = 0  # samples put into batches (padding included)
    batches: int = 0
    seen: int = 0  # samples decoded or found missing: the skip rate's denominator
    skipped: int = 0  # corrupt, incomplete, missing or foreign samples (and foreign tar members)
    padded: int = 0  # repeats that keep every rank's batch count equal

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerCursor:
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class ReaderPosition:
    """The epoch, the batches this rank consumed in it, and each worker's cursor after its last batch.

    ``layout`` (rank, world size, workers, batch size, data fingerprint) tells a restored position
    whether its cursors apply; when they do not, the loader restarts the saved epoch instead.
    """

    epoch: int = 0
    batches: int = 0
    workers: dict[int, WorkerCursor] = field(default_factory=dict)
    layout: dict[str, Any] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)  # seen/skipped/padded of the finished epochs

    def advance(self, worker: int, cursor: WorkerCursor, epoch_batches: int) -> None:
        """Record that the consumer received one more batch, from ``worker``, leaving it at ``cursor``;
        after the epoch's ``epoch_batches``-th batch the position moves to the next epoch."""
        self.workers[worker] = cursor
        self.batches += 1
        if self.batches >= epoch_batches:
            self.end_epoch()

    def end_epoch(self) -> None:
        self.totals = self.counts()
        self.epoch += 1
        self.batches = 0
        self.workers = {}

    def counts(self) -> dict[str, int]:
        """Samples seen, skipped as bad and padded so far, over all epochs (this rank)."""
        return {
            name: self.totals.get(name, 0) + sum(getattr(c, name) for c in self.workers.values())
            for name in ("seen", "skipped", "padded")
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batches": self.batches,
            "workers": {str(w): asdict(c) for w, c in sorted(self.workers.items())},
            "layout": dict(self.layout),
            "totals": dict(self.totals),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> ReaderPosition:
        return cls(
            int(state["epoch"]),
            int(state["batches"]),
            {int(w): WorkerCursor.from_dict(c) for w, c in state.get("workers", {}).items()},
            dict(state.get("layout", {})),
            {k: int(v) for k, v in state.get("totals", {}).items()},
        )
