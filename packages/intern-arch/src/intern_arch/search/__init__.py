"""GV-A's architecture search as library parts (INTERN paper 4.3): the space, the controller and its
PPO optimiser, the reward, and depth/width scaling. Pure torch; the proxy training that feeds the
rewards lives in intern-pretrain (``python -m intern_pretrain stage=search``)."""

from .controller import Controller
from .ppo import PPO, PPOSettings
from .reward import mnas_reward
from .scaling import ScaledCandidate, fit_width, scale_metanet
from .space import DECISIONS, Architecture, BaseStage, SearchSpace, SearchSpaceError, StageChoice, arch_key

__all__ = [
    "DECISIONS",
    "PPO",
    "Architecture",
    "BaseStage",
    "Controller",
    "PPOSettings",
    "ScaledCandidate",
    "SearchSpace",
    "SearchSpaceError",
    "StageChoice",
    "arch_key",
    "fit_width",
    "mnas_reward",
    "scale_metanet",
]
