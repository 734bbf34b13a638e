"""How much can context add on the popularity task, and do contextual features carry it?

    OMP_NUM_THREADS=2 .venv/bin/python bench/popularity_headroom.py --work W [--seed 0]

`W` is a `bench/ablation.py --work` folder (data/ and ckpt_muon/). The benchmark's popularity
score (mediafm_core.synthetic.narrative) adds two context terms to the clip's own appeal and
tension: proximity to the title's climax and content contrast with the neighbouring scenes.
This regenerates the benchmark's latent state from its seed (same settings as the ablation) and
prints:
- the probe's Kendall tau on fused features, on contextual (hidden) features, and on fused
  features plus the true context terms (the most a linear probe could gain from knowing them);
- within-title R^2 of a grouped-CV ridge predicting each context term from the fused and from
  the contextual clip features (does the encoder represent it better than the clip itself?).

A diagnostic of the benchmark, never part of the tests.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "2")


def _within_r2(X, y, groups, folds: int = 5) -> float:
    """R^2 of a ridge (alpha by inner CV) on per-title de-meaned data, folds grouped by title."""
    import numpy as np
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GroupKFold

    from mediafm_core.probes.linear import demean_within

    Xs, ys = demean_within(X, groups), demean_within(y[:, None], groups)[:, 0]
    pred = np.zeros_like(ys)
    for tr, te in GroupKFold(folds).split(Xs, ys, groups):
        pred[te] = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(Xs[tr], ys[tr]).predict(Xs[te])
    return float(1 - ((ys - pred) ** 2).sum() / (ys**2).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="bench/ablation.py --work folder")
    ap.add_argument("--seed", type=int, default=0, help="the seed the ablation ran with")
    ap.add_argument("--titles", type=int, default=200)
    ap.add_argument("--dims", type=int, nargs=3, default=(64, 64, 64))
    ap.add_argument("--folds", type=int, default=5)
    a = ap.parse_args()

    import numpy as np
    import torch

    from mediafm_core.evaluation import load_benchmark
    from mediafm_core.inference import clip_vectors, embed_titles
    from mediafm_core.probes.linear import run_probe
    from mediafm_core.synthetic.narrative import (
        NarrativeConfig,
        _climax_proximity,
        _contrast,
        generate,
    )
    from mediafm_core.training.checkpoint import load_checkpoint

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    ds = generate(NarrativeConfig(n_titles=a.titles, dims=tuple(a.dims), seed=a.seed))
    latent = {t.title_id: t for t in ds.titles}
    bench = load_benchmark(f"{a.work}/data", tasks=("popularity",))
    c = bench.clips["popularity"]
    spans = list(zip(c.title_ids, c.shot_start, c.shot_end))
    terms = {
        "climax proximity": np.array([_climax_proximity(latent[t], s, e) for t, s, e in spans]),
        "contrast": np.array([_contrast(latent[t], s, e) for t, s, e in spans]),
    }
    model, _ = load_checkpoint(f"{a.work}/ckpt_muon")
    hidden = embed_titles(model.eval(), bench.fused, bench.globals_, "hidden", 8)
    F = clip_vectors(bench.fused, c.title_ids, c.shot_start, c.shot_end)
    H = clip_vectors(hidden, c.title_ids, c.shot_start, c.shot_end)
    cols = np.column_stack(list(terms.values()))

    def tau(X) -> str:
        return f"{run_probe(X, c, folds=a.folds, seed=0).mean:.3f}"

    print(f"seed {a.seed}, {len(c)} popularity clips, {a.folds} folds\n")
    print("| features | Kendall tau |\n|---|---|")
    print(f"| fused | {tau(F)} |\n| contextual (hidden) | {tau(H)} |")
    print(f"| fused + true climax proximity | {tau(np.hstack([F, cols[:, :1]]))} |")
    print(f"| fused + true climax proximity + true contrast | {tau(np.hstack([F, cols]))} |")
    print("\n| context term | within-title R^2 from fused | from contextual |\n|---|---|---|")
    for name, y in terms.items():
        r2 = [_within_r2(X, y, c.title_ids) for X in (F, H)]
        print(f"| {name} | {r2[0]:.3f} | {r2[1]:.3f} |")


if __name__ == "__main__":
    main()
