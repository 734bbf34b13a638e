"""MediaFM shot encoder: a BERT-style bidirectional Transformer over a title's shots.

Sequence layout (DESIGN.md "Model"): position 0 is a learnable `[CLS]`, position 1 is `[GLOBAL]`
(the projected title-metadata vector, or a learnable fallback when a title has none), positions
2.. are the title's shots (fused vectors projected to `hidden`). Shots chosen for Masked Shot
Modelling are replaced by a learnable `[MASK]` before positions are added. Pre-norm blocks with
separate Q, K, V matrices (so Muon orthogonalises each) and `scaled_dot_product_attention`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mediafm_core.model.configuration_mediafm import MediaFMConfig

N_SPECIAL = 2  # [CLS], [GLOBAL]


@dataclass
class MediaFMOutput:
    pred: torch.Tensor  # (B, T, D) output projection back to the fused space, at shot positions
    hidden: torch.Tensor  # (B, T, H) final (normed) hidden state at shot positions
    cls: torch.Tensor  # (B, H) final hidden state of [CLS]
    contrastive: torch.Tensor | None = None  # (B, T, D) the contrastive head's output, if any


class MediaFMAttention(nn.Module):
    def __init__(self, cfg: MediaFMConfig):
        super().__init__()
        self.heads = cfg.heads
        self.dropout = cfg.dropout
        self.q = nn.Linear(cfg.hidden, cfg.hidden)
        self.k = nn.Linear(cfg.hidden, cfg.hidden)
        self.v = nn.Linear(cfg.hidden, cfg.hidden)
        self.o = nn.Linear(cfg.hidden, cfg.hidden)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        B, S, H = x.shape
        # Three matmuls, not one on torch.cat([Wq, Wk, Wv]): measured on this CPU the concatenation
        # (a weight copy per call) and the 3H row stride it leaves Q, K, V with make the fused
        # version no faster, and slower in attention (bench/train_throughput.py).
        q, k, v = (
            proj(x).view(B, S, self.heads, H // self.heads).transpose(1, 2)  # (B, A, S, Hd)
            for proj in (self.q, self.k, self.v)
        )
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, A, S, Hd)
        return self.o(y.transpose(1, 2).reshape(B, S, H))


class MediaFMMLP(nn.Module):
    def __init__(self, cfg: MediaFMConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden, cfg.mlp_hidden)
        self.fc2 = nn.Linear(cfg.mlp_hidden, cfg.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class MediaFMBlock(nn.Module):
    def __init__(self, cfg: MediaFMConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
        self.attn = MediaFMAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
        self.mlp = MediaFMMLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), attn_mask))
        return x + self.drop(self.mlp(self.ln2(x)))


class MediaFMEncoder(nn.Module):
    """Fused shot vectors (B, T, D) -> contextual predictions (B, T, D) and hidden states."""

    def __init__(self, cfg: MediaFMConfig):
        super().__init__()
        self.config = cfg
        H = cfg.hidden
        self.input_proj = nn.Linear(cfg.fused_dim, H)
        self.global_proj = nn.Linear(cfg.global_dim, H) if cfg.global_dim > 0 else None
        self.cls_token = nn.Parameter(torch.zeros(H))
        self.global_fallback = nn.Parameter(torch.zeros(H))
        self.mask_token = nn.Parameter(torch.zeros(H))
        self.positions = nn.Parameter(torch.zeros(cfg.max_shots + N_SPECIAL, H))
        self.blocks = nn.ModuleList(MediaFMBlock(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(H, eps=cfg.norm_eps)
        self.output_proj = nn.Linear(H, cfg.fused_dim)
        self.contrastive_proj: nn.Linear | None = None
        self.reset_parameters()
        if cfg.contrastive_head:  # built after the rest is drawn: their weights are as without it
            self.contrastive_proj = nn.Linear(H, cfg.fused_dim)
            self._reset_contrastive()

    def reset_parameters(self) -> None:
        """BERT-style init: N(0, 0.02) weights, zero biases, residual outputs scaled by depth."""
        for m in self.modules():
            if isinstance(m, nn.Linear) and m is not self.contrastive_proj:
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        for blk in self.blocks:
            nn.init.normal_(blk.attn.o.weight, std=0.02 / (2 * self.config.layers) ** 0.5)
            nn.init.normal_(blk.mlp.fc2.weight, std=0.02 / (2 * self.config.layers) ** 0.5)
        for p in (self.cls_token, self.global_fallback, self.mask_token, self.positions):
            nn.init.normal_(p, std=0.02)
        self._reset_contrastive()

    def _reset_contrastive(self) -> None:
        if self.contrastive_proj is not None:
            nn.init.normal_(self.contrastive_proj.weight, std=0.02)
            nn.init.zeros_(self.contrastive_proj.bias)

    def embed(
        self,
        shots: torch.Tensor,  # (B, T, D)
        globals_: torch.Tensor | None = None,  # (B, G)
        has_global: torch.Tensor | None = None,  # (B,) bool
        mask_positions: torch.Tensor | None = None,  # (B, T) bool, True = replace by [MASK]
    ) -> torch.Tensor:
        """Build the input sequence (B, T + 2, H)."""
        B, T, _ = shots.shape
        if T > self.config.max_shots:
            raise ValueError(f"{T} shots exceed max_shots={self.config.max_shots}; use windows")
        x = self.input_proj(shots)  # (B, T, H)
        if mask_positions is not None:
            x = torch.where(mask_positions.unsqueeze(-1), self.mask_token.to(x.dtype), x)
        g = self.global_fallback.to(x.dtype).expand(B, -1)  # (B, H)
        if globals_ is not None and self.global_proj is not None:
            pg = self.global_proj(globals_)
            keep = has_global
            if keep is None:
                keep = torch.ones(B, dtype=torch.bool, device=x.device)
            g = torch.where(keep.unsqueeze(-1), pg, g)
        cls = self.cls_token.to(x.dtype).expand(B, -1)
        seq = torch.cat([cls.unsqueeze(1), g.unsqueeze(1), x], dim=1)  # (B, T + 2, H)
        return seq + self.positions[: T + N_SPECIAL].to(seq.dtype)

    def forward(
        self,
        shots: torch.Tensor,  # (B, T, D)
        shot_mask: torch.Tensor | None = None,  # (B, T) bool, True = real shot, False = padding
        globals_: torch.Tensor | None = None,  # (B, G)
        has_global: torch.Tensor | None = None,  # (B,) bool
        mask_positions: torch.Tensor | None = None,  # (B, T) bool
    ) -> MediaFMOutput:
        x = self.embed(shots, globals_, has_global, mask_positions)  # (B, S, H), S = T + 2
        attn_mask = None
        if shot_mask is not None and not bool(shot_mask.all()):
            special = torch.ones(shots.shape[0], N_SPECIAL, dtype=torch.bool, device=shots.device)
            keys = torch.cat([special, shot_mask], dim=1)  # (B, S)
            attn_mask = keys[:, None, None, :]  # (B, 1, 1, S): every query sees real keys only
        for blk in self.blocks:
            x = blk(x, attn_mask)
        x = self.final_norm(x)
        hidden = x[:, N_SPECIAL:]  # (B, T, H)
        nce = self.contrastive_proj(hidden) if self.contrastive_proj is not None else None
        return MediaFMOutput(
            pred=self.output_proj(hidden), hidden=hidden, cls=x[:, 0], contrastive=nce
        )

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
