"""Contact sheets for hand-labelling the cuts of the real music video (bench/data/).

    python bench/label_sheets.py OUT_DIR [--no-transnet]

Candidates are the union of every boundary the registered detectors report, TransNetV2's local
peaks above 0.05, and every local peak of a permissive frame-difference score above 0.1;
candidates within 3 frames form one group. Each group becomes one row of a PNG sheet (8 rows a
sheet): 7 full-size frames, 3 before the candidate boundary, the boundary frame outlined in red,
3 after, with the sources and scores written above. A person looks at every sheet and keeps the
groups where the frames before and after are different takes; bench/data/music_video_cuts.json
holds the result and how it was chosen. Writes OUT_DIR/sheet_NN.png and OUT_DIR/groups.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def candidates(small: np.ndarray, p_transnet: np.ndarray | None, dets: dict) -> list[dict]:
    from mediafm_core.media.shots import _block_means, _histograms, _mad

    b, h = _block_means(small, 3), _histograms(small, 4)
    score = 0.5 * (np.minimum(_mad(b[1:], b[:-1]) * 4, 1) + 0.5 * np.abs(h[1:] - h[:-1]).sum(1))
    found: dict[int, set] = {}
    for name, frames in dets.items():
        for f in frames:
            found.setdefault(int(f), set()).add(name)
    p = p_transnet if p_transnet is not None else np.zeros(len(small))
    for i in range(1, len(p) - 1):
        if p[i] > 0.05 and p[i] >= p[i - 1] and p[i] >= p[i + 1]:
            found.setdefault(i + 1, set()).add("transnet>0.05")
    for i in range(2, len(score) - 2):
        if score[i] > 0.1 and score[i] == score[i - 2 : i + 3].max():
            found.setdefault(i + 1, set()).add("score")
    groups: list[list[int]] = []
    for f in sorted(found):
        if groups and f - groups[-1][-1] <= 3:
            groups[-1].append(f)
        else:
            groups.append([f])
    out = []
    for g in groups:
        lo = max(0, g[0] - 2)
        rep = int(np.argmax(score[lo : g[-1] + 1])) + lo + 1  # largest step in the group
        src = sorted(set().union(*(found[f] for f in g)))
        out.append(
            {
                "frames": g,
                "rep": rep,
                "src": src,
                "score": float(score[rep - 1]),
                "transnet": float(p[rep - 1]),
            }
        )
    return out


def draw(full: np.ndarray, groups: list[dict], out: Path, per: int = 8) -> int:
    from PIL import Image, ImageDraw

    h, w = full.shape[1:3]
    for s in range(0, len(groups), per):
        rows = groups[s : s + per]
        img = Image.new("RGB", (7 * (w + 4), len(rows) * (h + 14)), (40, 40, 40))
        pen = ImageDraw.Draw(img)
        for r, g in enumerate(rows):
            y = r * (h + 14)
            pen.text(
                (2, y),
                f"#{s + r} rep={g['rep']} {g['frames']} {','.join(g['src'])} "
                f"sc={g['score']:.2f} tn={g['transnet']:.2f}",
                fill=(255, 255, 0),
            )
            for k, f in enumerate(range(g["rep"] - 3, g["rep"] + 4)):
                if 0 <= f < len(full):
                    img.paste(Image.fromarray(full[f]), (k * (w + 4), y + 12))
                    if f == g["rep"]:
                        pen.rectangle(
                            [k * (w + 4) - 2, y + 11, k * (w + 4) + w + 1, y + 12 + h],
                            outline=(255, 0, 0),
                        )
        img.save(out / f"sheet_{s // per:02d}.png")
    return -(-len(groups) // per)


def main() -> None:
    import av

    from mediafm_core.media.decode import decode_small
    from mediafm_core.media.footage import land_music_video, music_video_path
    from mediafm_core.media.shots import DETECTORS, TransNetV2Detector, get_detector
    from mediafm_core.media.titles import open_title

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--no-transnet", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with av.open(str(music_video_path())) as c:
        full = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with tempfile.TemporaryDirectory() as tmp:
        title = open_title(land_music_video(tmp))
        small = decode_small(title)
    names = [n for n in DETECTORS if not (a.no_transnet and n == "transnetv2")]
    dets = {n: [t.boundary for t in get_detector(n).detect(small, title.fps)] for n in names}
    p = None
    if not a.no_transnet:
        import torch

        model = TransNetV2Detector()._load()
        with torch.inference_mode():
            single, _ = model.predict_frames(torch.from_numpy(small).to(model.device), quiet=True)
        p = single.float().cpu().numpy().reshape(-1)
    groups = candidates(small, p, dets)
    (out / "groups.json").write_text(json.dumps(groups, indent=1))
    print(f"{len(groups)} candidate groups on {draw(full, groups, out)} sheets in {out}")


if __name__ == "__main__":
    main()
