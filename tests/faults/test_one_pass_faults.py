"""The one-pass readers (Up-A-G's tokenizer pass, Up-A-L's proposals) go through the checked shard
reader: a damaged shard is an error naming it, and no output is left that looks complete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from intern_data.shards import ShardIntegrityError
from intern_pretrain.upa_g.data import iter_captions
from intern_pretrain.upa_l.sidecar import proposals_path, write_proposals

from .conftest import flip, rewrite_tar, snapshot


def test_the_tokenizer_pass_names_a_damaged_shard(shards: Callable[..., Path]) -> None:
    folder = shards("png")
    assert list(iter_captions(folder)) == []  # the toy samples have no captions
    (folder / "toy-train-000001.tar").write_bytes(b"not a tar" * 100)  # was a raw tarfile.ReadError
    with pytest.raises(ShardIntegrityError, match=r"toy-train-000001.tar does not match the sha256"):
        list(iter_captions(folder))


def test_proposals_are_not_made_from_a_damaged_shard(shards: Callable[..., Path]) -> None:
    folder = shards("png", legacy=True)
    rewrite_tar(
        folder / "toy-train-000000.tar", lambda name, data: flip(data) if name == "s00003.png" else data
    )
    before = snapshot(folder)
    with pytest.raises(ShardIntegrityError, match=r"toy-train-000000.tar does not match the sha256"):
        write_proposals(folder, "train", mode="fast", max_proposals=4)
    assert snapshot(folder) == before and not proposals_path(folder, "train").exists()
