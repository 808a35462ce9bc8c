"""GV-D: the INTERN data system (sample schema, shards, readers, labels, splits, embedded world)."""

__version__ = "0.1.0"
