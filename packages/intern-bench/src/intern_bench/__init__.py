"""GV-B: the INTERN downstream benchmark (tasks, protocols, metrics, runner, reports).

Importing it registers the ``bench_model`` resolver that names bench run folders (:mod:`.run_name`).
"""

from intern_bench.run_name import register_resolver

__version__ = "0.1.0"

register_resolver()
