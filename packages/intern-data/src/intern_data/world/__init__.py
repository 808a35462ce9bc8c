"""The embedded world: a seeded procedural generator of scenes with every supervision type.

``generate("world_cls_fine", "train")`` yields schema samples; ``list_datasets()`` names the upstream
datasets and downstream GV-B tasks; ``get_dataset(name)`` gives a spec with its label space, task
and domains.
"""

from .cache import cache_folder, world_shards
from .categories import FINES, PALETTES, SUPERS, TEXTURES, FineCategory, SuperCategory
from .datasets import REGISTRY, WorldDataset, generate, get_dataset, list_datasets, make_sample, make_scene
from .domains import DOMAINS, DOWNSTREAM_DOMAINS, UPSTREAM_DOMAINS, Domain
from .scene import MIN_VISIBLE, Scene, compose

__all__ = [
    "DOMAINS",
    "DOWNSTREAM_DOMAINS",
    "FINES",
    "MIN_VISIBLE",
    "PALETTES",
    "REGISTRY",
    "SUPERS",
    "TEXTURES",
    "UPSTREAM_DOMAINS",
    "Domain",
    "FineCategory",
    "Scene",
    "SuperCategory",
    "WorldDataset",
    "cache_folder",
    "compose",
    "generate",
    "get_dataset",
    "list_datasets",
    "make_sample",
    "make_scene",
    "world_shards",
]
