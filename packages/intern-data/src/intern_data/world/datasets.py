"""The named upstream datasets and downstream GV-B tasks of the embedded world.

=================  ==============  =====================================  ========================
dataset            supervision     label space (classes)                  domains
=================  ==============  =====================================  ========================
world_captions     text            -                                      studio meadow indoor desert
world_cls_fine_a   label           12 fine (flower, gem, ring)            studio meadow
world_cls_fine_b   label           16 fine (ring, fish, tower, spinner)   indoor desert
world_cls_coarse   label           6 super-categories (fine 0-4 of each)  meadow desert indoor
world_det_a        boxes           background + 4 super-categories        meadow studio
world_det_b        boxes           background + 16 fine categories        desert indoor
world_seg_things   mask            background + 4 supers (no clutter)     studio meadow
world_seg_scenes   mask            background + 4 supers + clutter        indoor desert
world_cls_fine     label           24 seen fine categories                studio meadow indoor
world_cls_attr     label           6 texture patterns                     all four upstream
world_seg          mask, depth     background + 6 super-categories        all four upstream
gvb_world_cls      label           18 fine (3 per super, 2 of them new)   night underwater fog
gvb_world_fine     label           12 fine of flower and fish (4 new)     sketch
gvb_world_det      boxes           background + 4 super-categories        underwater night
gvb_world_seg      mask            background + 6 supers + clutter        fog night
gvb_world_depth    depth           -                                      underwater fog
=================  ==============  =====================================  ========================

The upstream sources of each task type complement each other as real collections do (paper 6.1,
Tables 14, 16, 18): each covers some super-categories in some domains with its own label space and
granularity. Classification: ``world_cls_fine_a`` and ``world_cls_fine_b`` share the ring's fine
categories under the same names, ``world_cls_coarse`` names every super-category (a parent of the
fine classes); detection: ``world_det_a`` says ``ring`` and ``fish`` where ``world_det_b`` names
their fine categories; segmentation: ``world_seg_things`` and ``world_seg_scenes`` share ``ring`` and
``fish``, and only the scenes label clutter (the things source leaves it background, as COCO's thing
masks leave stuff). So natural, unified and partially merged label spaces differ, and every GV-B
world task needs concepts of more than one source, in domains none of them shows. ``world_cls_fine``
(the union of the fine sources' categories), ``world_cls_attr`` and ``world_seg`` (with depth) are
single collections that hold everything; Up-A's probe and the earlier experiments use them.

Sample ``i`` of (dataset, split, seed) comes from its own generator seeded by all four, so any
subset or shard can be regenerated alone and comes out byte-identical. Classification datasets
cycle through their classes by index, so every prefix is class-balanced. Boxes follow the box rule
of ``scene`` (mostly hidden objects get none); masks label every visible pixel of an object."""

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ..label_space import LabelSpace
from ..schema import Sample
from .captions import captions
from .categories import FINES, SUPERS, TEXTURES, fines_of
from .domains import DOMAINS, DOWNSTREAM_DOMAINS, UPSTREAM_DOMAINS
from .scene import Scene, compose

SPLITS = ("train", "val", "test")
SUPERVISION = ("text", "label", "boxes", "mask", "depth")
_ALL_SUPERS = tuple(range(len(SUPERS)))
_SEEN = tuple(f.id for f in FINES if f.seen)


@dataclass(frozen=True)
class WorldDataset:
    """A named dataset of the world: its task, label space, domains, categories and default sizes.

    ``grouping`` maps a fine category to a class name (``fine``: its own name, ``super``: its
    super-category, ``texture``: its pattern); ``label_space`` lists those names (with
    ``background`` first for boxes and masks). ``supervision`` names the keys every sample carries.
    """

    name: str
    task: str
    supervision: tuple[str, ...]
    domains: tuple[str, ...]
    fines: tuple[int, ...]
    grouping: str = "fine"
    label_space: LabelSpace | None = None
    objects: tuple[int, int] = (1, 1)
    clutter: tuple[int, int] = (0, 3)
    sizes: dict[str, int] = field(default_factory=lambda: {"train": 4000, "val": 500, "test": 500})
    img_size: int = 64
    upstream: bool = True

    def class_name(self, fine: int) -> str:
        return self._group(fine)[1]

    def _group(self, fine: int) -> tuple[int, str]:
        """(canonical order, class name) of fine category ``fine`` under this dataset's grouping."""
        cat = FINES[fine]
        if self.grouping == "super":
            return cat.super_id, cat.super.name
        if self.grouping == "texture":
            return cat.texture, TEXTURES[cat.texture].name
        return cat.id, cat.name

    def class_of(self, fine: int) -> int:
        """Class index of fine category ``fine`` (-1 for clutter) in this dataset's label space."""
        assert self.label_space is not None, f"{self.name} has no label space"
        if fine < 0:
            return self.label_space.index("clutter") if "clutter" in self.label_space.classes else 0
        return self.label_space.index(self.class_name(fine))


def _build(
    name: str,
    task: str,
    supervision: tuple[str, ...],
    fines: tuple[int, ...],
    grouping: str = "fine",
    dense: bool = False,
    extra: tuple[str, ...] = (),
    **kw,
) -> WorldDataset:
    """A spec whose label space lists its classes in canonical order (``background`` first if ``dense``)."""
    assert set(supervision) <= set(SUPERVISION), supervision
    spec = WorldDataset(name, task, supervision, fines=fines, grouping=grouping, **kw)
    if not {"label", "boxes", "mask"} & set(supervision):
        return spec
    names = tuple(n for _, n in sorted({spec._group(f) for f in fines}))
    space = LabelSpace(name, (("background",) if dense else ()) + names + extra)
    return WorldDataset(name, task, supervision, fines=fines, grouping=grouping, label_space=space, **kw)


_DOWN = {"sizes": {"train": 1000, "val": 200, "test": 500}, "upstream": False}
_MULTI = {"objects": (1, 4), "clutter": (0, 4)}
_CLS, _DET, _SEG = ("label",), ("boxes",), ("mask",)
REGISTRY: dict[str, WorldDataset] = {
    d.name: d
    for d in (
        # Upstream: photo-like domains, the seen fine categories (plus fine category 4 for coarse labels).
        _build("world_captions", "image-text", ("text",), _SEEN, domains=UPSTREAM_DOMAINS, objects=(1, 3)),
        _build("world_cls_fine", "classification", _CLS, _SEEN, domains=("studio", "meadow", "indoor")),
        _build("world_cls_fine_a", "classification", _CLS, fines_of((0, 1, 2), range(4)),
               domains=("studio", "meadow")),
        _build("world_cls_fine_b", "classification", _CLS, fines_of((2, 3, 4, 5), range(4)),
               domains=("indoor", "desert")),
        _build("world_cls_coarse", "classification", _CLS, fines_of(_ALL_SUPERS, (0, 1, 2, 3, 4)),
               grouping="super", domains=("meadow", "desert", "indoor")),
        _build("world_cls_attr", "classification", _CLS, _SEEN, grouping="texture", domains=UPSTREAM_DOMAINS),
        _build("world_det_a", "detection", _DET, fines_of((0, 1, 2, 3), range(4)), grouping="super",
               dense=True, domains=("meadow", "studio"), **_MULTI),
        _build("world_det_b", "detection", _DET, fines_of((2, 3, 4, 5), range(4)), dense=True,
               domains=("desert", "indoor"), **_MULTI),
        _build("world_seg", "segmentation", ("mask", "depth"), _SEEN, grouping="super", dense=True,
               domains=UPSTREAM_DOMAINS, **_MULTI),
        _build("world_seg_things", "segmentation", _SEG, fines_of((0, 1, 2, 3), range(4)), grouping="super",
               dense=True, domains=("studio", "meadow"), **_MULTI),
        _build("world_seg_scenes", "segmentation", _SEG, fines_of((2, 3, 4, 5), range(4)), grouping="super",
               dense=True, extra=("clutter",), domains=("indoor", "desert"), **_MULTI),
        # Downstream (GV-B): shifted domains, new label spaces, new fine categories among the old.
        _build("gvb_world_cls", "classification", _CLS, fines_of(_ALL_SUPERS, (3, 4, 5)),
               domains=("night", "underwater", "fog"), **_DOWN),
        _build("gvb_world_fine", "classification", _CLS, fines_of((0, 3)), domains=("sketch",), **_DOWN),
        _build("gvb_world_det", "detection", _DET, fines_of((1, 3, 4, 5)), grouping="super", dense=True,
               domains=("underwater", "night"), **_MULTI, **_DOWN),
        _build("gvb_world_seg", "segmentation", _SEG, fines_of(_ALL_SUPERS), grouping="super", dense=True,
               extra=("clutter",), domains=("fog", "night"), **_MULTI, **_DOWN),
        _build("gvb_world_depth", "depth", ("depth",), fines_of(_ALL_SUPERS), domains=("underwater", "fog"),
               **_MULTI, **_DOWN),
    )
}  # fmt: skip
assert all(set(d.domains) <= set(DOMAINS) for d in REGISTRY.values())
assert all(set(d.domains) <= set(UPSTREAM_DOMAINS) for d in REGISTRY.values() if d.upstream)
assert all(set(d.domains) <= set(DOWNSTREAM_DOMAINS) for d in REGISTRY.values() if not d.upstream)


def list_datasets(upstream: bool | None = None) -> list[str]:
    """Names of the registered datasets, optionally only the upstream (or only the downstream) ones."""
    return [n for n, d in REGISTRY.items() if upstream is None or d.upstream == upstream]


def get_dataset(name: str) -> WorldDataset:
    """The spec of dataset ``name``; a clear error lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown world dataset {name!r}; known: {', '.join(REGISTRY)}") from None


def sample_rng(name: str, split: str, index: int, seed: int) -> np.random.Generator:
    """The generator of one sample, seeded by (dataset, split, index, seed) alone."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return np.random.default_rng([seed, zlib.crc32(name.encode()), SPLITS.index(split), index])


def _render(spec: WorldDataset, rng: np.random.Generator, index: int, size: int) -> tuple[Scene, int]:
    """The scene of one sample and its subject's fine category (the labelled object of a classification)."""
    domain = DOMAINS[spec.domains[rng.integers(len(spec.domains))]]
    classification = spec.task == "classification"
    if classification:
        fines = [spec.fines[index % len(spec.fines)]]
        if rng.random() < 0.3:
            fines.append(spec.fines[rng.integers(len(spec.fines))])
    else:
        count = rng.integers(*spec.objects, endpoint=True)
        fines = [spec.fines[i] for i in rng.integers(len(spec.fines), size=count)]
    n_clutter = int(rng.integers(*spec.clutter, endpoint=True))
    return compose(rng, size, domain, fines, main=classification, n_clutter=n_clutter), fines[0]


def make_scene(name: str, split: str, index: int, seed: int = 0, img_size: int | None = None) -> Scene:
    """The scene behind ``make_sample`` with the same arguments (objects, instance map, camera)."""
    spec = get_dataset(name)
    return _render(spec, sample_rng(name, split, index, seed), index, img_size or spec.img_size)[0]


def make_sample(name: str, split: str, index: int, seed: int = 0, img_size: int | None = None) -> Sample:
    """Sample ``index`` of ``split`` of dataset ``name``, carrying every supervision the dataset declares."""
    spec = get_dataset(name)
    rng = sample_rng(name, split, index, seed)
    scene, subject = _render(spec, rng, index, img_size or spec.img_size)
    sample: Sample = {
        "__key__": f"{split}-{seed}-{index:07d}",
        "source": name,
        "image": torch.from_numpy(scene.image),
    }
    if "text" in spec.supervision:
        sample["text"] = captions(rng, scene)
    if spec.label_space is not None:
        sample["label_space"] = spec.label_space.name
    if "label" in spec.supervision:
        sample["label"] = spec.class_of(subject)
    if "boxes" in spec.supervision:
        boxed = [t for t in scene.things if t.box is not None]
        sample["boxes"] = torch.tensor([t.box for t in boxed], dtype=torch.float32).reshape(-1, 4)
        sample["box_labels"] = torch.tensor([spec.class_of(t.fine) for t in boxed], dtype=torch.int64)
    if "mask" in spec.supervision:
        lut = np.array([0] + [spec.class_of(t.fine) for t in scene.things], np.int64)
        sample["mask"] = torch.from_numpy(lut[scene.instances.astype(np.int64) + 1])
    if "depth" in spec.supervision:
        sample["depth"] = torch.from_numpy(scene.depth)
    return sample


def generate(
    name: str,
    split: str,
    count: int | None = None,
    seed: int = 0,
    img_size: int | None = None,
    start: int = 0,
) -> Iterator[Sample]:
    """Samples ``start`` .. ``start + count`` of a split (``count`` defaults to the split's size)."""
    spec = get_dataset(name)
    stop = start + (spec.sizes[split] if count is None else count)
    for index in range(start, stop):
        yield make_sample(name, split, index, seed, img_size)
