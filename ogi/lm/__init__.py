"""Language-model pipeline shared by the planner: tokenizer -> pretrain -> SFT -> reward model -> PPO-RLHF with KL,
plus best-of-N sampling with a verifier, all on a generated corpus of robot instructions."""

from ogi.lm.best_of_n import (
    BestOfNReport,
    best_of_n,
    best_of_n_success,
    function_verifier,
    reward_model_verifier,
)
from ogi.lm.config import (
    ModelShape,
    OptimizerConfig,
    PretrainConfig,
    RewardConfig,
    RLHFConfig,
    SFTConfig,
    load_config,
)
from ogi.lm.corpus import Demonstration, PreferencePair, is_correct, plan_score
from ogi.lm.data import ContextLengthError
from ogi.lm.model import CausalTransformer, TransformerConfig, generate, parameter_count
from ogi.lm.preferences import sampled_preference_pairs
from ogi.lm.pretrain import PretrainResult, pretrain
from ogi.lm.reward_model import RewardModel, RewardResult, bradley_terry_loss, train_reward_model
from ogi.lm.rlhf import RLHFResult, RLHFTrainer, train_rlhf
from ogi.lm.scaling import ComputePlan, compute_optimal_plan
from ogi.lm.schedule import learning_rate_at
from ogi.lm.sft import SFTResult, supervised_finetune
from ogi.lm.store import LanguageModelCheckpoint, load_language_model, save_language_model
from ogi.lm.tokenizer import Tokenizer, train_tokenizer

__all__ = [
    "BestOfNReport", "CausalTransformer", "ComputePlan", "ContextLengthError", "Demonstration",
    "LanguageModelCheckpoint", "ModelShape", "OptimizerConfig", "PreferencePair", "PretrainConfig", "PretrainResult",
    "RLHFConfig", "RLHFResult", "RLHFTrainer", "RewardConfig", "RewardModel", "RewardResult", "SFTConfig", "SFTResult",
    "Tokenizer", "TransformerConfig", "best_of_n", "best_of_n_success", "bradley_terry_loss", "compute_optimal_plan",
    "function_verifier", "generate", "is_correct", "learning_rate_at", "load_config", "load_language_model",
    "parameter_count", "plan_score", "pretrain", "reward_model_verifier", "sampled_preference_pairs", "save_language_model",
    "supervised_finetune", "train_reward_model", "train_rlhf", "train_tokenizer",
]
