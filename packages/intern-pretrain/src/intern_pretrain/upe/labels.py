"""The label spaces of an expert's sources, merged by the label system (paper 6.1, Table 15b).

Class names are mapped onto concepts of the world's taxonomy (fine categories under their
super-category, textures) plus ``background`` and ``clutter``, so ``background`` is one class when
the spaces are unified and a fine class and its super-category stay two classes (the parent/child
conflict of the unified space). A name no concept matches (a real dataset's class without a mapping)
stays a class of its own source: it is never merged.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from intern_data.label_space import LabelSpace
from intern_data.labels import Concept, Taxonomy, build_taxonomy, map_label_space
from intern_data.labels.merge import MODES, MergedLabels, merge_label_spaces
from intern_data.labels.world import world_concepts
from intern_pretrain.core import StageConfigError

__all__ = ["BACKGROUND", "merged_labels"]

BACKGROUND = "background"


@cache
def _taxonomy() -> Taxonomy:
    own = [Concept(BACKGROUND, BACKGROUND), Concept("clutter", "clutter")]
    return build_taxonomy(extra=[*world_concepts(), *own], use_wordnet=False)


def merged_labels(spaces: Mapping[str, LabelSpace], mode: str, dense: bool = False) -> MergedLabels:
    """The heads of an expert over ``spaces`` (source name -> its label space) in ``mode``.

    ``dense`` (detection, segmentation): every space starts with ``background``, which stays class 0
    of a merged head.

    Raises:
        StageConfigError: an unknown mode, or a dense source without ``background`` first.
    """
    if mode not in MODES:
        raise StageConfigError(
            f"stage.data.label_space={mode!r} is not a label-space mode ({', '.join(MODES)})"
        )
    if dense:
        wrong = [name for name, space in spaces.items() if space.classes[:1] != (BACKGROUND,)]
        if wrong:
            raise StageConfigError(
                f"sources {wrong} have no '{BACKGROUND}' class first, which a dense expert needs"
            )
    mappings = [
        map_label_space(_taxonomy(), LabelSpace(name, space.classes)) for name, space in spaces.items()
    ]
    return merge_label_spaces(mappings, mode)  # type: ignore[arg-type]
