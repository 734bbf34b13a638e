"""The demo's probe table says what its numbers mean (issue 13): fold spread, the paired difference
from fused, one line that a catalogue this small cannot separate the rows, and where the real
comparison lives."""

import duckdb
import pyarrow as pa

from mediafm_assets.demo import N_TITLES, print_probes


def test_probe_table_prints_spread_paired_difference_and_a_caveat(capsys):
    folds = {"fused": [0.60, 0.70, 0.80], "contextual": [0.62, 0.69, 0.83]}
    rows = [
        {
            "features": f,
            "task": "tone",
            "metric": "auc",
            "mean": sum(v) / 3,
            "std": 0.08,
            "n_clips": 40,
            "model_version": "m",
            "folds": v,
        }
        for f, v in folds.items()
    ]
    con = duckdb.connect()
    table = pa.Table.from_pylist(rows)
    con.register("scores_arrow", table)
    con.execute("CREATE VIEW probe_scores AS SELECT * FROM scores_arrow")
    print_probes(con)
    out = capsys.readouterr().out
    assert "| fused | 0.700 ± 0.080 |" in out and "| contextual | 0.713 ± 0.080 |" in out
    # paired over the same folds: differences +0.02, -0.01, +0.03 -> mean +0.013, 2 of 3 won
    assert "| contextual | +0.013 (t +1.1, 2/3) |" in out
    assert f"{N_TITLES} titles in 3 folds" in out and "cannot separate these rows" in out
    assert "bench/ablation.py" in out
