"""GV-A search, the training side (INTERN paper 4.3-4.4): proxy training of sampled architectures
(cached, parallel), the search loop with its log and resume, top-k retraining, scaling, figures.
The space, controller, PPO and reward are intern-arch's (``intern_arch.search``)."""

from .evaluator import ProxyEvaluator
from .family import ScalingSettings, retrain_top_k, scale_family, top_k, write_family
from .loop import POLICIES, SearchSettings, read_log, run_search
from .proxy import ProxyData, ProxyResult, ProxySettings, load_proxy_data, proxy_key, train_proxy
from .report import pareto_front, plot_pareto, plot_rewards

__all__ = [
    "POLICIES",
    "ProxyData",
    "ProxyEvaluator",
    "ProxyResult",
    "ProxySettings",
    "ScalingSettings",
    "SearchSettings",
    "load_proxy_data",
    "pareto_front",
    "plot_pareto",
    "plot_rewards",
    "proxy_key",
    "read_log",
    "retrain_top_k",
    "run_search",
    "scale_family",
    "top_k",
    "train_proxy",
    "write_family",
]
