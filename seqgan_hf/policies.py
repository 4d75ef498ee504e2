"""Frozen policies beside the generator: the paper's delayed rollout policy G_beta and the KL reference G_ref.

For a plain model either one is a frozen deep copy. For a peft (LoRA) model only the adapter is trained, so
neither needs a second copy of the base model:

* G_beta is `AdapterWeights`: a copy of the adapter's weights alone, swapped into the generator's parameters
  (pointer swaps, no copies) while the rollouts run;
* G_ref is `AdapterDisabled`: the generator itself with its adapter switched off, i.e. the pretrained base.

`acting_as(policy, generator)` gives the module that computes the frozen policy's logits in every case.
Nothing here imports peft: a peft model is recognised by its `disable_adapter` context manager.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn


def is_adapter_model(model: nn.Module) -> bool:
    """True for a peft model (`PeftModel`): the trainable parameters are an adapter on a frozen base."""
    return hasattr(model, "peft_config") and callable(getattr(model, "disable_adapter", None))


class AdapterWeights:
    """A frozen copy of a peft generator's trainable (adapter) parameters, by parameter name."""

    def __init__(self, generator: nn.Module):
        self.weights = {name: param.detach().clone() for name, param in generator.named_parameters()
                        if param.requires_grad}

    def named_parameters(self) -> Iterator[tuple[str, torch.Tensor]]:
        return iter(self.weights.items())

    def parameters(self) -> Iterator[torch.Tensor]:
        return iter(self.weights.values())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.weights)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != set(self.weights):
            raise ValueError("the checkpoint's rollout-policy adapter has other parameters than this run's adapter "
                             "(a different peft_config?): resume with the interrupted run's peft_config.")
        for name, value in state.items():
            self.weights[name].copy_(value)

    @contextlib.contextmanager
    def swapped_into(self, generator: nn.Module) -> Iterator[nn.Module]:
        """`generator` computing with these adapter weights; its own are back in place on exit."""
        params = dict(generator.named_parameters())
        own = {}
        try:
            for name, weight in self.weights.items():
                # `.data` swaps which tensor the parameter points to: no copy, and the optimizer's parameter
                # object (and its state) is untouched.
                own[name], params[name].data = params[name].data, weight
            yield generator
        finally:
            for name, data in own.items():
                params[name].data = data


class AdapterDisabled:
    """The reference policy of a peft generator: the generator with its adapter disabled (the base model)."""

    def state_dict(self) -> dict:
        return {}  # nothing to save: the base weights are the generator's own, frozen

    def load_state_dict(self, state: dict) -> None:
        pass

    @contextlib.contextmanager
    def disabled_in(self, generator: nn.Module) -> Iterator[nn.Module]:
        with generator.disable_adapter():
            yield generator


def frozen_copy(generator: nn.Module, device: torch.device) -> nn.Module | AdapterWeights:
    """A frozen copy of the policy: of the adapter only for a peft model, else of the whole model."""
    if is_adapter_model(generator):
        return AdapterWeights(generator)
    return copy.deepcopy(generator).to(device).eval().requires_grad_(False)


def reference_policy(generator: nn.Module, device: torch.device) -> nn.Module | AdapterDisabled:
    """The KL reference: the adapter-disabled base for a peft model, else a frozen copy of the model."""
    if is_adapter_model(generator):
        return AdapterDisabled()
    return frozen_copy(generator, device)


@contextlib.contextmanager
def acting_as(policy: nn.Module | AdapterWeights | AdapterDisabled, generator: nn.Module) -> Iterator[nn.Module]:
    """The module that computes `policy`'s logits: the copy itself, or `generator` with the adapter swapped in or
    switched off (restored on exit)."""
    if isinstance(policy, AdapterWeights):
        with policy.swapped_into(generator) as module:
            yield module
    elif isinstance(policy, AdapterDisabled):
        with policy.disabled_in(generator) as module:
            yield module
    else:
        yield policy


@torch.no_grad()
def move_towards(policy: nn.Module | AdapterWeights, generator: nn.Module, rate: float) -> None:
    """theta_policy <- rate * theta_policy + (1 - rate) * theta_generator, parameter by parameter name."""
    params = dict(generator.named_parameters())
    for name, param in policy.named_parameters():
        param.mul_(rate).add_(params[name].detach(), alpha=1.0 - rate)
