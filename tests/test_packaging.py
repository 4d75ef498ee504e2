"""The built wheel carries what an installed user needs: the recipes (also by name) and the metric modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from seqgan_hf.cli import _parse_train_args
from seqgan_hf.cli_checks import packaged_recipe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_the_wheel_holds_every_recipe_and_metric_module(tmp_path):
    # From a copy of the sources (a stale build/ folder in the repo would hide missing package data); no build
    # isolation: the venv's setuptools builds it, with no download.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", "build", "*.egg-info", "outputs", "runs", ".git", "__pycache__", ".pytest_cache", ".ruff_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", str(source),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=600, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("seqgan_hf-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    recipes = os.path.join(REPO, "recipes")
    for folder, _, files in os.walk(recipes):
        for name in files:
            relative = os.path.relpath(os.path.join(folder, name), recipes)
            assert f"seqgan_hf/recipes/{relative}" in names, relative
    assert "seqgan_hf/recipes/text_pretrained_lora.yaml" in names
    assert any(name.startswith("seqgan_hf/metrics/") and name.endswith(".py") for name in names)


def test_a_packaged_recipe_is_found_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repo: only the package's copy can be found
    assert packaged_recipe("oracle_quick") == packaged_recipe("oracle_quick.yaml")
    assert packaged_recipe("no_such_recipe") is None
    _, config = _parse_train_args(["--config", "oracle_smoke", "--output_dir", str(tmp_path / "out")])
    assert config.output_dir == str(tmp_path / "out") and config.adversarial_iterations > 0


def test_the_text_recipes_parse(tmp_path):
    """Every field of the text recipes is a known, valid one (their data and models are given here as local stand-ins)."""
    corpus = tmp_path / "lines.txt"
    corpus.write_text("a line\nanother line\n")
    script_args, config = _parse_train_args(["--config", "text_shakespeare", "--train_file", str(corpus),
                                             "--eval_file", str(corpus), "--output_dir", str(tmp_path / "out")])
    assert script_args.task == "text" and script_args.tokenizer_vocab_size == 5000 and config.sequence_length == 16
