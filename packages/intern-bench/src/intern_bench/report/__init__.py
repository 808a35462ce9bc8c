"""GV-B reports: Table 1, the Figure 1 gain chart, Figure 10 data-regime curves, Figure 12 t-SNE maps.

=====================  =====================================================================
``tables``             Table 1 pivot (models x tasks, 10% and 100% side by side) as Markdown / HTML
``bars``               Figure 1: per task, each model's gain over a baseline model at one split
``curves``             Figure 10: a task's metric against percent-shot and N-shot regimes
``tsne``               Figure 12: t-SNE map of features coloured by label
``render``             ``render_report``: all of the above from a folder of ``result.json`` files
``cli``                ``report_main``: ``python -m intern_bench report RESULTS_ROOT ...``
=====================  =====================================================================

Figures are drawn on bare matplotlib ``Figure`` objects (Agg), never through pyplot.
"""

from intern_bench.report.cli import report_main
from intern_bench.report.render import NoResultsError, render_report
from intern_bench.report.tsne import tsne_plot

__all__ = ["NoResultsError", "render_report", "report_main", "tsne_plot"]
