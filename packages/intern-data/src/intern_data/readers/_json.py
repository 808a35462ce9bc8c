"""Loading and checking the COCO-style JSON shared by the iNaturalist and COCO readers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from intern_data.label_space import LabelSpace
from intern_data.readers.base import ReaderError, require_file


def load_json(path: Path, what: str, required: tuple[str, ...]) -> dict[str, Any]:
    """Read ``path`` (a JSON object with the ``required`` lists); errors name the file."""
    require_file(path, what)
    try:
        with path.open("rb") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReaderError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ReaderError(f"{path}: expected a JSON object with {', '.join(required)}")
    for key in required:
        if not isinstance(data.get(key), list):
            raise ReaderError(f"{path}: missing the {key!r} list")
    return data


def category_space(
    path: Path, categories: list[dict[str, Any]], name: str
) -> tuple[LabelSpace, dict[int, int]]:
    """Contiguous label space from a ``categories`` list, ordered by category id.

    Returns the label space and ``category id -> class index``. Repeated names get `` (id N)``
    appended so every class stays distinct; a repeated id is an error.
    """
    cats = []
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise ReaderError(f"{path}: categories[{i}] needs 'id' and 'name'")
        cats.append((int(cat["id"]), str(cat["name"]).strip()))
    cats.sort()
    ids = [c for c, _ in cats]
    if len(set(ids)) != len(ids):
        dupes = sorted({c for c in ids if ids.count(c) > 1})
        raise ReaderError(f"{path}: category ids repeat: {dupes[:10]}")
    names = [n for _, n in cats]
    repeated = {n for n in names if names.count(n) > 1}
    classes = tuple(f"{n} (id {c})" if n in repeated else n for c, n in cats)
    return LabelSpace(name, classes), {c: i for i, c in enumerate(ids)}
