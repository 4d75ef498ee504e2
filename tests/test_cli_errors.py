"""`seqgan-hf` refuses every bad input with one `error: <what> (<argument>): <fix>` line and exit status 2,
before any work; `--debug` shows the traceback. `sample` / `evaluate` default to the settings training used
(`seqgan_cli.json`), else to the model's config.

Everything runs in-process through `seqgan_hf.cli.main` (two subprocesses check the real console behaviour);
one tiny model is trained per module, with a non-default sequence length, vocabulary and oracle seed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
import transformers
import yaml

from seqgan_hf import cli
from seqgan_hf.checkpoint import NonFiniteError
from seqgan_hf.cli import main
from seqgan_hf.cli_checks import SETTINGS_NAME, CLIError, error_line
from seqgan_hf.oracle import OracleTask
from seqgan_hf.run_dir import OutputDirError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# recipes/oracle_smoke.yaml shrunk further; sequence_length, vocab_size and oracle_seed are not the defaults.
TINY = [
    "--vocab_size", "30", "--num_train", "32", "--num_test", "32", "--eval_samples", "32",
    "--sequence_length", "6", "--oracle_seed", "3", "--mle_epochs", "1",
    "--discriminator_pretrain_rounds", "1", "--num_negatives", "16", "--adversarial_iterations", "1",
    "--rollout_num", "2",
    "--discriminator_filter_sizes", "1", "2", "--discriminator_num_filters", "4", "4",
    "--discriminator_embedding_dim", "8", "--generator_embedding_dim", "8", "--generator_hidden_dim", "8",
    "--per_device_train_batch_size", "16", "--discriminator_batch_size", "16", "--disable_tqdm", "true",
]
RECIPES = {
    "list": "- mle_epochs\n- 5\n",
    "string": "just a sentence\n",
    "empty": "",
    "malformed": "mle_epochs: 1\n  rollout_num: [2\n",
    "float_for_int": "mle_epochs: 1.5\n",
    "string_for_float": "learning_rate: fast\n",
    "unknown_key": "rollout_number: 3\n",
    "bool_for_string": "save_strategy: no\n",
    "scalar_for_list": "discriminator_filter_sizes: 3\n",
    "quoted_int": "num_train: '5'\n",
    "zero_num_train": "num_train: 0\n",
}


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    """A tiny trained model (`run`) and the files the cases point at."""
    root = tmp_path_factory.mktemp("cli_errors")
    run = root / "run"
    main(["train", *TINY, "--output_dir", str(run)])
    text_model = root / "text_model"  # the same model, claimed by its settings to be a text-task model
    shutil.copytree(run, text_model)
    settings = json.loads((text_model / SETTINGS_NAME).read_text())
    (text_model / SETTINGS_NAME).write_text(json.dumps({**settings, "task": "text"}))
    for name, text in RECIPES.items():
        (root / f"{name}.yaml").write_text(text)
    (root / "empty_dir").mkdir()
    (root / "notes.txt").write_text("not an oracle\n")
    return {"root": str(root), "run": str(run), "text_model": str(text_model),
            "empty_dir": str(root / "empty_dir"), "a_file": str(root / "notes.txt"),
            **{name: str(root / f"{name}.yaml") for name in RECIPES}}


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def assert_one_error(code: int, err: str, names: str | tuple[str, ...]) -> str:
    """Exit status 2, exactly one `error:` line holding `names` (the argument, and what is wrong where two
    checks could name it), no traceback; returns the line."""
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err, err
    for name in (names,) if isinstance(names, str) else names:
        assert name in lines[0], lines[0]
    return lines[0]


def _fail(*args, **kwargs):
    raise AssertionError("work started before the bad input was refused")


T = ["train", *TINY, "--output_dir", "{out}"]
# (argv with {placeholders}, what the error line must hold: the argument, and what is wrong where another
# check would name the same argument). Train cases get a fresh {out} that must stay absent.
MISSING = "does not exist"
CASES = {
    # --config: the YAML is checked whole before anything is built
    "yaml_list": (T + ["--config", "{list}"], ("--config", "holds a list")),
    "yaml_string": (T + ["--config", "{string}"], ("--config", "holds a string")),
    "yaml_empty": (T + ["--config", "{empty}"], ("--config", "is empty")),
    "yaml_malformed": (T + ["--config", "{malformed}"], "line 2"),
    "yaml_float_for_int": (T + ["--config", "{float_for_int}"], "mle_epochs"),
    "yaml_string_for_float": (T + ["--config", "{string_for_float}"], "learning_rate"),
    "yaml_unknown_key": (T + ["--config", "{unknown_key}"], "rollout_number"),
    "yaml_bool_for_string": (T + ["--config", "{bool_for_string}"], "save_strategy"),
    "yaml_scalar_for_list": (T + ["--config", "{scalar_for_list}"], "discriminator_filter_sizes"),
    "yaml_quoted_int": (T + ["--config", "{quoted_int}"], "num_train"),
    "yaml_missing": (T + ["--config", "{root}/no_such.yaml"], ("--config", MISSING)),
    "yaml_zero_num_train": (["train", "--config", "{zero_num_train}", "--output_dir", "{out}"],
                            "--num_train"),
    # train: script arguments
    "num_train_0": (T + ["--num_train", "0"], "--num_train"),
    "num_test_negative": (T + ["--num_test", "-1"], "--num_test"),
    "eval_samples_0": (T + ["--eval_samples", "0"], "--eval_samples"),
    "oracle_seed_negative": (T + ["--oracle_seed", "-1"], "--oracle_seed"),
    "seed_negative": (T + ["--seed", "-1"], "--seed"),
    "vocab_size_1": (T + ["--vocab_size", "1"], "--vocab_size"),
    "task_unknown": (T + ["--task", "poetry"], "--task"),
    "text_without_train_file": (T + ["--task", "text"], "--train_file"),
    "hidden_dim_0": (T + ["--generator_hidden_dim", "0"], "--generator_hidden_dim"),
    "num_labels_3": (T + ["--discriminator_num_labels", "3"], "--discriminator_num_labels"),
    "filter_counts_mismatch": (T + ["--discriminator_num_filters", "4"], "--discriminator_num_filters"),
    "rollout_num_0": (T + ["--rollout_num", "0"], "rollout_num"),  # SeqGANConfig's own check, one line too
    # train: paths, never reported as Hub or network problems
    "train_file_missing": (T + ["--train_file", "{root}/no/such.txt"], ("--train_file", MISSING)),
    "oracle_params_missing": (T + ["--oracle_params", "{root}/no_such.npz"], ("--oracle_params", MISSING)),
    "oracle_params_not_npz": (T + ["--oracle_params", "{a_file}"], "--oracle_params"),
    "generator_missing": (T + ["--generator", "./no/such/dir"], ("--generator", MISSING)),
    "generator_not_a_model": (T + ["--generator", "{empty_dir}"], "--generator"),
    "discriminator_missing": (T + ["--discriminator", "/no/such/classifier"], ("--discriminator", MISSING)),
    "generator_hub_id_unavailable": (T + ["--generator", "nobody/no-such-model"], "--generator"),
    "tokenizer_missing": (T + ["--task", "text", "--train_file", "{a_file}", "--tokenizer", "./no/tok"],
                          ("--tokenizer", MISSING)),
    "output_dir_is_a_file": (["train", *TINY, "--output_dir", "{a_file}"],
                             ("--output_dir", "notes.txt' is a file")),
    "output_dir_under_a_file": (["train", *TINY, "--output_dir", "{a_file}/run"],
                                ("--output_dir", "cannot be created")),
    "output_dir_holds_a_run": (["train", *TINY, "--output_dir", "{run}"], "--output_dir"),
    # sample: all before the model is loaded
    "sample_missing_model": (["sample", "{root}/no_such_run"], ("model_dir", MISSING)),
    "sample_not_a_model": (["sample", "{empty_dir}"], "model_dir"),
    "sample_hub_id_unavailable": (["sample", "nobody/no-such-model"], "model_dir"),
    "sample_num_0": (["sample", "{run}", "--num", "0"], "--num"),
    "sample_batch_size_0": (["sample", "{run}", "--batch_size", "0"], "--batch_size"),
    "sample_max_new_tokens_0": (["sample", "{run}", "--max_new_tokens", "0"], "--max_new_tokens"),
    "sample_temperature_0": (["sample", "{run}", "--temperature", "0"], "--temperature"),
    "sample_output_folder_missing": (["sample", "{run}", "--output", "{root}/no/such/samples.txt"],
                                     ("--output", MISSING)),
    "sample_output_is_a_folder": (["sample", "{run}", "--output", "{empty_dir}"],
                                  ("--output", "is a folder")),
    "sample_text_on_oracle_model": (["sample", "{run}", "--text"], "--text"),
    # evaluate
    "evaluate_missing_model": (["evaluate", "./no/such/run"], ("model_dir", MISSING)),
    "evaluate_num_test_0": (["evaluate", "{run}", "--num_test", "0"], "--num_test"),
    "evaluate_num_samples_negative": (["evaluate", "{run}", "--num_samples", "-5"], "--num_samples"),
    "evaluate_plot_without_sweep": (["evaluate", "{run}", "--plot", "{root}/p.png"], "--plot"),
    "evaluate_bleu_without_sweep": (["evaluate", "{run}", "--bleu"], "--bleu"),
    "evaluate_temperatures_not_numbers": (["evaluate", "{run}", "--sweep", "--temperatures", "a,b"],
                                          "--temperatures"),
    "evaluate_temperature_0": (["evaluate", "{run}", "--sweep", "--temperatures", "0,1"], "--temperatures"),
    "evaluate_references_missing": (["evaluate", "{run}", "--sweep", "--references", "{root}/no.txt"],
                                    ("--references", MISSING)),
    "evaluate_oracle_params_missing": (["evaluate", "{run}", "--oracle_params", "{root}/o.npz"],
                                       ("--oracle_params", MISSING)),
    "evaluate_output_folder_missing": (["evaluate", "{run}", "--output", "{root}/no/r.json"],
                                       ("--output", MISSING)),
    "evaluate_text_model_without_references": (["evaluate", "{text_model}"], "--references"),
    "evaluate_vocab_mismatch": (["evaluate", "{run}", "--vocab_size", "40"], "--vocab_size"),
    "unknown_command": (["frobnicate"], "command"),
    "train_unknown_flag": (T + ["--rollout_number", "3"], ("--rollout_number", "did you mean --rollout_num")),
    "train_stray_value": (T + ["stray"], "stray"),
}
# Found once a model is loaded: a vocabulary mismatch needs model and oracle (still before scoring); a Hub id
# that is no local folder is only known to be unavailable when loading it fails (offline in the tests).
LOADS_MODEL = {"evaluate_vocab_mismatch", "generator_hub_id_unavailable", "sample_hub_id_unavailable"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_before_any_work(case, paths, tmp_path, capsys, monkeypatch):
    template, names = CASES[case]
    out = tmp_path / "out"
    argv = [arg.format(out=out, **paths) for arg in template]
    if case not in LOADS_MODEL:
        monkeypatch.setattr(OracleTask, "create", _fail)  # no data sampled ...
        monkeypatch.setattr(cli, "_build_models", _fail)  # ... no model built
        monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", _fail)  # ... or loaded
    code, _, err = run_main(argv, capsys)
    assert_one_error(code, err, names)
    assert not out.exists()


def test_yaml_syntax_error_names_the_line_and_column(paths, capsys):
    code, _, err = run_main(["train", "--config", paths["malformed"]], capsys)
    line = assert_one_error(code, err, "--config")
    assert "line 2, column" in line and paths["malformed"] in line


def test_yaml_type_error_names_key_value_and_expected_type(paths, capsys):
    code, _, err = run_main(["train", "--config", paths["float_for_int"]], capsys)
    line = assert_one_error(code, err, "mle_epochs")
    assert "1.5" in line and "an integer" in line


def test_yaml_int_for_float_and_exponent_are_accepted(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 1\ndiscriminator_learning_rate: 1e-4\nmle_epochs: 2\n")
    _, config = cli._parse_train_args(["--config", str(recipe), "--output_dir", str(tmp_path / "out")])
    assert (config.learning_rate, config.discriminator_learning_rate, config.mle_epochs) == (1, 1e-4, 2)


@pytest.mark.parametrize("error", [
    ValueError("bad value\nsecond line"), TypeError("bad type"), FileNotFoundError("no file"),
    NotImplementedError("not yet"), PermissionError("denied"), yaml.YAMLError("bad yaml"),
    NonFiniteError("loss is nan"), OutputDirError("output_dir in use"), CLIError("what", "--arg", "fix"),
], ids=lambda error: type(error).__name__)
def test_library_user_errors_are_one_line(error, capsys, monkeypatch):
    def raises(argv):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "sample", raises)
    code, _, err = run_main(["sample", "x"], capsys)
    line = assert_one_error(code, err, str(error).splitlines()[0])
    assert error_line(ValueError("a\n  b")) == "error: a b"
    if isinstance(error, NonFiniteError | OutputDirError):  # the package's own types are named
        assert line.startswith(f"error: {type(error).__name__}: ")


def test_unexpected_exceptions_keep_their_traceback(monkeypatch):
    def bug(argv):
        raise KeyError("a bug")

    monkeypatch.setitem(cli.COMMANDS, "sample", bug)
    with pytest.raises(KeyError):
        main(["sample", "x"])


def test_debug_anywhere_re_raises(monkeypatch, tmp_path):
    monkeypatch.setattr(OracleTask, "create", _fail)
    with pytest.raises(CLIError, match="--num_train"):
        main(["train", "--num_train", "0", "--debug", "--output_dir", str(tmp_path / "out")])
    with pytest.raises(CLIError, match="model_dir"):
        main(["--debug", "sample", str(tmp_path / "missing")])


def test_argparse_errors_keep_usage_and_status_2(paths, capsys):
    code, _, err = run_main(["sample", paths["run"], "--num", "many"], capsys)
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and "usage:" in err and len(lines) == 1 and "--num" in lines[0], err


def test_console_prints_one_line_and_debug_the_traceback(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "seqgan_hf.cli", "sample", str(tmp_path / "missing")]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert_one_error(plain.returncode, plain.stderr, "model_dir")
    debug = subprocess.run(command + ["--debug"], capture_output=True, text=True, timeout=300, env=env,
                           cwd=REPO)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "CLIError" in debug.stderr


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc: paths nobody (not root) can write")
@pytest.mark.parametrize("output", ["/proc/version", "/proc/seqgan-samples.txt"])
def test_sample_unwritable_output_is_refused_before_sampling(output, paths, capsys, monkeypatch):
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", _fail)
    code, _, err = run_main(["sample", paths["run"], "--num", "2", "--output", output], capsys)
    assert "cannot be written" in assert_one_error(code, err, "--output")


# ---- the settings training used ---------------------------------------------------------------------------

def _evaluate(capsys, *args: str) -> tuple[dict, str]:
    main(["evaluate", *args])
    out, err = capsys.readouterr()
    return json.loads(out[out.index("{"):]), err


def _sample_lengths(capsys, *args: str) -> tuple[list[int], str]:
    main(["sample", *args])
    out, err = capsys.readouterr()
    return [len(line.split()) for line in out.splitlines()], err


def test_train_writes_its_settings(paths):
    settings = json.loads(open(os.path.join(paths["run"], SETTINGS_NAME)).read())
    assert settings["task"] == "oracle"
    assert (settings["oracle_seed"], settings["sequence_length"], settings["vocab_size"]) == (3, 6, 30)
    assert (settings["num_test"], settings["eval_samples"], settings["oracle_params"]) == (32, 32, None)


def test_settings_are_written_when_training_starts(tmp_path, monkeypatch):
    from seqgan_hf.trainer import SeqGANTrainer

    def crash(self, loader):
        raise RuntimeError("crashed in MLE")

    monkeypatch.setattr(SeqGANTrainer, "_run_mle", crash)
    out = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="crashed in MLE"):
        main(["train", *TINY, "--output_dir", str(out)])
    assert json.loads((out / SETTINGS_NAME).read_text())["oracle_seed"] == 3


def test_evaluate_defaults_to_the_training_settings(paths, tmp_path, capsys):
    default, err = _evaluate(capsys, paths["run"])
    assert "warning:" not in err
    explicit, err = _evaluate(capsys, paths["run"], "--oracle_seed", "3", "--sequence_length", "6",
                              "--vocab_size", "30", "--num_test", "32", "--num_samples", "32")
    assert explicit == default and "warning:" not in err
    # A checkpoint folder takes the settings of its run.
    checkpoint = tmp_path / "run2" / "checkpoint-4"
    shutil.copytree(paths["run"], checkpoint)
    (checkpoint / SETTINGS_NAME).rename(checkpoint.parent / SETTINGS_NAME)
    assert _evaluate(capsys, str(checkpoint))[0] == default


def test_evaluate_warns_when_a_flag_names_another_oracle(paths, capsys):
    default, _ = _evaluate(capsys, paths["run"])
    other, err = _evaluate(capsys, paths["run"], "--oracle_seed", "0")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "--oracle_seed 0" in warnings[0] and "oracle_seed 3" in warnings[0]
    assert other != default


def test_evaluate_without_settings_uses_the_model_config(paths, tmp_path, capsys, caplog):
    bare = tmp_path / "bare"
    shutil.copytree(paths["run"], bare)
    (bare / SETTINGS_NAME).unlink()
    caplog.set_level(logging.INFO, logger="seqgan_hf")
    result, _ = _evaluate(capsys, str(bare), "--num_test", "32", "--num_samples", "32")
    assert f"has no {SETTINGS_NAME}" in caplog.text
    assert "vocab_size 30 from its config.json" in caplog.text
    assert "sequence_length 6 from its training_generation_config.max_new_tokens" in caplog.text
    explicit, _ = _evaluate(capsys, paths["run"], "--oracle_seed", "0", "--num_test", "32",
                            "--num_samples", "32")
    assert result == explicit


def test_sample_uses_the_trained_length(paths, tmp_path, capsys, caplog):
    assert _sample_lengths(capsys, paths["run"], "--num", "3")[0] == [6, 6, 6]
    # The settings come before the generation config ...
    edited = tmp_path / "edited"
    shutil.copytree(paths["run"], edited)
    generation = json.loads((edited / "training_generation_config.json").read_text())
    (edited / "training_generation_config.json").write_text(json.dumps({**generation, "max_new_tokens": 9}))
    assert _sample_lengths(capsys, str(edited), "--num", "2")[0] == [6, 6]
    # ... which is the fallback, said in a log line.
    (edited / SETTINGS_NAME).unlink()
    caplog.set_level(logging.INFO, logger="seqgan_hf")
    assert _sample_lengths(capsys, str(edited), "--num", "2")[0] == [9, 9]
    assert f"has no {SETTINGS_NAME}" in caplog.text
    # An explicit flag wins, with a warning naming both lengths.
    lengths, err = _sample_lengths(capsys, paths["run"], "--num", "2", "--max_new_tokens", "4")
    assert lengths == [4, 4]
    assert any(line.startswith("warning:") and "4" in line and "6" in line for line in err.splitlines())
