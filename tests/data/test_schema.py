"""The sample schema accepts every supervision type and names the key of any violation."""

import pytest
import torch

from intern_data.label_space import LabelSpace
from intern_data.schema import SampleError, validate_sample


def _full_sample() -> dict:
    return {
        "__key__": "s0",
        "source": "world",
        "image": torch.zeros(3, 8, 10, dtype=torch.uint8),
        "text": ["a red ball"],
        "label": 2,
        "label_space": "world_fine",
        "boxes": torch.tensor([[0.0, 1.0, 4.0, 5.0]]),
        "box_labels": torch.tensor([1]),
        "mask": torch.zeros(8, 10, dtype=torch.int64),
        "depth": torch.ones(8, 10),
        "proposals": torch.tensor([[0.0, 0.0, 10.0, 8.0]]),
    }


def test_full_sample_is_valid() -> None:
    sample = _full_sample()
    assert validate_sample(sample) is sample


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda s: s.pop("image"), "image"),
        (lambda s: s.update(image=torch.zeros(8, 10, 3, dtype=torch.uint8)), "image"),
        (lambda s: s.update(label=-1), "label"),
        (lambda s: s.update(label=True), "label"),
        (lambda s: s.pop("label_space"), "label_space"),
        (lambda s: s.update(text="a red ball"), "text"),
        (lambda s: s.pop("box_labels"), "box_labels"),
        (lambda s: s.update(boxes=torch.tensor([[4.0, 1.0, 0.0, 5.0]])), "boxes"),
        (lambda s: s.update(mask=torch.zeros(8, 9, dtype=torch.int64)), "mask"),
        (lambda s: s.update(depth=torch.ones(8, 10, dtype=torch.float64)), "depth"),
        (lambda s: s.update(caption=["x"]), "caption"),
        (lambda s: s.update(label=None), "label"),
    ],
)
def test_violations_name_the_sample_and_key(change, key: str) -> None:
    sample = _full_sample()
    change(sample)
    with pytest.raises(SampleError, match=rf"sample 's0': key '{key}'"):
        validate_sample(sample)


def test_label_space_round_trip_and_errors() -> None:
    space = LabelSpace("voc", ("background", "cat"))
    assert LabelSpace.from_json(space.to_json()) == space
    assert space.index("cat") == 1 and len(space) == 2
    with pytest.raises(KeyError, match="'dog' is not in label space 'voc'"):
        space.index("dog")
    with pytest.raises(ValueError, match=r"repeats classes \['cat'\]"):
        LabelSpace("bad", ("cat", "cat"))
