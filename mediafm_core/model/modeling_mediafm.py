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
        # Three matmuls, not one on torch.cat([Wq, Wk, Wv]): measured on this CPU the concatenation
        # (a weight copy per call) and the 3H row stride it leaves Q, K, V with make the fused
        # version no faster, and slower in attention (bench/train_throughput.py).
        return self.attend(self.q(x), self.k(x), self.v(x), attn_mask)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Attention of projected queries q (N, Sq, H) over projected keys k and values v
        (N, S, H), heads split and joined, then the output projection: (N, Sq, H)."""
        N, Sq, H = q.shape
        Hd = H // self.heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(N, t.shape[1], self.heads, Hd).transpose(1, 2)  # (N, A, len, Hd)

        y = F.scaled_dot_product_attention(
            heads(q),
            heads(k),
            heads(v),
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (N, A, Sq, Hd)
        return self.o(y.transpose(1, 2).reshape(N, Sq, H))


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

    def rest(self, x, q, k, v, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """The block after its Q, K, V projections (of `ln1` of the block's input): attention of
        queries q (N, Sq, H) over k, v (N, S, H), the residual on x (N, Sq, H), then the MLP."""
        x = x + self.drop(self.attn.attend(q, k, v, attn_mask))
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
        attn_mask = _key_mask(shot_mask)
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

    def masked_phase_predictions(
        self,
        shots: torch.Tensor,  # (B, T, D)
        shot_mask: torch.Tensor | None = None,  # (B, T) bool, True = real shot, False = padding
        globals_: torch.Tensor | None = None,  # (B, G)
        has_global: torch.Tensor | None = None,  # (B,) bool
        phases: int = 5,
        visible: bool = True,
    ) -> tuple[MediaFMOutput | None, torch.Tensor]:
        """Each shot's MSM prediction with the shots masked in `phases` groups, and (`visible`)
        the unmasked forward, in one stacked pass (eval mode; issue 20, "probes in seconds").

        Returns (out, masked): `out` is `forward(shots, shot_mask, globals_, has_global)` (None
        when `visible` is False); `masked` (B, T, D) holds at shot t the `pred` of
        `forward(..., mask_positions=arange(T) % phases == t % phases)`, i.e. the shot replaced
        by [MASK] and predicted from the rest of the sequence. Equal to those phases + 1 forward
        passes up to float rounding (tests/core/test_fast_eval.py), in fewer flops: the visible
        pass and the phases run as one (phases + 1) * B batch; the first block's LayerNorm and
        Q, K, V are computed once for the visible tokens and once for [MASK] at each position
        (they differ between phases only at the masked shots); the last block runs its queries,
        MLP, final norm and output head at the masked shots of each phase only (1 / phases of
        the tokens), since nothing after it mixes positions.
        """
        B, T, _ = shots.shape
        S, L = T + N_SPECIAL, len(self.blocks)
        e = self.embed(shots, globals_, has_global)  # (B, S, H)
        H, dev = e.shape[-1], e.device
        # [MASK] at every shot position, as `embed` builds it: (S, H), specials left as visible
        em = torch.cat(
            [e.new_zeros(N_SPECIAL, H), self.mask_token.to(e.dtype).expand(T, H)], 0
        ) + self.positions[:S].to(e.dtype)
        phase_of = torch.arange(T, device=dev) % phases  # (T,)
        at = phase_of[None, :] == torch.arange(phases, device=dev)[:, None]  # (P, T)
        if visible:
            at = torch.cat([at.new_zeros(1, T), at], 0)  # group 0: nothing masked
        G = at.shape[0]
        cond = torch.cat([at.new_zeros(G, N_SPECIAL), at], 1)[:, None, :, None]  # (G, 1, S, 1)
        attn_mask = _key_mask(shot_mask)

        def stack(masked_tok: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
            """(G * B, S, H): group g takes `masked_tok` (S, H) where it masks, else `vis`."""
            return torch.where(cond, masked_tok, vis[None]).reshape(G * B, S, -1)

        def repeat_mask(groups: int):
            return None if attn_mask is None else attn_mask.repeat(groups, 1, 1, 1)

        x = stack(em, e)  # (G * B, S, H)
        for i, blk in enumerate(self.blocks):
            a = blk.attn
            if i == 0:  # shared: the visible tokens' and [MASK]'s Q, K, V
                hv, hm = blk.ln1(e), blk.ln1(em)
                q, k, v = (stack(p(hm), p(hv)) for p in (a.q, a.k, a.v))
            else:
                h = blk.ln1(x)
                q, k, v = a.q(h), a.k(h), a.v(h)
            if i < L - 1:
                x = blk.rest(x, q, k, v, repeat_mask(G))
                continue
            out = None
            if visible:  # group 0: every query, as `forward`
                xv = blk.rest(x[:B], q[:B], k[:B], v[:B], attn_mask)
                xv = self.final_norm(xv)
                hidden = xv[:, N_SPECIAL:]
                out = MediaFMOutput(pred=self.output_proj(hidden), hidden=hidden, cls=xv[:, 0])
                x, q, k, v = x[B:], q[B:], k[B:], v[B:]
            # phase p: queries at its masked shots t = p + phases * j only
            Q = -(-T // phases)
            t_idx = torch.arange(phases, device=dev)[:, None] + phases * torch.arange(
                Q, device=dev
            )  # (P, Q)
            valid = t_idx < T
            tok = (t_idx.clamp(max=T - 1) + N_SPECIAL)[:, None, :, None].expand(phases, B, Q, H)

            xs = x.view(phases, B, S, H).gather(2, tok).reshape(phases * B, Q, H)
            if i == 0:  # a one-block encoder: the queries are [MASK]'s, already projected
                qs = q.view(phases, B, S, H).gather(2, tok).reshape(phases * B, Q, H)
            else:
                qs = a.q(blk.ln1(xs))
            xs = self.final_norm(blk.rest(xs, qs, k, v, repeat_mask(phases)))
            pred = self.output_proj(xs).view(phases, B, Q, -1).transpose(0, 1)  # (B, P, Q, D)
            masked = pred.new_empty(B, T, pred.shape[-1])
            masked[:, t_idx[valid]] = pred[:, valid]
            return out, masked
        raise ValueError("an encoder without blocks has no masked predictions")


def _key_mask(shot_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, 1, 1, S) bool attention mask from a (B, T) real-shot mask: every query sees the special
    tokens and the real shots only; None when there is no padding."""
    if shot_mask is None or bool(shot_mask.all()):
        return None
    special = torch.ones(shot_mask.shape[0], N_SPECIAL, dtype=torch.bool, device=shot_mask.device)
    return torch.cat([special, shot_mask], dim=1)[:, None, None, :]
