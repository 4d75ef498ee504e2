"""`seqgan-hf` on prompt-completion pairs (`--task prompts`): the checks, tokenizer, evaluator and settings of
`train`, and `sample` / `evaluate` for a model trained on pairs.

    seqgan-hf train --task prompts --train_file pairs.jsonl [--eval_file held_out.jsonl] [--max_prompt_length 16]
    seqgan-hf sample <model_dir> --prompt "Who goes there?" [--prompt ...] [--prompts_file prompts.txt] [--text]
    seqgan-hf evaluate <model_dir> --references held_out.jsonl [--num_samples 1000]

Pairs are rows with `prompt` and `completion` fields (`seqgan_hf.prompt_data`: text, token ids or chat messages).
The generator continues `[BOS, prompt]`; the discriminator reads each (prompt, completion) pair, `prompt_width` +
`sequence_length` tokens wide (`prompt_width`: `--max_prompt_length`, else the longest training prompt).
`sample` completes each given prompt `--num` times (default 1), in prompt order, one completion per line; prompts
are text, encoded with the model's tokenizer (a model trained on chat messages gets each prompt as one user
message, rendered by its chat template) and cut to their last `prompt_width` tokens, with a warning.
`evaluate` scores completions of the held-out prompts of `--references` with `PromptEvaluator` (BLEU against
the references of the same prompt, Self-BLEU, NLL); the oracle and sweep flags do not apply and are refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import types

from . import cli_checks as checks
from .cli_checks import CLIError, at_least

logger = logging.getLogger("seqgan_hf")

TASKS = ("oracle", "text", "prompts")
_FORMATS = {"ids": "token ids", "messages": "chat messages"}


# ---- train ------------------------------------------------------------------------------------------------

def check_prompt_args(script_args, config) -> None:
    """The prompt flags act only with --task prompts; a CNN's filters must fit a pair when its width is known."""
    if script_args.task != "prompts":
        for name, default in (("max_prompt_length", None), ("prompt_overflow", "truncate")):
            if getattr(config, name) != default:
                raise CLIError(f"{name} is set, but --task {script_args.task} has no prompts", f"--{name}",
                               "drop it, or train on prompt-completion pairs with --task prompts")
        return
    at_least(script_args.eval_samples, 1, "--eval_samples", "complete at least one held-out prompt, e.g. 1000")
    if config.max_prompt_length is not None:
        check_filter_widths(script_args, config, config.max_prompt_length)


def check_filter_widths(script_args, config, prompt_width: int) -> None:
    """The built-in CNN's filters must fit the (prompt, completion) pair it reads: a wider one sees only padding
    past the pair."""
    width = prompt_width + config.sequence_length
    too_wide = [size for size in script_args.discriminator_filter_sizes if size > width]
    if script_args.discriminator == "cnn" and too_wide:
        source = ("--max_prompt_length" if config.max_prompt_length is not None
                  else "the longest training prompt, as no --max_prompt_length is given")
        raise CLIError(f"CNN filter widths {too_wide} exceed the {width} tokens of a (prompt, completion) pair "
                       f"({prompt_width} prompt tokens, from {source}, + sequence_length {config.sequence_length})",
                       "--discriminator_filter_sizes", f"use widths up to {width} (one count each in "
                       "--discriminator_num_filters), or raise --max_prompt_length / --sequence_length")


def check_data_kind(task: str, dataset, path: str, argument: str) -> None:
    """Pairs are read by --task prompts only, and --task prompts reads pairs only."""
    from .prompt_data import is_prompt_dataset

    pairs = is_prompt_dataset(dataset)
    if task == "prompts" and not pairs:
        raise CLIError(f"{path} holds no prompt-completion pairs (its columns: {', '.join(dataset.column_names)})",
                       argument, "give every row 'prompt' and 'completion' fields (e.g. `seqgan-hf data "
                       "shakespeare_dialogue`), or train on plain sequences with --task text")
    if task != "prompts" and pairs:
        raise CLIError(f"{path} holds prompt-completion pairs, which --task {task} does not read", argument,
                       "train on them with --task prompts, or pass plain sequences ('text' or 'input_ids' rows)")


def check_data_kinds(script_args, train_dataset, eval_dataset) -> None:
    """`check_data_kind` for the training and held-out files that were given (None: not given)."""
    for dataset, path, argument in ((train_dataset, script_args.train_file, "--train_file"),
                                    (eval_dataset, script_args.eval_file, "--eval_file")):
        if dataset is not None:
            check_data_kind(script_args.task, dataset, path, argument)


def build_prompt_tokenizer(script_args, train_dataset):
    """A tokenizer built from the training pairs' prompt and completion texts (`--tokenizer_*` flags)."""
    from .text import build_tokenizer

    kinds = [_kind(train_dataset[0][name]) for name in ("prompt", "completion")]
    kind = next((kind for kind in kinds if kind != "text"), "text")
    if kind != "text":
        need = "the tokenizer the ids come from" if kind == "ids" else "a chat model's tokenizer with its template"
        raise CLIError(f"{script_args.train_file} holds {_FORMATS[kind]}, and no tokenizer is given to read them "
                       "with", "--tokenizer", f"pass --tokenizer <{need}>, or give the pairs as text")
    texts = list(train_dataset["prompt"]) + list(train_dataset["completion"])
    tokenizer = build_tokenizer(texts, script_args.tokenizer_type, script_args.tokenizer_vocab_size,
                                script_args.tokenizer_min_frequency)
    logger.info("Built a %s-level tokenizer of %d tokens from the prompts and completions of --train_file (saved "
                "with the generator).", script_args.tokenizer_type, len(tokenizer))
    return tokenizer


def _kind(value) -> str:
    if isinstance(value, str):
        return "text"
    return "messages" if value and isinstance(value[0], dict) else "ids"


def pending_evaluator(generator):
    """Stands for the `PromptEvaluator` while the trainer is built (it settles the prompt width first)."""
    raise RuntimeError("the prompt evaluator was not set up (a bug)")


def finish_setup(trainer, script_args, config, train_dataset, eval_dataset, settings: dict):
    """Once the trainer has encoded the pairs: the filter check at its prompt width, the prompt settings saved
    for `sample` / `evaluate` (the width, the pairs' format, the token ids), and the `PromptEvaluator` on the
    held-out pairs at that width (None without)."""
    from .prompt_eval import PromptEvaluator
    from .sampling import SamplingDistribution

    width = trainer.data.prompt_width
    check_filter_widths(script_args, config, width)
    settings.update(prompt_width=width, prompt_format=_kind(train_dataset[0]["prompt"]),
                    prompt_overflow=config.prompt_overflow, append_eos=config.append_eos,
                    sequence_overflow=config.sequence_overflow, eval_samples=script_args.eval_samples,
                    bos_token_id=trainer.bos_token_id, eos_token_id=trainer.eos_token_id,
                    pad_token_id=trainer.pad_token_id)
    trainer.evaluator = None if eval_dataset is None else PromptEvaluator(
        eval_dataset, trainer.processing_class, config.sequence_length, bos_token_id=trainer.bos_token_id,
        max_prompt_length=width, prompt_overflow=config.prompt_overflow, overflow=config.sequence_overflow,
        append_eos=config.append_eos, num_samples=script_args.eval_samples,
        distribution=SamplingDistribution(config.temperature, config.top_k, config.top_p))
    return trainer.evaluator


# ---- sample / evaluate ------------------------------------------------------------------------------------

def check_prompt_flags(args, settings: dict) -> None:
    """`sample`: a prompts model needs prompts; other models take none."""
    given = args.prompt is not None or args.prompts_file is not None
    argument = "--prompt" if args.prompt is not None else "--prompts_file"
    task = settings.get("task")
    if task == "prompts" and not given:
        raise CLIError(f"{args.model_dir} was trained on prompt-completion pairs (--task prompts): it completes "
                       "prompts", "--prompt", "pass --prompt 'text' (repeatable) or --prompts_file <one prompt per "
                       "line>")
    if given and task is not None and task != "prompts":
        raise CLIError(f"{args.model_dir} was trained with --task {task}, on sequences without prompts", argument,
                       "drop it to sample whole sequences, or pass a model trained with --task prompts")
    if given and os.path.isdir(args.model_dir) and not checks.has_tokenizer(args.model_dir):
        raise CLIError(f"{args.model_dir} holds no tokenizer to encode prompts with", argument,
                       "pass a model trained with --task prompts (its tokenizer is saved with it)")
    if args.prompts_file is not None:
        checks.check_input_file(args.prompts_file, "--prompts_file", "prompts file")


def _read_prompts(args) -> list[str]:
    prompts = list(args.prompt or [])
    if args.prompts_file is not None:
        try:
            with open(args.prompts_file, encoding="utf-8") as handle:
                from_file = [line.rstrip("\r\n") for line in handle if line.strip()]
        except UnicodeDecodeError as error:
            raise CLIError(f"{args.prompts_file} is not UTF-8 text", "--prompts_file",
                           "re-encode it as UTF-8, one prompt per line") from error
        if not from_file:
            raise CLIError(f"{args.prompts_file} holds no prompts (only blank lines)", "--prompts_file",
                           "write one prompt per line")
        prompts += from_file
    return prompts


def _load(model_dir: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = checks.load_pretrained(AutoModelForCausalLM.from_pretrained, model_dir, "model_dir", "model")
    model.eval()
    tokenizer = checks.load_pretrained(AutoTokenizer.from_pretrained, model_dir, "model_dir", "tokenizer")
    return model, tokenizer


def _token_ids(model, tokenizer, settings: dict) -> tuple[int, int | None, int | None]:
    """(BOS, EOS or None, pad): as training used them (its settings), else from the model and its tokenizer."""
    from .checks import special_token_ids

    if "bos_token_id" in settings:
        return settings["bos_token_id"], settings.get("eos_token_id"), settings.get("pad_token_id")
    return special_token_ids(model, tokenizer, types.SimpleNamespace(bos_token_id=None))  # no config override


def sample_completions(args, settings: dict, max_new_tokens: int, distribution) -> list[str]:
    """`seqgan-hf sample` for a prompts model: `--num` completions (default 1) of every prompt, in order."""
    import torch

    from .data import strip_after_eos
    from .prompts import Prompts
    from .rollout import RolloutEngine

    if max_new_tokens is None:
        raise CLIError(f"{args.model_dir} tells no sequence length (no {checks.SETTINGS_NAME}, no length in its "
                       "config)", "--max_new_tokens", "pass --max_new_tokens <completion tokens>")
    prompts = _read_prompts(args)
    model, tokenizer = _load(args.model_dir)
    bos, eos, pad = _token_ids(model, tokenizer, settings)
    if settings.get("prompt_format") == "messages":  # trained on chat messages: each prompt is one user message
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True) for prompt in prompts]
    encoded = [list(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    width = settings.get("prompt_width")
    long = [len(ids) for ids in encoded if width is not None and len(ids) > width]
    if long:
        checks.warn(f"{len(long)} of {len(prompts)} prompts are longer than the {width} prompt tokens the model "
                    f"was trained with (the longest has {max(long)}); they keep their last {width} tokens")
        encoded = [ids[len(ids) - width:] if len(ids) > width else ids for ids in encoded]
    num = args.num if args.num is not None else 1
    rows = [ids for ids in encoded for _ in range(num)]
    engine = RolloutEngine(bos, max_new_tokens, 1, temperature=distribution.temperature, top_k=distribution.top_k,
                           top_p=distribution.top_p)
    rng = torch.Generator().manual_seed(args.seed)
    lines = []
    for start in range(0, len(rows), args.batch_size):
        batch = rows[start : start + args.batch_size]
        samples = engine.sample(model, len(batch), rng=rng, prompts=Prompts.from_token_lists(batch, bos, pad))
        for tokens in strip_after_eos(samples.cpu(), eos, pad):
            lines.append(tokenizer.decode(tokens, skip_special_tokens=True).replace("\n", " ") if args.text
                         else " ".join(map(str, tokens)))
    return lines


# Flags of `evaluate` for the oracle task and sweeps: refused for a prompts model, by their unset value.
_NOT_FOR_PROMPTS = {"sweep": False, "plot": None, "temperatures": None, "bleu": False, "oracle_seed": None,
                    "oracle_params": None, "vocab_size": None, "num_test": None}


def evaluate_prompts(args, settings: dict, source: str | None, distribution_of) -> dict:
    """`seqgan-hf evaluate` for a prompts model: `PromptEvaluator` on the held-out pairs of `--references`."""
    from .data import load_train_file
    from .prompt_eval import PromptEvaluator

    for name, unset in _NOT_FOR_PROMPTS.items():
        if getattr(args, name) != unset:
            raise CLIError(f"--{name} is for the oracle task or a sweep, which a model trained on prompt-completion "
                           f"pairs (--task prompts) has neither of", f"--{name}",
                           "drop it; score the model with --references <held-out prompt-completion .jsonl>")
    if args.references is None:
        raise CLIError(f"{args.model_dir} was trained on prompt-completion pairs (--task prompts), which have no "
                       "oracle", "--references", "score it with --references <held-out prompt-completion .jsonl>")
    checks.check_evaluate_args(args, prompts=True)
    sequence_length = checks.pick(args, "sequence_length", settings, "sequence_length", source, 20,
                                  warn_if_differs=True)
    num_samples = checks.pick(args, "num_samples", settings, "eval_samples", source, 500, warn_if_differs=False)
    references = load_train_file(args.references, "--references")
    check_data_kind("prompts", references, args.references, "--references")
    distribution = distribution_of(args, settings)
    model, tokenizer = _load(args.model_dir)
    bos, eos, _ = _token_ids(model, tokenizer, settings)
    evaluator = PromptEvaluator(
        references, tokenizer, sequence_length, bos_token_id=bos, max_prompt_length=settings.get("prompt_width"),
        prompt_overflow=settings.get("prompt_overflow", "truncate"),
        overflow=settings.get("sequence_overflow", "truncate"), append_eos=settings.get("append_eos", True),
        num_samples=num_samples, max_order=args.max_order, seed=args.seed, distribution=distribution,
        what="--references")
    result = {**evaluator(model), "num_prompts": len(evaluator.sampled_rows),
              "sampling": dataclasses.asdict(distribution), "references": args.references, "model": args.model_dir}
    text = json.dumps(result, indent=2)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text + "\n")
    print(text)
    return result


def write_lines(lines: list[str], output: str) -> None:
    text = "\n".join(lines) + "\n"
    if output == "-":
        sys.stdout.write(text)
    else:
        with open(output, "w") as handle:
            handle.write(text)
