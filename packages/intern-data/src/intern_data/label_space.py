"""A dataset's label space: its name and ordered class names (class index = position)."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LabelSpace:
    """Ordered class names of one dataset or head, e.g. ``LabelSpace("voc", ("background", ...))``."""

    name: str
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.classes)) != len(self.classes):
            dupes = sorted({c for c in self.classes if self.classes.count(c) > 1})
            raise ValueError(f"label space {self.name!r} repeats classes {dupes}")

    def __len__(self) -> int:
        return len(self.classes)

    def index(self, name: str) -> int:
        """Class index of ``name``; a clear error names the label space when it is unknown."""
        try:
            return self.classes.index(name)
        except ValueError:
            raise KeyError(f"class {name!r} is not in label space {self.name!r}") from None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "classes": list(self.classes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LabelSpace":
        return cls(data["name"], tuple(data["classes"]))
