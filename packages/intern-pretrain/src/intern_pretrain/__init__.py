"""INTERN upstream pretraining: the Up-A, Up-E and Up-G stages."""

__version__ = "0.1.0"
