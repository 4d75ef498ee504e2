"""seqgan_hf: SeqGAN (Yu et al., AAAI 2017) for Hugging Face transformers."""

from .models import (
    CNNDiscriminatorConfig,
    CNNForSequenceClassification,
    LSTMConfig,
    LSTMForCausalLM,
)

__version__ = "0.1.0"

__all__ = [
    "CNNDiscriminatorConfig",
    "CNNForSequenceClassification",
    "LSTMConfig",
    "LSTMForCausalLM",
    "__version__",
]
