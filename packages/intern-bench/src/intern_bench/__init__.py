"""GV-B: the INTERN downstream benchmark (tasks, protocols, metrics, runner, reports)."""

__version__ = "0.1.0"
