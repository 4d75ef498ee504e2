"""The paper's models, registered with the transformers Auto classes."""

from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

from .cnn import CNNDiscriminatorConfig, CNNForSequenceClassification
from .lstm import LSTMConfig, LSTMForCausalLM, LSTMState


def register_auto_classes() -> None:
    """Make `AutoConfig` / `AutoModelFor*` resolve `seqgan_lstm` and `seqgan_cnn` (idempotent)."""
    for config_class, model_class, auto_class in (
        (LSTMConfig, LSTMForCausalLM, AutoModelForCausalLM),
        (CNNDiscriminatorConfig, CNNForSequenceClassification, AutoModelForSequenceClassification),
    ):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        auto_class.register(config_class, model_class, exist_ok=True)


register_auto_classes()

__all__ = [
    "CNNDiscriminatorConfig",
    "CNNForSequenceClassification",
    "LSTMConfig",
    "LSTMForCausalLM",
    "LSTMState",
    "register_auto_classes",
]
