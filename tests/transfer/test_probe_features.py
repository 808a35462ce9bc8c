"""Feature extraction from a frozen backbone and the on-disk feature cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import intern_arch
from intern_transfer.probe import (
    CacheKey,
    FeatureCache,
    FeatureCacheError,
    Features,
    cached_features,
    extract_features,
    model_fingerprint,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # these CPUs are shared: two threads thrash


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return intern_arch.create_model("mnb_test", num_classes=5)


def _images(n: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 5, (n,), generator=g)


def test_extract_matches_eval_forward_and_restores_mode(model: torch.nn.Module) -> None:
    images, labels = _images()
    model.train()
    batches = [(images[:4], labels[:4]), (images[4:], labels[4:])]
    feats, out_labels, keys = extract_features(model, batches)
    assert model.training, "the backbone's mode is restored"
    model.eval()
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(images), pre_logits=True)
    model.train()
    assert feats.dtype == torch.float32 and feats.shape == (10, model.num_features)
    assert not feats.requires_grad
    torch.testing.assert_close(feats, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(out_labels, labels) and out_labels.dtype == torch.int64
    assert keys == [str(i) for i in range(10)]


def test_extract_reads_datamodule_batches_and_rejects_uint8(model: torch.nn.Module) -> None:
    images, labels = _images(6)
    batch = {"image": images, "label": labels, "__key__": [f"s{i}" for i in range(6)], "source": ["x"] * 6}
    result = extract_features(model, [batch])
    assert result.keys == [f"s{i}" for i in range(6)]
    with pytest.raises(ValueError, match="float images"):
        extract_features(model, [((images * 50).to(torch.uint8), labels)])


def test_fingerprint_follows_weights_and_buffers(model: torch.nn.Module) -> None:
    torch.manual_seed(0)
    twin = intern_arch.create_model("mnb_test", num_classes=5)
    assert model_fingerprint(twin) == model_fingerprint(model)
    buffer_name = next(name for name, _ in twin.named_buffers() if name.endswith("running_mean"))
    twin.get_buffer(buffer_name).add_(1e-3)
    assert model_fingerprint(twin) != model_fingerprint(model)


def _features(n: int = 7, d: int = 3) -> Features:
    g = torch.Generator().manual_seed(1)
    return Features(torch.randn(n, d, generator=g), torch.arange(n) % 3, [f"k{i}" for i in range(n)])


KEY = CacheKey("model-abc", "digits", "train", {"resize": 32, "crop": 32, "mean": [0.5]})


def test_cache_miss_then_hit(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    calls: list[int] = []

    def compute() -> Features:
        calls.append(1)
        return _features()

    first = cache.load_or_compute(KEY, compute)
    second = cache.load_or_compute(KEY, compute)
    assert len(calls) == 1 and cache.stats == {"miss": 1, "hit": 1}
    assert torch.equal(first.features, second.features) and torch.equal(first.labels, second.labels)
    assert second.keys == first.keys
    other = CacheKey("model-abc", "digits", "train", {"resize": 36, "crop": 32, "mean": [0.5]})
    cache.load_or_compute(other, compute)
    assert len(calls) == 2, "another preprocessing is another entry"

    data_path, meta_path = cache.paths(KEY)
    with safe_open(str(data_path), framework="pt") as f:  # plain safetensors, no pickle
        assert set(f.keys()) == {"features", "labels", "keys_json"}
    meta = json.loads(meta_path.read_text())
    assert meta["key"]["preprocess"] == KEY.preprocess and (meta["num_samples"], meta["dim"]) == (7, 3)
    assert not list(tmp_path.glob(".*tmp")), "no temporary files left behind"


def test_interrupted_write_is_a_miss(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    cache.save(KEY, _features())
    cache.paths(KEY)[1].unlink()  # the data file landed, the sidecar did not
    assert cache.load(KEY) is None


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("flip_data_byte", "checksum"),
        ("truncate_sidecar", "unreadable"),
        ("foreign_sidecar", "does not describe"),
        ("delete_data", "missing"),
    ],
)
def test_corrupt_entry_is_a_clear_error_then_recomputed(
    tmp_path: Path, damage: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = FeatureCache(tmp_path)
    good = _features()
    cache.save(KEY, good)
    data_path, meta_path = cache.paths(KEY)
    if damage == "flip_data_byte":
        raw = bytearray(data_path.read_bytes())
        raw[-5] ^= 0xFF
        data_path.write_bytes(bytes(raw))
    elif damage == "truncate_sidecar":
        meta_path.write_text(meta_path.read_text()[:20])
    elif damage == "foreign_sidecar":
        meta = json.loads(meta_path.read_text())
        meta["key"]["split"] = "test"
        meta_path.write_text(json.dumps(meta))
    else:
        data_path.unlink()

    with pytest.raises(FeatureCacheError, match=reason):
        cache.load(KEY)
    with caplog.at_level(logging.ERROR):
        again = cache.load_or_compute(KEY, _features)
    assert cache.stats["corrupt"] == 1 and reason in caplog.text and "recomputing" in caplog.text
    assert torch.equal(again.features, good.features)
    loaded = cache.load(KEY)
    assert loaded is not None and torch.equal(loaded.features, good.features), "the entry is repaired"


def test_unverified_garbage_is_still_an_error(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, verify=False)
    cache.save(KEY, _features())
    cache.paths(KEY)[0].write_bytes(b"\x00" * 40)
    with pytest.raises(FeatureCacheError, match="unreadable"):
        cache.load(KEY)


def test_cached_features_reads_batches_only_on_a_miss(model: torch.nn.Module, tmp_path: Path) -> None:
    images, labels = _images(5)
    reads: list[int] = []

    def batches():
        reads.append(1)
        yield images, labels

    cache = FeatureCache(tmp_path)
    kwargs = {"dataset": "toy", "split": "train", "preprocess": "none"}
    first = cached_features(cache, model, batches(), **kwargs)
    second = cached_features(cache, model, batches(), **kwargs)
    assert len(reads) == 1 and torch.equal(first.features, second.features)
    assert cache.stats["hit"] == 1


def test_autocast_dtype_is_part_of_the_cache_key(model: torch.nn.Module, tmp_path: Path) -> None:
    images, labels = _images(5)
    cache = FeatureCache(tmp_path)
    kwargs = {"dataset": "toy", "split": "train", "preprocess": "none"}
    fp32 = cached_features(cache, model, [(images, labels)], **kwargs)
    bf16 = cached_features(cache, model, [(images, labels)], autocast_dtype=torch.bfloat16, **kwargs)
    assert cache.stats["miss"] == 2 and not torch.equal(fp32.features, bf16.features)
    sidecars = [json.loads(p.read_text())["key"] for p in tmp_path.glob("*.json")]
    keys = sorted(key.get("autocast", "float32") for key in sidecars)
    assert keys == ["bfloat16", "float32"]
    assert "autocast" not in KEY.as_dict()  # float32 keys are those written before autocast was in the key
