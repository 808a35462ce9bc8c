"""intern_data.world: the embedded procedural world (docs/architecture.md, "The embedded world").

Fast tests check the contract sample by sample (schema, determinism, geometry, label spaces); the
two ``slow`` tests check that the world is a fair test of pretraining: raw pixels are far from
enough, features learned upstream transfer to the shifted downstream tasks, and downstream tasks
are data-hungry.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from intern_data.schema import REQUIRED_KEYS, validate_sample
from intern_data.world import (
    DOMAINS,
    DOWNSTREAM_DOMAINS,
    FINES,
    MIN_VISIBLE,
    UPSTREAM_DOMAINS,
    Scene,
    compose,
    generate,
    get_dataset,
    list_datasets,
    make_sample,
    make_scene,
)
from intern_data.world.captions import captions
from intern_data.world.render import MAX_DEPTH

UPSTREAM = [
    "world_captions",
    "world_cls_fine",
    "world_cls_fine_a",
    "world_cls_fine_b",
    "world_cls_coarse",
    "world_cls_attr",
    "world_det_a",
    "world_det_b",
    "world_seg",
    "world_seg_things",
    "world_seg_scenes",
]
DOWNSTREAM = ["gvb_world_cls", "gvb_world_fine", "gvb_world_det", "gvb_world_seg", "gvb_world_depth"]


def _scenes(
    count: int, domains: tuple[str, ...] = ("meadow", "indoor", "underwater", "sketch")
) -> list[Scene]:
    """Busy multi-object scenes (4-5 objects, clutter) to exercise occlusion."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        fines = list(rng.integers(len(FINES), size=4 + i % 2))
        out.append(compose(rng, 64, DOMAINS[domains[i % len(domains)]], fines, main=False, n_clutter=3))
    return out


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def test_registry_lists_upstream_and_downstream_datasets() -> None:
    assert list_datasets(upstream=True) == UPSTREAM
    assert list_datasets(upstream=False) == DOWNSTREAM
    for name in list_datasets():
        spec = get_dataset(name)
        if spec.upstream:
            assert set(spec.domains) <= set(UPSTREAM_DOMAINS) and spec.sizes["train"] >= 2000
        else:
            assert set(spec.domains) <= set(DOWNSTREAM_DOMAINS)
            assert (spec.sizes["train"], spec.sizes["test"]) == (1000, 500)
    assert not set(UPSTREAM_DOMAINS) & set(DOWNSTREAM_DOMAINS)
    with pytest.raises(KeyError, match="world_cls_fine"):
        get_dataset("world_nope")
    with pytest.raises(ValueError, match="split"):
        make_sample("world_cls_fine", "dev", 0)


def test_label_spaces_differ_in_granularity_and_categories() -> None:
    spaces = {
        n: get_dataset(n).label_space for n in list_datasets() if get_dataset(n).label_space is not None
    }
    assert len(spaces["world_cls_fine"]) == 24 and len(spaces["world_cls_coarse"]) == 6
    assert spaces["world_cls_attr"].classes == (
        "solid",
        "striped",
        "spotted",
        "checkered",
        "ringed",
        "graded",
    )
    assert spaces["world_det_a"].classes[0] == spaces["world_det_b"].classes[0] == "background"
    assert set(spaces["world_det_a"].classes[1:]).isdisjoint(spaces["world_det_b"].classes[1:])
    upstream = {s.classes for n, s in spaces.items() if get_dataset(n).upstream}
    for name in DOWNSTREAM:
        if name in spaces:
            assert spaces[name].classes not in upstream, name
    seen = {FINES[f].name for n in UPSTREAM for f in get_dataset(n).fines}
    for name in ("gvb_world_cls", "gvb_world_fine"):
        novel = set(spaces[name].classes) - seen
        assert novel and novel != set(spaces[name].classes), name  # some categories new, some not
    assert "clutter" in spaces["gvb_world_seg"].classes


@pytest.mark.parametrize("name", UPSTREAM + DOWNSTREAM)
def test_samples_are_valid_and_carry_exactly_their_supervision(name: str) -> None:
    spec = get_dataset(name)
    keys = set(REQUIRED_KEYS) | {"__key__"}
    keys |= {"boxes", "box_labels"} if "boxes" in spec.supervision else set()
    keys |= set(spec.supervision) - {"boxes"}
    keys |= {"label_space"} if spec.label_space is not None else set()
    samples = list(generate(name, "val", 12))
    assert len({s["__key__"] for s in samples}) == 12
    for s in samples:
        validate_sample(s)
        assert set(s) == keys and s["source"] == name
        assert s["image"].shape == (3, 64, 64)
        if spec.label_space is not None:
            assert s["label_space"] == spec.label_space.name
            n = len(spec.label_space)
        if "label" in s:
            assert 0 <= s["label"] < n
        if "boxes" in s:
            boxes = s["boxes"]
            assert bool((boxes[:, 2:] <= 64).all()) and bool((boxes[:, 2:] > boxes[:, :2]).all())
            assert bool(((s["box_labels"] >= 1) & (s["box_labels"] < n)).all())  # 0 is background
        if "mask" in s:
            assert int(s["mask"].min()) >= 0 and int(s["mask"].max()) < n
        if "depth" in s:
            depth = s["depth"]
            assert (
                bool(torch.isfinite(depth).all())
                and bool((depth >= 0).all())
                and float(depth.max()) <= MAX_DEPTH
            )
            assert bool((depth > 0).any())
        if "text" in s:
            assert len(s["text"]) == 2 and all(t.strip() for t in s["text"])
    if "boxes" in spec.supervision:
        assert sum(len(s["boxes"]) for s in samples) >= 12


def test_classification_labels_cycle_so_prefixes_are_balanced() -> None:
    spec = get_dataset("world_cls_coarse")
    labels = [s["label"] for s in generate("world_cls_coarse", "train", 2 * len(spec.fines))]
    assert np.bincount(labels).tolist() == [2 * len(spec.fines) // 6] * 6


def test_same_seed_same_bytes_for_any_subset_and_order() -> None:
    for name in ("world_seg", "world_captions", "gvb_world_det"):
        run = list(generate(name, "train", 6, seed=3))
        alone = [make_sample(name, "train", i, seed=3) for i in reversed(range(6))][::-1]
        shard = list(generate(name, "train", 3, seed=3, start=3))
        assert all(_same(a, b) for a, b in zip(run, alone, strict=True))
        assert all(_same(a, b) for a, b in zip(run[3:], shard, strict=True))
        other_seed = make_sample(name, "train", 0, seed=4)
        other_split = make_sample(name, "test", 0, seed=3)
        assert not torch.equal(run[0]["image"], other_seed["image"])
        assert not torch.equal(run[0]["image"], other_split["image"])


def test_img_size_scales_the_whole_sample() -> None:
    s = make_sample("world_seg", "train", 0, img_size=32)
    validate_sample(s)
    assert s["image"].shape == (3, 32, 32) and s["mask"].shape == s["depth"].shape == (32, 32)


def test_boxes_are_tight_around_visible_pixels_and_follow_the_occlusion_rule() -> None:
    dropped = 0
    for scene in _scenes(40):
        for k, thing in enumerate(scene.things):
            if thing.fine < 0:
                assert thing.box is None
                continue
            visible = scene.instances == k
            if thing.box is None:
                dropped += int(visible.any())
                assert thing.visible < max(4, MIN_VISIBLE * thing.cover.sum())
                continue
            assert thing.visible >= MIN_VISIBLE * thing.cover.sum()
            x0, y0, x1, y1 = (int(v) for v in thing.box)
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            inside = np.zeros_like(visible)
            inside[y0:y1, x0:x1] = True
            assert not (visible & ~inside).any()  # every pixel of the object lies in its box
            assert (
                visible[y0].any()
                and visible[y1 - 1].any()
                and visible[:, x0].any()
                and visible[:, x1 - 1].any()
            )
    assert dropped > 0  # the rule was exercised


@pytest.mark.parametrize("name", ["world_det_a", "world_seg", "gvb_world_seg"])
def test_sample_boxes_and_masks_come_from_the_scene(name: str) -> None:
    spec = get_dataset(name)
    for index in range(15):
        sample, scene = make_sample(name, "train", index), make_scene(name, "train", index)
        boxed = [(k, t) for k, t in enumerate(scene.things) if t.box is not None]
        if "boxes" in sample:
            assert sample["boxes"].tolist() == [list(t.box) for _, t in boxed]
            assert sample["box_labels"].tolist() == [spec.class_of(t.fine) for _, t in boxed]
        if "mask" not in sample:
            continue
        mask = sample["mask"].numpy()
        for k, thing in enumerate(scene.things):
            own = scene.instances == k
            assert (mask[own] == spec.class_of(thing.fine)).all()
            if thing.box is not None:  # an object's mask pixels lie inside its box
                x0, y0, x1, y1 = (int(v) for v in thing.box)
                assert own.sum() == own[y0:y1, x0:x1].sum()
        assert (mask[scene.instances < 0] == 0).all()
        assert bool((sample["depth"][sample["mask"] > 0] > 0).all()) if "depth" in sample else True


def test_nearest_object_owns_each_pixel_and_sets_its_depth() -> None:
    overlaps = 0
    for scene in _scenes(30):
        surfaces = np.full((len(scene.things), 64, 64), np.inf, np.float32)
        for k, thing in enumerate(scene.things):
            y0, y1, x0, x1 = thing.window
            if y1 > y0 and x1 > x0:
                surfaces[k, y0:y1, x0:x1] = np.where(thing.cover, thing.surface, np.inf)
        covered = np.isfinite(surfaces)
        nearest = surfaces.min(axis=0)
        owner = np.where(covered.any(axis=0), surfaces.argmin(axis=0), -1)
        np.testing.assert_array_equal(scene.instances, owner)
        on_objects = owner >= 0
        np.testing.assert_array_equal(scene.depth[on_objects], nearest[on_objects])
        overlaps += int((covered.sum(axis=0) >= 2).sum())
    assert overlaps > 100


def test_depth_is_ground_geometry_behind_the_objects() -> None:
    for scene in _scenes(12):
        cam, depth, free = scene.camera, scene.depth, scene.instances < 0
        rows = np.arange(64)[:, None] + 0.5 + np.zeros((1, 64))
        limit = cam.horizon if cam.wall is None else cam.ground_row(cam.wall)
        ground = free & (rows > limit)
        expected = np.minimum(cam.height * cam.focal / (rows - cam.horizon), MAX_DEPTH)
        np.testing.assert_allclose(depth[ground], expected[ground], rtol=1e-4)
        backdrop = free & (rows <= limit)
        np.testing.assert_array_equal(depth[backdrop], 0.0 if cam.wall is None else np.float32(cam.wall))
        assert bool((depth[~free] > 0).all())


def test_captions_describe_visible_objects_with_synonyms() -> None:
    rng = np.random.default_rng(1)
    words_used = set()
    for scene in _scenes(30):
        text = captions(rng, scene)
        boxed = [t for t in scene.things if t.box is not None]
        names = {w for t in boxed for w in (*FINES[t.fine].words, *FINES[t.fine].super.words)}
        if boxed:
            assert any(n in text[0] for n in names), (text, names)
        words_used |= set(text[0].split())
    assert {"red", "scarlet", "crimson"} & words_used and len(words_used) > 60


def test_downstream_domains_change_image_statistics() -> None:
    def mean_image(name: str) -> np.ndarray:
        return (
            torch.stack([s["image"] for s in generate(name, "val", 40)]).float().mean(dim=(0, 2, 3)).numpy()
        )

    upstream, night_and_sea = mean_image("world_cls_fine"), mean_image("gvb_world_cls")
    assert np.abs(upstream - night_and_sea).max() > 20  # grey levels out of 255


# ---------------------------------------------------------------------------------------------------
# The world is a fair test of pretraining (slow: generation, tiny-model training, linear probes).

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def _load(name: str, split: str, count: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    samples = list(generate(name, split, count))
    return torch.stack([s["image"] for s in samples]), np.array([s["label"] for s in samples])


def _probe(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train[0])
    clf = LogisticRegression(C=0.3, max_iter=1000).fit(scaler.transform(train[0]), train[1])
    return float(clf.score(scaler.transform(test[0]), test[1]))


def _train(images: torch.Tensor, labels: np.ndarray, steps: int, num_classes: int) -> torch.nn.Module:
    """Plain supervised training of the tiny registered MetaNet (AdamW, one-cycle, flips)."""
    import intern_arch

    torch.manual_seed(0)
    model = intern_arch.create_model("mnb_test", num_classes=num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps, pct_start=0.15)
    targets = torch.as_tensor(labels)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(images), (64,), generator=gen)
        x = (images[idx].float() - MEAN) / STD
        x = torch.where(torch.rand(64, 1, 1, 1, generator=gen) < 0.5, x.flip(-1), x)
        loss = torch.nn.functional.cross_entropy(model(x), targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def _features(model: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    chunks = [(images[i : i + 250].float() - MEAN) / STD for i in range(0, len(images), 250)]
    return torch.cat([model.forward_head(model.forward_features(x), pre_logits=True) for x in chunks]).numpy()


@torch.no_grad()
def _accuracy(model: torch.nn.Module, images: torch.Tensor, labels: np.ndarray) -> float:
    logits = model((images.float() - MEAN) / STD)
    return float((logits.argmax(1).numpy() == labels).mean())


@pytest.mark.slow
def test_raw_pixels_are_far_from_enough_for_the_fine_grained_task() -> None:
    train, test = _load("gvb_world_fine", "train"), _load("gvb_world_fine", "test")
    acc = _probe(
        (train[0].flatten(1).numpy() / 255.0, train[1]), (test[0].flatten(1).numpy() / 255.0, test[1])
    )
    chance = 1 / len(get_dataset("gvb_world_fine").label_space)
    print(f"raw-pixel logistic regression on gvb_world_fine: {acc:.3f} (chance {chance:.3f})")
    assert 1.5 * chance < acc < 0.6


@pytest.mark.slow
def test_upstream_pretraining_transfers_and_downstream_tasks_are_data_hungry() -> None:
    """The tiny registered MetaNet trained with plain torch: 300 steps on world_cls_fine at 64 px."""
    import intern_arch

    up_images, up_labels = _load("world_cls_fine", "train", 3000)
    num_classes = len(get_dataset("world_cls_fine").label_space)
    pretrained = _train(up_images, up_labels, 300, num_classes)
    torch.manual_seed(1)
    random_init = intern_arch.create_model("mnb_test", num_classes=num_classes).eval()
    data, results = {}, {}
    for task in ("gvb_world_cls", "gvb_world_fine"):
        data[task] = (xtr, ytr), (xte, yte) = _load(task, "train"), _load(task, "test")
        for tag, model in (("pretrained", pretrained), ("random", random_init)):
            results[task, tag] = _probe((_features(model, xtr), ytr), (_features(model, xte), yte))
    print({f"{t}/{m}": round(a, 3) for (t, m), a in results.items()})
    # Measured over data/torch seeds 0-2: margins of 23-28 points (cls) and 14-23 points (fine).
    assert results["gvb_world_cls", "pretrained"] >= results["gvb_world_cls", "random"] + 0.15
    assert results["gvb_world_fine", "pretrained"] >= results["gvb_world_fine", "random"] + 0.10

    # Data hunger: from scratch on 10% against 100% of gvb_world_cls, the same number of steps
    # (at 32 px, the images pooled 2x, to fit CPU time).
    (xtr, ytr), (xte, yte) = data["gvb_world_cls"]
    xtr, xte = (torch.nn.functional.avg_pool2d(x.float(), 2).round().to(torch.uint8) for x in (xtr, xte))
    k = len(get_dataset("gvb_world_cls").label_space)
    tenth = _accuracy(_train(xtr[:100], ytr[:100], 200, k), xte, yte)
    full = _accuracy(_train(xtr, ytr, 200, k), xte, yte)
    print(f"gvb_world_cls from scratch: 10% {tenth:.3f}, 100% {full:.3f}")
    assert full >= tenth + 0.15  # measured: 29-33 points
