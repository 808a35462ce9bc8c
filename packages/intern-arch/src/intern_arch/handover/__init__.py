"""Hand-over folders: the backbone and its named parts (neck, heads, text side), written and read with
intern-arch alone."""

from .folder import HANDOVER_VERSION, Handover, PartSpec, load_handover, save_handover
from .parts import PART_KINDS, PartKind

__all__ = [
    "HANDOVER_VERSION",
    "PART_KINDS",
    "Handover",
    "PartKind",
    "PartSpec",
    "load_handover",
    "save_handover",
]
