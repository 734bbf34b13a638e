"""`mediafm retire` on bad input: one line naming the title, exit 2, nothing created."""

from mediafm_core.cli import main


def test_retire_under_a_missing_root_creates_nothing(tmp_path, capsys):
    root = tmp_path / "no-such-root"
    assert main(["retire", "t_1", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mediafm retire: error: title 't_1': storage root {root} does not exist"
    assert not root.exists()  # before: <root>/lancedb was created by the attempt


def test_retire_of_an_unknown_title_under_an_existing_root(tmp_path, capsys):
    assert main(["retire", "t_1", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mediafm retire: error: title 't_1': is not in the store under {tmp_path}"
    assert not (tmp_path / "retired").exists()  # no retirement record for a title never stored
