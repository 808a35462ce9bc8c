"""Necks: the pyramid adapter and FPN that dense heads take a backbone through."""

from .fpn import FPN, PyramidAdapter

__all__ = ["FPN", "PyramidAdapter"]
