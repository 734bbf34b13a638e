"""Training configuration (no torch import: the CLI and Dagster config read it cheaply)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

CORRUPTIONS = ("mask", "bert")  # TrainConfig.corruption choices
CONTRASTIVE_ON = ("output", "head")  # TrainConfig.contrastive_on choices
CONTRASTIVE_NEGATIVES = ("title", "batch")  # TrainConfig.contrastive_negatives choices


@dataclass
class TrainConfig:
    # --- model shape: a named size (configuration_mediafm.SIZES) plus optional overrides
    size: str = "auto"  # auto (by training shots, model.configuration_mediafm.AUTO_SIZES) | tiny |
    # small | medium | base | large
    layers: int | None = None  # override the size's layer count
    hidden: int | None = None  # override the size's width
    heads: int | None = None  # override the size's attention heads
    dropout: float | None = None  # override the model's dropout (default 0; see `window`)
    # --- optimisation
    optimizer: str = "muon"  # muon (Muon on body matrices + AdamW) | adamw (AdamW everywhere)
    steps: int = 3000  # at most this many optimiser steps (early stopping usually ends sooner)
    batch_size: int = 8  # windows per step per process (DDP: per rank)
    # Peak learning rates, one small search for both on the narrative tune cell (best val MSM):
    # AdamW 3e-4 0.529, 1e-3 0.516, 3e-3 0.542; Muon 0.01 0.531, 0.02 0.503, 0.05 0.4997 (AdamW
    # part 1e-3; 3e-3 there gave 0.504). Muon 0.02 is kept: 0.05 was better by 0.004 on one cell
    # and needed 2300 steps instead of 1300.
    lr: float = 1e-3  # AdamW peak learning rate
    muon_lr: float = 0.02  # Muon peak learning rate (scale of the orthogonalised update)
    warmup: int = 100  # linear warm-up steps, capped at a fifth of `steps`
    min_lr_ratio: float = 0.1  # cosine decay ends at this fraction of the peak
    # Decoupled decay on matrices (Muon body + AdamW projections). 0.1 on the narrative tune cell:
    # best val MSM 0.496 vs 0.503, probes within noise of 0.01 (retrieval -0.002 vs +0.002); not
    # yet confirmed on other cells, so 0.01 stays.
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    # Fraction of real shots replaced by [MASK] (the seed's 20 %). Narrative tune cell, best val MSM
    # (always scored on 20 % masks) 0.500 / 0.503 / 0.503 and retrieval -0.001 / +0.002 / +0.006
    # for 0.15 / 0.2 / 0.3: within noise, so the seed's value stays.
    mask_ratio: float = 0.2
    # Training masks cover runs of this many consecutive shots (1 = single shots, the seed's MSM).
    # Validation always masks single shots, so val losses stay comparable with the baselines.
    # Span 4 on the whole suite (bench/ablation.py --suite --set mask_span=4, Muon, contextual
    # minus fused): popularity and retrieval up on 4 of 6 cells (recurring/s22 pop +0.042 vs
    # +0.024, retrieval +0.033 vs +0.008), ad relevancy and genre down on 3 (recurring/s22 genre
    # +0.009 vs +0.027), drift/s21 still ties (ad -0.002, pop -0.007); 27 of 30 wins vs 28. Mixed,
    # so single shots stay.
    mask_span: int = 1
    # MSM input corruption of the selected shots: "mask" (all -> [MASK], loss there only) |
    # "bert" (80 % [MASK], 10 % a random other real shot, 10 % unchanged; loss on all selected,
    # so outputs at unmasked-looking positions are trained too). Validation always uses "mask".
    corruption: str = "mask"
    # Auxiliary loss at the unselected real shots (target = the shot itself), weighted by this;
    # 0 = the seed's MSM (masked positions only). Chosen on the suite's tune cells (bench/suite.py,
    # narrative seed 11, 240 titles, noise 1.5, small, Muon): best validation MSM 0.542 (0),
    # 0.523 (0.1), 0.503 (0.3), 0.535 (1.0); on drift seed 11, 0.568 (0) vs 0.524 (0.3). The
    # masked-only loss also gave worse frozen features there (its visible outputs over-smooth:
    # popularity -0.029 / retrieval -0.065 against fused) - the masked half of the default
    # representation now carries that smoothing instead. Val loss stays masked-only.
    unmasked_weight: float = 0.3
    # InfoNCE beside MSM (issue 20, msm.contrastive_loss): each masked prediction, unit-normalised,
    # is scored against every real shot's fused vector in its title window (its own the positive,
    # the others the negatives, wav2vec 2.0-style) at `contrastive_temperature`, weighted by this
    # and added to the training loss; 0 = MSM alone (the step is then exactly the one without the
    # term). Validation MSM stays the plain masked loss. Tune cells (bench/suite.py, small, 300
    # steps, Muon; README "Contrastive term beside MSM"), retrieval contextual minus fused,
    # narrative / drift: 0 -0.001 / -0.007; 0.03 -0.011 / +0.007; 0.1 -0.007 / +0.024 (drift
    # popularity -0.016); 0.5 -0.042 / -0.059 and 1.0 -0.105 / -0.117 (ad, popularity, tone lost
    # too); best val MSM rose with every weight (0.536 / 0.567 at 0, 0.545 / 0.581 at 0.1). A
    # masked shot is barely identifiable among its title's shots (val InfoNCE 4.4 nats against a
    # chance of 5.3). Weight 0.3 at temperature 0.5 (all four other tasks kept on the tune
    # cells) on the confirm cells: retrieval up on 3 of 4 (at most +9.4 % of fused, recurring/s22)
    # but popularity down on 3 (recurring -0.115 / -0.097 against -0.054 / -0.057). At 1000 steps
    # the same setting raised retrieval on all 6 cells (+0.016 to +0.057; +15.5 % of fused on
    # recurring/s21) but cut genre on all 6 (below fused on narrative/s11 and drift/s21), so it
    # stayed off until a 3000-step suite said otherwise. Under the centred representation
    # (inference.DEFAULT_REPRESENTATION, whose genre gain offsets the term's genre cost), 3000
    # steps, all six cells, retrieval minus fused with the term: +15.6 / +24.6 / +14.4 / +33.7 /
    # +19.0 / +27.0 % of fused against +15.9 / +24.3 / +14.1 / +32.9 / +11.1 / +5.9 % without
    # (recurring gains most); the same 26 of 30 (cell, task) pairs above fused, but 21 with
    # t >= 2 against 24; best val MSM +0.015 to +0.023 and ~27 % fewer training shots a second
    # on a CPU; Muon's best val MSM above AdamW's on drift/s11 (0.5549 / 0.5489; below it on all
    # six cells without the term); the media benchmark (seed 0) 1 win of 5 against 2. So it
    # stays off: it meets no criterion the recipe misses without it (narrative/s21 stays below
    # +15 %) and breaks one it meets. README "Centred output". Temperature 0.5 is the measured
    # setting for when it is switched on.
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.5
    # What the InfoNCE scores: "output" = the MSM prediction itself (output head); "head" = a
    # separate linear head from the hidden state (model config contrastive_head), so the output
    # head (the features) is trained by MSM alone and only the body sees the contrastive signal.
    # "head" at weight 1.0 lost retrieval by 0.163 / 0.085 and popularity by 0.151 / 0.135 on the
    # tune cells while genre rose (+0.098 / +0.114): no better than "output".
    contrastive_on: str = "output"
    # The InfoNCE's distractors: "title" = the other real shots of the masked shot's own title
    # window; "batch" = every real shot of the batch (other titles too), so what a title's shots
    # share (its genre, sets, cast) still separates them from other titles' shots. Measured at
    # weight 0.3, temperature 0.5, 1000 steps on the tune cells (output+masked features): "batch"
    # kept genre (+0.019 / +0.040 against +0.027 / +0.044 without the term and -0.025 / -0.001
    # with title negatives) but lost the term's retrieval gain (+0.003 / +0.042 against +0.008 /
    # +0.039 without, +0.024 / +0.070 with title negatives): telling titles apart is easy, and
    # the within-title ranking that retrieval needs comes from the title's own negatives.
    contrastive_negatives: str = "title"
    # --- data
    # Longest training window in shots (longer titles: a random crop). Random 128-shot crops with
    # batch 16 and dropout 0.1 were measured on the tune cells (bench/suite.py) and lost: best val
    # MSM 0.534 / 0.554 (narrative / drift) against 0.503 / 0.524, and their features fell below
    # fused on popularity and retrieval by 0.07-0.13; the same with BERT's 80/10/10 corruption
    # (drift 0.548) too. Whole titles (<= 512) in batches of 8, no dropout, keep context.
    window: int = 512
    seed: int = 0  # seeds init, window sampling and masks (same seed -> same weights on CPU)
    val_fraction: float = 0.1  # share of titles held out for validation (chosen by title id hash)
    val_titles: list[str] | None = None  # explicit held-out titles (overrides val_fraction)
    val_seed: int = 1234  # fixed seed of the validation masks (same masks every evaluation)
    # Streaming reads (issue 17): windows are read from the dataset as steps need them.
    prefetch: int = 2  # batches built ahead in a background thread; 0 = build in the step
    cache_mb: float = 256.0  # decoded Parquet row groups kept for reuse, MiB per process
    in_memory: bool = False  # read the whole input into memory first (the pre-streaming path)
    # --- runtime
    device: str = "auto"  # auto (cuda if available) | cpu | cuda
    compile: bool = False  # torch.compile the model for the training step
    eval_every: int = 100  # validate every N steps (and at the end); 0 = only at the end
    checkpoint_every: int = 200  # write a resumable checkpoint every N steps; 0 = only at the end
    log_every: int = 10  # log a progress line (and call the callback) every N steps
    keep_best: bool = True  # model.safetensors = the weights with the lowest validation MSM
    patience: int = 5  # stop after this many evaluations without a new best; 0 = never
    min_delta: float = 0.0  # a new best must beat the old by more than this (cosine distance)
    resume: bool = False  # continue from the checkpoint in out_dir if it has trainer state
    extra: dict = field(default_factory=dict)  # free-form notes stored in config.json

    def __post_init__(self) -> None:
        if self.optimizer not in ("muon", "adamw"):
            raise ValueError(f"optimizer must be 'muon' or 'adamw', got {self.optimizer!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        for name in ("steps", "batch_size", "window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.corruption not in CORRUPTIONS:
            raise ValueError(f"corruption must be 'mask' or 'bert', got {self.corruption!r}")
        if self.unmasked_weight < 0:
            raise ValueError(f"unmasked_weight must be >= 0, got {self.unmasked_weight}")
        if self.contrastive_weight < 0:
            raise ValueError(f"contrastive_weight must be >= 0, got {self.contrastive_weight}")
        if self.contrastive_temperature <= 0:
            raise ValueError(
                f"contrastive_temperature must be > 0, got {self.contrastive_temperature}"
            )
        if self.contrastive_on not in CONTRASTIVE_ON:
            raise ValueError(
                f"contrastive_on must be one of {CONTRASTIVE_ON}, got {self.contrastive_on!r}"
            )
        if self.contrastive_negatives not in CONTRASTIVE_NEGATIVES:
            raise ValueError(
                f"contrastive_negatives must be one of {CONTRASTIVE_NEGATIVES}, "
                f"got {self.contrastive_negatives!r}"
            )
        if self.mask_span < 1:
            raise ValueError(f"mask_span must be >= 1, got {self.mask_span}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
