"""Up-A-G's tiny settings for the pretrain tests (the in-process runner is ``run_pretrain`` of
tests/conftest.py)."""

from ..conftest import UPA_G_TINY

__all__ = ["UPA_G_TINY"]
