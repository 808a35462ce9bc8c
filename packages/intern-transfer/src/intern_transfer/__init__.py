"""Adapting an INTERN backbone to a downstream task: frozen probe, fine-tuning and Down-A."""

__version__ = "0.1.0"
