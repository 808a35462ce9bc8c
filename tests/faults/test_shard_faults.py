"""Damaged shard folders: each fault is a counted skip naming shard and key, an error naming the file,
or exact recovery; reading never writes into the folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from intern_data.label_space import LabelSpace
from intern_data.shards import ShardIntegrityError, ShardWriteError, make_pipeline, write_shards

from .conftest import SAMPLES, SPACE, flip, read_all, rewrite_tar, samples, snapshot

ALL = [f"s{i:05d}" for i in range(SAMPLES)]
SHARD = "toy-train-000001.tar"  # samples 6..11


@pytest.mark.parametrize("image_format", ["png", "jpg"])
def test_bit_flips_in_an_image_member_skip_that_sample(
    shards: Callable[..., Path], image_format: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = shards(image_format)
    rewrite_tar(folder / SHARD, lambda name, data: flip(data) if name == f"s00008.{image_format}" else data)
    before = snapshot(folder)
    keys, counts = read_all(folder)
    assert sorted(keys) == [k for k in ALL if k != "s00008"]
    assert counts == {"seen": SAMPLES, "skipped": 1, "padded": 1}
    assert f"shard {SHARD} at key 's00008'" in caplog.text and "crc32" in caplog.text
    assert snapshot(folder) == before


@pytest.mark.parametrize("image_format", ["png", "jpg"])
def test_a_folder_without_key_lists_is_read_as_before_and_its_decoder_raises(
    shards: Callable[..., Path], image_format: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No crc32 to catch the flip: the image reaches the decoder, which must raise, not crash (PNG
    went to torchvision's decode_png, SIGSEGV). libjpeg decodes a flipped JPEG to damaged pixels."""
    folder = shards(image_format, legacy=True)
    assert sorted(read_all(folder)[0]) == ALL
    rewrite_tar(
        folder / SHARD, lambda name, data: flip(data, 64) if name == f"s00008.{image_format}" else data
    )
    keys, counts = read_all(folder)
    if image_format == "png":
        assert counts["skipped"] == 1 and "s00008" not in keys
        assert "member 'png' is corrupt (ImageDecodeError" in caplog.text
    else:
        assert counts["skipped"] == 0 and sorted(keys) == ALL  # caught by verify=True (below)
        with pytest.raises(ShardIntegrityError, match=rf"shard .*{SHARD} does not match the sha256"):
            read_all(folder, verify=True)


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_a_tar"])
def test_an_unreadable_tar_counts_its_samples_as_missing(
    shards: Callable[..., Path], damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = shards("png")
    path = folder / SHARD
    data = {"truncated": path.read_bytes()[: path.stat().st_size // 2], "empty": b"", "not_a_tar": b"x" * 700}
    path.write_bytes(data[damage])
    keys, counts = read_all(folder)
    assert set(ALL[:6]) <= set(keys) < set(ALL)
    assert counts["seen"] == SAMPLES and counts["skipped"] == SAMPLES - len(keys)
    assert f"shard {SHARD}" in caplog.text and "missing" in caplog.text


def test_tars_given_by_path_count_an_unreadable_one_as_empty(
    shards: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    folder = shards("png")
    (folder / "empty.tar").write_bytes(b"")
    (folder / "junk.tar").write_bytes(b"not a tar at all" * 40)
    keys, counts = read_all(
        [str(folder / "toy-train-000000.tar"), str(folder / "empty.tar"), str(folder / "junk.tar")]
    )
    assert sorted(keys) == ALL[:6] and counts["skipped"] == 0
    assert "empty.tar is unreadable" in caplog.text and "junk.tar is unreadable" in caplog.text


def test_a_label_outside_the_label_space_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A label of 99 in a 3-class shard (written under a wider space, its index then says 3 classes)."""
    folder = tmp_path / "toy"
    wide = LabelSpace("toy", tuple(f"c{i}" for i in range(100)))
    write_shards(
        samples(label=lambda i: 99 if i == 4 else i % 3), folder, "toy", "train", wide, max_shard_count=6
    )
    index = json.loads((folder / "index.json").read_text())
    index["label_space"] = SPACE.to_json()
    (folder / "index.json").write_text(json.dumps(index))
    keys, counts = read_all(folder)
    assert sorted(keys) == [k for k in ALL if k != "s00004"] and counts["skipped"] == 1
    assert "label 99 is outside label space 'toy' (3)" in caplog.text


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"zz999.json": b"{}", "zz999.png": b"\x89PNG"}, "not in the key list"),
        ({"../evil.png": b"x", "../../etc/evil.json": b"{}"}, "not a plain sample key"),
        ({"/abs/evil.jpg": b"x"}, "not a plain sample key"),
        ({"s00007.exe": b"MZ"}, "unexpected extension 'exe'"),
    ],
)
def test_foreign_members_are_skipped_counted_and_take_no_sample_place(
    shards: Callable[..., Path], extra: dict[str, bytes], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = shards("png")
    first = folder / "toy-train-000000.tar"
    rewrite_tar(first, lambda name, data: data, extra)  # appended: at the end of samples 0..5
    before = snapshot(folder)
    keys, counts = read_all(folder)
    foreign = 1 if "zz999.json" in extra else len(extra)  # a plain foreign sample counts once
    assert sorted(keys) == ALL, "every real sample is read, none pushed out of the epoch"
    assert counts == {"seen": SAMPLES + foreign, "skipped": foreign, "padded": 0}
    assert why in caplog.text and "shard toy-train-000000.tar" in caplog.text
    assert snapshot(folder) == before


def test_ranks_reading_one_shard_count_a_foreign_member_once(shards: Callable[..., Path]) -> None:
    folder = shards("png")
    rewrite_tar(folder / "toy-train-000000.tar", lambda name, data: data, {"../evil.png": b"x"}, "s00001.png")
    keys, skipped = [], 0
    for rank in range(3):  # samples 0..3, 4..7, 8..11: ranks 0 and 1 both read the first shard
        loader = make_pipeline(folder, batch_size=2, rank=rank, world_size=3, max_skip_fraction=0.5)
        keys += [key for batch in loader for key in batch["__key__"]]
        skipped += loader.position.counts()["skipped"]
    assert sorted(keys) == ALL and skipped == 1


def test_verify_names_a_shard_whose_sha256_changed(shards: Callable[..., Path]) -> None:
    folder = shards("jpg")
    rewrite_tar(folder / SHARD, lambda name, data: flip(data) if name == "s00009.jpg" else data)
    with pytest.raises(ShardIntegrityError, match=rf"shard .*{SHARD} does not match the sha256 in its index"):
        read_all(folder, verify=True)
    keys, counts = read_all(folder)  # verify off (training's default): the crc32 skips that sample
    assert counts["skipped"] == 1 and "s00009" not in keys


def test_a_changed_key_list_is_an_error_naming_it(shards: Callable[..., Path]) -> None:
    folder = shards("png")
    key_list = folder / "toy-train-000000.keys.json"
    key_list.write_text(key_list.read_text().replace("s00001", "s00077"))
    with pytest.raises(ShardIntegrityError, match=r"key list .*toy-train-000000.keys.json does not match"):
        read_all(folder)
    key_list.unlink()
    with pytest.raises(ShardIntegrityError, match=r"toy-train-000000.keys.json named in index.json cannot"):
        read_all(folder)


def test_rewriting_a_finished_split_checks_its_shards_against_the_index(shards: Callable[..., Path]) -> None:
    folder = shards("png")
    before = snapshot(folder)
    write_shards(samples(), folder, "toy", "train", SPACE, max_shard_count=6, image_format="png")
    assert {k: v[0] for k, v in snapshot(folder).items()} == {k: v[0] for k, v in before.items()}
    rewrite_tar(folder / SHARD, lambda name, data: flip(data) if name == "s00010.png" else data)
    with pytest.raises(ShardWriteError, match=rf"shard {SHARD} does not match the sha256 in .*index.json"):
        write_shards(samples(), folder, "toy", "train", SPACE, max_shard_count=6, image_format="png")


def test_skip_rate_from_the_data_config(shards: Callable[..., Path]) -> None:
    from intern_data.shards import SkipRateError
    from intern_data.sources import DataConfigError, build_datamodule

    folder = shards("png")
    rewrite_tar(folder / SHARD, lambda name, data: flip(data) if name.endswith(".png") else data)
    data = {"name": "toy", "source": "shards", "task": "classification", "root": str(folder)}
    for fraction, fails in ((0.2, True), (0.6, False)):
        module = build_datamodule(
            {**data, "max_skip_fraction": fraction}, folder, batch_size=4, num_workers=0, shuffle_buffer=0
        )
        module.min_samples_for_skip_check = 1
        module.setup("fit")
        assert module.datasets["train"].max_skip_fraction == fraction
        if fails:
            with pytest.raises(SkipRateError, match=rf"max_skip_fraction={fraction}"):
                list(module.train_dataloader())
        else:
            assert len(list(module.train_dataloader())) == 3
    module = build_datamodule({**data, "verify": True}, folder, num_workers=0)
    assert module.verify is True and module.max_skip_fraction == 0.01
    with pytest.raises(DataConfigError, match="data.max_skip_fraction must be a number in"):
        build_datamodule({**data, "max_skip_fraction": "lots"}, folder)


def test_every_data_config_sets_the_skip_rate() -> None:
    import yaml

    conf = Path(__file__).parents[2] / "conf" / "data"
    for path in conf.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        if "defaults" not in data:  # world.yaml takes world_captions' keys
            assert data["max_skip_fraction"] == 0.01 and data["verify"] is False, path.name
