"""seqgan_hf: SeqGAN (Yu et al., AAAI 2017) for Hugging Face transformers."""

from .baselines import PGBleuTrainer, ScheduledSamplingTrainer
from .config import SeqGANConfig
from .models import (
    CNNDiscriminatorConfig,
    CNNForSequenceClassification,
    LSTMConfig,
    LSTMForCausalLM,
)
from .oracle import OracleEvaluator, OracleTask
from .sweep import temperature_sweep
from .trainer import SeqGANTrainer

__version__ = "0.1.0"

__all__ = [
    "CNNDiscriminatorConfig",
    "CNNForSequenceClassification",
    "LSTMConfig",
    "LSTMForCausalLM",
    "OracleEvaluator",
    "OracleTask",
    "PGBleuTrainer",
    "ScheduledSamplingTrainer",
    "SeqGANConfig",
    "SeqGANTrainer",
    "__version__",
    "temperature_sweep",
]
