"""The checks behind `seqgan-hf`: every bad input is refused before any work, in one line naming the argument.

* [`CLIError`] carries what is wrong, the argument holding it and the fix; `main` prints it (and the library's
  own user errors) as one `error: ...` line and exits with status 2.
* YAML recipes are checked whole (a mapping, known fields, each value of its field's type) before anything is
  built; paths are told apart from Hub ids, so a missing folder is never reported as a network problem.
* The arguments of `train` (after parsing: YAML and flags alike) and `evaluate`, values and paths.
* `seqgan_cli.json`: the task settings `train` used, written into `output_dir` when training starts and read
  by `sample` / `evaluate` as their defaults.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
import os
import re
import sys
import tempfile
import types
import typing
from dataclasses import fields
from typing import TYPE_CHECKING

import yaml

from .checks import looks_local

if TYPE_CHECKING:
    import argparse

    from .cli_args import ScriptArguments
    from .config import SeqGANConfig

SETTINGS_NAME = "seqgan_cli.json"
_CHECKPOINT = re.compile(r"checkpoint-\d+")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


class CLIError(Exception):
    """A user error found by `seqgan-hf`: `what` is wrong, in `argument`, and `fix` says what to do."""

    def __init__(self, what: str, argument: str, fix: str):
        super().__init__(f"{what} ({argument}): {fix}")
        self.what, self.argument, self.fix = what, argument, fix


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that report a user's mistake (printed as one line); anything else is a bug (traceback)."""
    from .checkpoint import NonFiniteError  # here: the checkpoint module loads torch
    from .run_dir import OutputDirError

    return (CLIError, ValueError, TypeError, FileNotFoundError, NotImplementedError, PermissionError,
            yaml.YAMLError, NonFiniteError, OutputDirError)


def error_line(error: BaseException) -> str:
    """`error: <message>` on one line (library messages can span several). The package's own exception types
    (NonFiniteError, OutputDirError) are named: documented and searchable, unlike ValueError and the like."""
    message = " ".join(str(error).split()) or type(error).__name__
    if type(error).__module__.startswith("seqgan_hf.") and not isinstance(error, CLIError):
        message = f"{type(error).__name__}: {message}"
    return f"error: {message}"


def split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """`argv` without the `--debug` flags (accepted anywhere), and whether there was one."""
    kept = [arg for arg in argv if arg != "--debug"]
    return kept, len(kept) != len(argv)


def warn(message: str) -> None:
    """A one-line warning on stderr: a flag that contradicts how the model was trained."""
    print(f"warning: {message}", file=sys.stderr)


# ---- recipes ----------------------------------------------------------------------------------------------

# The recipes shipped in the package (the repo's recipes/ links here).
_RECIPES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")


def packaged_recipe(name: str) -> str | None:
    """The recipe shipped in the package under `name` (e.g. `text_pretrained_lora`, with or without `.yaml`) when
    `name` is not an existing path; None otherwise."""
    if os.path.exists(name) or os.sep in name:
        return None
    candidate = os.path.join(_RECIPES, name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return candidate if os.path.isfile(candidate) else None


def load_recipe(path: str) -> dict:
    """The YAML recipe at `path` as a dict, refusing anything that is not a non-empty mapping."""
    example = "write one `field: value` per line, e.g. `mle_epochs: 5` (see recipes/oracle_quick.yaml)"
    path = packaged_recipe(path) or path
    if not os.path.exists(path):
        names = sorted(name[: -len(".yaml")] for name in os.listdir(_RECIPES) if name.endswith(".yaml"))
        raise CLIError(f"recipe {path!r} does not exist", "--config", "check the path (relative paths start at "
                       f"{os.getcwd()}), or name a recipe shipped with seqgan_hf: {', '.join(names)}")
    check_input_file(path, "--config", "recipe")
    try:
        with open(path, encoding="utf-8") as handle:
            recipe = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise CLIError(f"{path} is not valid YAML: {problem}{where}", "--config",
                       "fix the syntax there; " + example) from error
    except UnicodeDecodeError as error:
        raise CLIError(f"{path} is not a UTF-8 text file", "--config", example) from error
    if recipe is None:
        raise CLIError(f"{path} is empty", "--config", example)
    if not isinstance(recipe, dict):
        raise CLIError(f"{path} holds {_kind(recipe)}, not a mapping of field: value", "--config", example)
    return recipe


def check_recipe(recipe: dict, dataclass_types: tuple[type, ...], accepted: set[str], source: str) -> dict:
    """`recipe` with every key a field of `dataclass_types` (and in `accepted`, the parser's fields) and every
    value of its field's type; numbers written like `1e-4` (a string to YAML 1.1) become floats."""
    hints: dict[str, object] = {}
    for cls in dataclass_types:
        type_hints = typing.get_type_hints(cls)
        hints.update({item.name: type_hints[item.name] for item in fields(cls)
                      if item.init and item.name in accepted})
    unknown = [str(key) for key in recipe if key not in hints]
    if unknown:
        guesses = sorted({match for key in unknown for match in difflib.get_close_matches(key, hints, n=1)})
        hint = f"did you mean {', '.join(guesses)}? " if guesses else ""
        raise CLIError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in {source}",
                       "--config", f"{hint}`seqgan-hf train --help` lists every field")
    checked = {}
    for key, value in recipe.items():
        ok, checked[key] = _conform(value, hints[key])
        if not ok:
            raise CLIError(f"{key} is {_yaml(value)} ({_kind(value)}), expected {_describe(hints[key])}",
                           f"{key} in {source}", _type_fix(key, value, hints[key]))
    return checked


def _type_fix(key: str, value, hint) -> str:
    """How to write `key` so that it fits `hint`, guessed from the value that did not."""
    if isinstance(value, bool):
        return (f"write `{key}: <{_describe(hint)}>`; quote words like 'no', 'on', 'off' (YAML reads them as "
                "booleans)")
    if not isinstance(value, list) and _conform([value], hint)[0]:
        return f"write a list: `{key}: [{_yaml(value)}]`"
    if isinstance(value, float) and math.isfinite(value) and _conform(round(value), hint)[0]:
        return f"write a whole number, e.g. `{key}: {round(value)}`"
    if isinstance(value, str) and _conform(_number(value), hint)[0]:
        return f"write it without quotes: `{key}: {value}`"
    return f"write `{key}: <{_describe(hint)}>`"


def _number(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _yaml(value) -> str:
    """`value` as YAML writes it (true, null, 1.5, 'text')."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def _conform(value, hint) -> tuple[bool, object]:
    """Whether a YAML `value` fits the type `hint`, and the value to use."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            ok, converted = _conform(value, arm)
            if ok:
                return True, converted
        return False, value
    if hint is type(None):
        return value is None, value
    if hint is typing.Any:
        return True, value
    if origin is typing.Literal:
        return value in args, value
    if origin is list:
        if not isinstance(value, list):
            return False, value
        items = [_conform(item, args[0] if args else typing.Any) for item in value]
        return all(ok for ok, _ in items), [item for _, item in items]
    if hint is dict or origin is dict:
        return isinstance(value, dict), value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string; a number is meant
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return isinstance(value, int | float) and not isinstance(value, bool), value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return value in {member.value for member in hint}, value
    if isinstance(hint, type):
        return isinstance(value, hint), value
    return True, value  # a type this check does not know: argparse and the dataclass decide


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [arm for arm in args if arm is not type(None)]
        text = " or ".join(dict.fromkeys(_describe(arm) for arm in arms))
        return text + (" or null" if len(arms) < len(args) else "")
    if origin is list:
        item = args[0] if args else None
        items = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
        return "a list of " + items.get(item, "values")
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}
    if hint in names:
        return names[hint]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "a string"
    return getattr(hint, "__name__", str(hint))


def _kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), f"a {type(value).__name__}")


# ---- paths ------------------------------------------------------------------------------------------------

def check_model_source(value: str, argument: str, kind: str, *, tokenizer: bool = False) -> None:
    """A local model (or tokenizer) folder must exist and hold one; a Hub id is left to `from_pretrained`."""
    if not looks_local(value):
        return
    path = os.path.expanduser(value)
    fix = f"pass a folder written by save_pretrained, or a Hub id such as owner/name for the {kind}"
    if not os.path.exists(path):
        raise CLIError(f"{kind} folder {value!r} does not exist", argument, fix)
    if not os.path.isdir(path):
        raise CLIError(f"{kind} {value!r} is a file, not a folder", argument, fix)
    # A peft adapter folder (adapter_config.json) names its base model; transformers loads both (needs peft).
    wanted = _TOKENIZER_FILES if tokenizer else ("config.json", "adapter_config.json")
    if not any(os.path.isfile(os.path.join(path, name)) for name in wanted):
        raise CLIError(f"{value!r} holds no {' / '.join(wanted)}, so it is not a saved {kind}", argument, fix)


def check_input_file(path: str, argument: str, kind: str, *, folder_ok: bool = False) -> None:
    """An input file (or save_to_disk folder, with `folder_ok`) must exist."""
    if not os.path.exists(path):
        raise CLIError(f"{kind} {path!r} does not exist", argument, "check the path (relative paths start at "
                       f"the current folder, {os.getcwd()})")
    if os.path.isdir(path) and not folder_ok:
        raise CLIError(f"{kind} {path!r} is a folder, not a file", argument,
                       f"pass the path of the {kind} file")


def check_oracle_params(path: str, argument: str = "--oracle_params") -> None:
    """An oracle is a `.npz` in the paper's layout or a save_pretrained folder."""
    check_input_file(path, argument, "oracle", folder_ok=True)
    if os.path.isdir(path):
        check_model_source(path, argument, "oracle")
    elif not path.endswith(".npz"):
        raise CLIError(f"oracle {path!r} is not a .npz file", argument,
                       "pass a .npz in the paper's layout (docs/PROTOCOL.md) or a save_pretrained folder")


def load_pretrained(load, value: str, argument: str, kind: str):
    """`load(value)`, with a Hub or file failure reported as the argument's error rather than a traceback."""
    try:
        return load(value)
    except OSError as error:
        message = " ".join(str(error).split())
        if looks_local(value):
            raise CLIError(f"could not load the {kind} from {value!r}: {message}", argument,
                           "pass a folder written by save_pretrained") from error
        raise CLIError(
            f"the {kind} {value!r} is no local folder, and loading it from the Hub failed: {message}",
            argument, "check the path or Hub id (with HF_HUB_OFFLINE=1 only cached models load)") from error


def check_writable_file(path: str, argument: str) -> None:
    """Refuse an output file that cannot be written, before any work: its folder must exist and take a new
    file, and the file, if it exists, must open for writing (a probe: permissions alone miss e.g. root)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CLIError(f"{path!r} is a folder", argument,
                       f"give a file path, e.g. {os.path.join(path, 'out.txt')}")
    if not os.path.isdir(folder):
        raise CLIError(f"the folder {folder!r} of {path!r} does not exist", argument,
                       f"create it first (mkdir -p {folder}) or choose another path")
    try:
        if os.path.exists(path):
            open(path, "ab").close()  # append mode: the file is left as it is
        else:
            with tempfile.TemporaryFile(dir=folder):
                pass
    except OSError as error:
        raise CLIError(f"{path!r} cannot be written ({error.strerror or error})", argument,
                       "choose a path you can write to, or fix the folder's permissions") from error


def check_output_dir(path: str, argument: str = "--output_dir") -> None:
    """`output_dir` must be a folder, or creatable in a writable one: found now, not when saving the model."""
    path = existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        problem = "is a file" if existing == path else f"cannot be created: {existing!r} is a file"
        raise CLIError(f"output_dir {path!r} {problem}", argument, "choose a folder path")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise CLIError(f"output_dir {path!r} cannot be written in {existing!r} ({error.strerror or error})",
                       argument, "choose a folder you can write to") from error


def check_fresh_output_dir(config: SeqGANConfig) -> None:
    """The trainer refuses, in `train()`, a folder holding another run unless resumed or overwritten; asked
    here too, so the refusal comes before the CLI's untrained evaluation rather than after it."""
    from . import run_dir

    if config.resume_from_checkpoint or not os.path.isdir(config.output_dir):
        return
    try:
        run_dir.check_fresh(config.output_dir, config.overwrite_output_dir)
    except run_dir.OutputDirError as error:
        raise CLIError(f"output_dir {config.output_dir!r} holds an earlier run", "--output_dir",
                       "resume it with --resume_from_checkpoint latest, choose a new --output_dir, or pass "
                       "--overwrite_output_dir true to start over") from error


def refuse_unknown_flags(remaining: list[str], known: list[str]) -> None:
    """Arguments `train` does not take, with the closest flag it does."""
    flags = [arg.split("=", 1)[0] for arg in remaining if arg.startswith("-")] or remaining
    guesses = difflib.get_close_matches(flags[0], known, n=1)
    hint = f"did you mean {guesses[0]}? " if guesses else ""
    raise CLIError(f"unknown argument{'s' if len(remaining) > 1 else ''} {' '.join(remaining)}", flags[0],
                   f"{hint}`seqgan-hf train --help` lists every flag")


def at_least(value: int | float, minimum: int | float, argument: str, fix: str) -> None:
    """Refuse a count or size below `minimum`."""
    if value < minimum:
        raise CLIError(f"{argument.lstrip('-')} is {value}, below {minimum}", argument, fix)


# ---- the commands' arguments ------------------------------------------------------------------------------

def check_train_args(script_args: ScriptArguments, config: SeqGANConfig) -> None:
    """The script arguments' values and paths (SeqGANConfig checks its own fields when built)."""
    if script_args.task not in ("oracle", "text", "prompts"):
        raise CLIError(f"task {script_args.task!r} is not known", "--task",
                       "choose 'oracle' (the paper's synthetic task), 'text' or 'prompts' (prompt-completion pairs)")
    if not 0 <= config.seed < 2**32:
        raise CLIError(f"seed is {config.seed}", "--seed", "use a seed in [0, 2**32)")
    at_least(script_args.oracle_seed, 0, "--oracle_seed", "use a seed >= 0")
    if script_args.task == "oracle":
        at_least(script_args.num_train, 1, "--num_train", "sample at least one training sequence, e.g. 10000")
        at_least(script_args.num_test, 1, "--num_test", "hold out at least one sequence, e.g. 10000")
        at_least(script_args.eval_samples, 1, "--eval_samples", "score at least one sample, e.g. 10000")
        at_least(script_args.vocab_size, 2, "--vocab_size", "use 2 tokens or more (the paper: 5000)")
    for name in ("generator_embedding_dim", "generator_hidden_dim", "discriminator_embedding_dim"):
        at_least(getattr(script_args, name), 1, f"--{name}", "use a positive size")
    if script_args.discriminator_num_labels not in (1, 2):
        raise CLIError(f"discriminator_num_labels is {script_args.discriminator_num_labels}",
                       "--discriminator_num_labels", "use 1 (sigmoid) or 2 (softmax)")
    sizes, counts = script_args.discriminator_filter_sizes, script_args.discriminator_num_filters
    if not sizes or len(sizes) != len(counts):
        raise CLIError(f"{len(sizes)} filter widths but {len(counts)} filter counts",
                       "--discriminator_num_filters", "give one count per --discriminator_filter_sizes width")
    for name, values in (("discriminator_filter_sizes", sizes), ("discriminator_num_filters", counts)):
        at_least(min(values), 1, f"--{name}", "use positive integers")
    if script_args.task != "oracle" and script_args.train_file is None:
        raise CLIError(f"--task {script_args.task} needs a training file", "--train_file",
                       "pass --train_file <text file, one example per line, or JSONL>" if script_args.task == "text"
                       else "pass --train_file <JSONL of prompt-completion pairs>")
    _check_text_args(script_args)
    if script_args.train_file is not None:
        check_input_file(script_args.train_file, "--train_file", "training file", folder_ok=True)
    if script_args.oracle_params is not None:
        check_oracle_params(script_args.oracle_params)
    for name, keyword, kind in (("generator", "lstm", "generator"), ("discriminator", "cnn", "discriminator"),
                                ("tokenizer", None, "tokenizer"),
                                ("discriminator_tokenizer", None, "tokenizer")):
        value = getattr(script_args, name)
        if value is not None and value != keyword:
            check_model_source(value, f"--{name}", kind, tokenizer=kind == "tokenizer")
    _check_lora_args(script_args)
    check_output_dir(config.output_dir)
    check_fresh_output_dir(config)


def _check_text_args(script_args: ScriptArguments) -> None:
    """The text task's tokenizer and held-out flags; they are refused where they would go unused."""
    built = {"tokenizer_type": "word", "tokenizer_vocab_size": 30_000, "tokenizer_min_frequency": 1}
    changed = [name for name, default in built.items() if getattr(script_args, name) != default]
    if changed and (script_args.task == "oracle" or script_args.tokenizer is not None):
        raise CLIError(f"{changed[0]} is set, but no tokenizer is built (a tokenizer is built for --task text or "
                       "prompts without --tokenizer)", f"--{changed[0]}", "drop it, or drop --tokenizer to build one")
    if script_args.tokenizer_type not in ("word", "bpe"):
        raise CLIError(f"tokenizer_type {script_args.tokenizer_type!r} is not known", "--tokenizer_type",
                       "choose 'word' (one token per word, as in the paper) or 'bpe' (byte-level BPE)")
    at_least(script_args.tokenizer_vocab_size, 5, "--tokenizer_vocab_size", "use a vocabulary above the 4 specials")
    at_least(script_args.tokenizer_min_frequency, 1, "--tokenizer_min_frequency", "use 1 or more")
    if script_args.eval_file is not None:
        if script_args.task == "oracle":
            raise CLIError("--eval_file is for --task text or prompts (the oracle task holds out its own test set)",
                           "--eval_file", "drop it, or use --num_test for the oracle's held-out set")
        check_input_file(script_args.eval_file, "--eval_file", "held-out file", folder_ok=True)
    if not 0 <= script_args.validation_split_percentage < 100:
        raise CLIError(f"validation_split_percentage is {script_args.validation_split_percentage}",
                       "--validation_split_percentage", "use a percentage in [0, 100), e.g. 5 (0: none)")


def check_sampling_flags(args) -> None:
    """`sample` / `evaluate`: --temperature, --top_k and --top_p, when given."""
    if args.temperature is not None and not args.temperature > 0:
        raise CLIError(f"temperature is {args.temperature}", "--temperature", "use a positive temperature, e.g. 1.0")
    if args.top_k is not None:
        at_least(args.top_k, 0, "--top_k", "use 0 (no top-k cut) or a positive number of tokens")
    if args.top_p is not None and not 0.0 < args.top_p <= 1.0:
        raise CLIError(f"top_p is {args.top_p}", "--top_p", "use a value in (0, 1], e.g. 0.95 (1.0: no cut)")


def _check_lora_args(script_args: ScriptArguments) -> None:
    """LoRA flags act only with --use_peft on a pretrained generator; nothing set is silently unused."""
    lora = {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "lora_target_modules": None}
    if not script_args.use_peft:
        changed = [name for name, default in lora.items() if getattr(script_args, name) != default]
        if changed:
            raise CLIError(f"{changed[0]} is set but --use_peft is not", f"--{changed[0]}",
                           "add --use_peft to train a LoRA adapter, or drop the LoRA flags")
        return
    if script_args.generator == "lstm":
        raise CLIError("--use_peft needs a pretrained generator, but --generator is the built-in lstm", "--use_peft",
                       "pass --generator <a causal LM path or Hub id>, or drop --use_peft")
    try:
        import peft  # noqa: F401
    except ImportError:
        raise CLIError("--use_peft needs the peft package, which is not installed", "--use_peft",
                       "pip install 'seqgan-hf[peft]'") from None
    at_least(script_args.lora_r, 1, "--lora_r", "use a positive rank, e.g. 16")
    at_least(script_args.lora_alpha, 1, "--lora_alpha", "use a positive alpha, e.g. 32")
    if not 0.0 <= script_args.lora_dropout < 1.0:
        raise CLIError(f"lora_dropout is {script_args.lora_dropout}", "--lora_dropout", "use a value in [0, 1)")


def check_evaluate_args(args: argparse.Namespace, prompts: bool = False) -> list[float] | None:
    """Every `evaluate` argument, before the model is loaded; returns the parsed `--temperatures`. `prompts`: a
    prompts model, scored on `--references` pairs without a sweep."""
    if args.plot and not args.sweep:
        raise CLIError("--plot draws a sweep", "--plot", "add --sweep, or drop --plot")
    if args.references and not args.sweep and not prompts:
        raise CLIError("--references are scored by a sweep", "--references",
                       "add --sweep, or drop --references")
    if args.bleu and (not args.sweep or args.references):
        raise CLIError("--bleu adds BLEU / Self-BLEU to an oracle --sweep", "--bleu",
                       "use it with --sweep and without --references (a text sweep has them already)")
    check_model_source(args.model_dir, "model_dir", "model")
    for name, fix in (("num_test", "hold out at least one sequence"),
                      ("num_samples", "score at least one sample"),
                      ("sequence_length", "use a positive length"), ("max_order", "use 1 or more, e.g. 4")):
        if getattr(args, name) is not None:
            at_least(getattr(args, name), 1, f"--{name}", fix)
    if args.vocab_size is not None:
        at_least(args.vocab_size, 2, "--vocab_size", "give the oracle at least 2 tokens")
    for name in ("oracle_seed", "seed"):
        if getattr(args, name) is not None:
            at_least(getattr(args, name), 0, f"--{name}", "use a seed >= 0")
    temperatures = None
    if args.temperatures:
        try:
            temperatures = [float(value) for value in args.temperatures.split(",") if value.strip()]
        except ValueError:
            raise CLIError(f"--temperatures {args.temperatures!r} is not a list of numbers", "--temperatures",
                           "give comma-separated numbers, e.g. 0.7,1.0,1.3") from None
        if not temperatures or min(temperatures) <= 0:
            raise CLIError(f"--temperatures {args.temperatures!r} needs positive values", "--temperatures",
                           "give comma-separated positive numbers, e.g. 0.7,1.0,1.3")
    if args.references is not None:
        check_input_file(args.references, "--references", "references file")
        if os.path.isdir(args.model_dir) and not has_tokenizer(args.model_dir):
            raise CLIError(f"{args.model_dir} holds no tokenizer to decode samples for BLEU", "--references",
                           "pass a text model (trained with --task text), or drop --references (the oracle)")
    if args.oracle_params is not None:
        check_oracle_params(args.oracle_params)
    for name in ("output", "plot"):
        if getattr(args, name) is not None:
            check_writable_file(getattr(args, name), f"--{name}")
    return temperatures


# ---- the settings training used ---------------------------------------------------------------------------

def write_settings(output_dir: str, settings: dict) -> None:
    """`output_dir/seqgan_cli.json` (written whole, then renamed: never half a file)."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, SETTINGS_NAME)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(settings, handle, indent=2)
    os.replace(path + ".tmp", path)


def read_settings(model_dir: str) -> tuple[dict | None, str | None]:
    """The settings `seqgan-hf train` saved with the model in `model_dir` (or, for a `checkpoint-<step>`
    folder, with its run), and the file they came from; (None, None) for a model not trained by the CLI."""
    candidates = [os.path.join(model_dir, SETTINGS_NAME)]
    if _CHECKPOINT.fullmatch(os.path.basename(os.path.normpath(model_dir))):
        candidates.append(os.path.join(os.path.dirname(os.path.normpath(model_dir)), SETTINGS_NAME))
    for path in candidates:
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    settings = json.load(handle)
            except (OSError, ValueError) as error:
                raise CLIError(f"{path} cannot be read as JSON ({error})", "model_dir",
                               "delete it to fall back on the model's config, or retrain") from error
            if not isinstance(settings, dict):
                raise CLIError(f"{path} holds {_kind(settings)}, not the settings mapping", "model_dir",
                               "delete it to fall back on the model's config, or retrain")
            return settings, path
    return None, None


def saved_model_facts(model_dir: str) -> dict:
    """What the saved config files tell without loading the model: `vocab_size`, `sequence_length` (the
    `max_new_tokens` training sampled with, from training_generation_config.json, else the generation config's,
    else the config's `sequence_length`) and where the length came from."""
    facts: dict = {}
    for name in ("config.json", "generation_config.json", "training_generation_config.json"):
        path = os.path.join(model_dir, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                facts[name] = json.load(handle)
    config = facts.get("config.json", {})
    length, source = None, None
    for name in ("training_generation_config.json", "generation_config.json"):
        if facts.get(name, {}).get("max_new_tokens"):
            length, source = facts[name]["max_new_tokens"], f"{name.removesuffix('.json')}.max_new_tokens"
            break
    else:
        if config.get("sequence_length"):
            length, source = config["sequence_length"], "config.sequence_length"
    return {"vocab_size": config.get("vocab_size"), "sequence_length": length, "length_source": source}


def has_tokenizer(model_dir: str) -> bool:
    """Whether `model_dir` holds a saved tokenizer."""
    return any(os.path.isfile(os.path.join(model_dir, name)) for name in _TOKENIZER_FILES)


def pick(args: argparse.Namespace, name: str, settings: dict, key: str, source: str | None, fallback,
         *, warn_if_differs: bool):
    """`--name` if given (warning when it differs from what training used and that changes results), else the
    setting training used, else `fallback`."""
    given, trained = getattr(args, name), settings.get(key)
    if given is None:
        return trained if trained is not None else fallback
    if warn_if_differs and trained is not None and given != trained:
        warn(f"--{name} {given} differs from the {key} {trained} the model was trained with ({source}); "
             f"using {given}")
    return given


def oracle_choice(args: argparse.Namespace, settings: dict, source: str | None) -> tuple[int, str | None]:
    """(oracle_seed, oracle_params) to score against: the flags, else the oracle training used, else seed 0;
    a warning when a flag names another oracle than the one the model was trained on."""
    trained_params, trained_seed = settings.get("oracle_params"), settings.get("oracle_seed")
    trained = (f"oracle_params {trained_params}" if trained_params else f"oracle_seed {trained_seed}")
    if args.oracle_params is not None:
        if settings and os.path.abspath(args.oracle_params) != trained_params:
            warn(f"--oracle_params {args.oracle_params} is not the oracle the model was trained on "
                 f"({trained}, {source}); scoring against {args.oracle_params}")
        return args.oracle_seed or 0, args.oracle_params
    if args.oracle_seed is not None:
        if settings and (trained_params or args.oracle_seed != trained_seed):
            warn(f"--oracle_seed {args.oracle_seed} is not the oracle the model was trained on ({trained}, "
                 f"{source}); scoring against oracle_seed {args.oracle_seed}")
        return args.oracle_seed, None
    return (trained_seed if trained_seed is not None else 0), trained_params
