"""seqgan_hf: SeqGAN (Yu et al., AAAI 2017) for Hugging Face transformers.

Public names are imported on first use (PEP 562), so importing one submodule, e.g. `seqgan_hf.metrics`, does not
load the trainer, accelerate or transformers' modeling code. `import seqgan_hf` still makes `AutoConfig` and
`AutoModelFor*` resolve the package's model types (`seqgan_lstm`, `seqgan_cnn`), see `_register_auto_classes`.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the submodule defining it; adding a public name is one line here.
_LAZY_NAMES: dict[str, str] = {
    "CNNDiscriminatorConfig": "models",
    "CNNForSequenceClassification": "models",
    "LSTMConfig": "models",
    "LSTMForCausalLM": "models",
    "OracleEvaluator": "oracle",
    "OracleTask": "oracle",
    "FunctionReward": "rewards",
    "PGBleuTrainer": "baselines",
    "RewardSource": "rewards",
    "ScheduledSamplingTrainer": "baselines",
    "SeqGANConfig": "config",
    "SeqGANTrainer": "trainer",
    "temperature_sweep": "sweep",
    "build_tokenizer": "text",
    "TextEvaluator": "text",
}

__all__ = ["__version__", *_LAZY_NAMES]

if TYPE_CHECKING:  # for static tools only (`X as X` marks a re-export); at run time `__getattr__` imports on use
    from .baselines import PGBleuTrainer as PGBleuTrainer
    from .baselines import ScheduledSamplingTrainer as ScheduledSamplingTrainer
    from .config import SeqGANConfig as SeqGANConfig
    from .models import CNNDiscriminatorConfig as CNNDiscriminatorConfig
    from .models import CNNForSequenceClassification as CNNForSequenceClassification
    from .models import LSTMConfig as LSTMConfig
    from .models import LSTMForCausalLM as LSTMForCausalLM
    from .oracle import OracleEvaluator as OracleEvaluator
    from .oracle import OracleTask as OracleTask
    from .rewards import FunctionReward as FunctionReward
    from .rewards import RewardSource as RewardSource
    from .sweep import temperature_sweep as temperature_sweep
    from .text import TextEvaluator as TextEvaluator
    from .text import build_tokenizer as build_tokenizer
    from .trainer import SeqGANTrainer as SeqGANTrainer


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    elif not name.startswith("_"):
        # `seqgan_hf.oracle` etc. after a bare `import seqgan_hf`, as when this file imported them eagerly.
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _PendingConfigType(type):
    """Metaclass of the placeholder configs: any use of one imports `seqgan_hf.models` (which registers the real
    classes over the placeholders) and forwards to the real config class."""

    def real_class(cls) -> type:
        from . import models

        models.register_auto_classes()
        return {"seqgan_lstm": models.LSTMConfig, "seqgan_cnn": models.CNNDiscriminatorConfig}[cls.model_type]

    def __getattr__(cls, name: str) -> Any:
        return getattr(cls.real_class(), name)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.real_class()(*args, **kwargs)


def _register_auto_classes() -> None:
    """Make `import seqgan_hf` register the package's model types with the transformers Auto classes.

    The model classes subclass `PreTrainedModel`, whose module imports accelerate (~2 s), so they cannot be
    imported here. `AutoConfig` gets a placeholder per model type instead: `AutoConfig.from_pretrained` (also
    called by `AutoModelFor*.from_pretrained`) asks it for `from_dict`, which imports `seqgan_hf.models`; that
    registers the real config and model classes before the model class is looked up."""
    models = sys.modules.get(f"{__name__}.models")
    if models is not None:  # already imported (e.g. this package reloaded): the real classes are at hand
        models.register_auto_classes()
        return
    from transformers import AutoConfig

    for model_type in ("seqgan_lstm", "seqgan_cnn"):
        placeholder = _PendingConfigType(f"Pending_{model_type}", (), {"model_type": model_type, "__module__": __name__})
        AutoConfig.register(model_type, placeholder, exist_ok=True)


_register_auto_classes()
