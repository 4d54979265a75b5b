"""Preference pairs scored with their common beginning run once.

A pair's chosen and rejected answers follow the same prompt (26 of the 77 tokens of a pair in the demo data), and
often the same first words ("The capital of Norway is ..."). Here each pair becomes a small tree in a packed row:
the common prefix, then the rest of the chosen sequence, then the rest of the rejected one, whose positions restart
where the prefix ends. A 4D mask lets each branch see the prefix and itself but not the other branch, which is
exactly the attention each sequence gets alone, so the scores and their gradients are those of two separate
forwards, on about a third fewer tokens. A model whose attention does not take such a mask (flash-attention, some
remote code) is found by a probe, once per model, and keeps plain packing.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn

from genie_core.model import packed
from genie_core.model.value_head import forward_accepts, unwrap_model

_VERDICTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class PairRow:
    """Pairs as trees back to back: pair ``members[k]`` ends its branches at ``chosen_ends[k]`` and
    ``rejected_ends[k]``. The mask ``allowed`` is dense over the row (rows hold at most ``packed.ROW_BUDGET`` tokens).
    """

    members: list[int]
    input_ids: torch.Tensor  # [1, T]
    position_ids: torch.Tensor  # [1, T]
    allowed: torch.Tensor  # [T, T] bool: column j is visible from row i
    chosen_ends: list[int]
    rejected_ends: list[int]


def shared_length(a: torch.Tensor, b: torch.Tensor) -> int:
    """Tokens both sequences start with, leaving each at least one token of its own (its score is read there)."""
    n = min(a.numel(), b.numel())
    same = (a[:n] == b[:n]).long()
    common = int(same.cumprod(0).sum())
    return max(0, min(common, int(a.numel()) - 1, int(b.numel()) - 1))


def pair_rows(pairs: list[tuple[torch.Tensor, torch.Tensor]], budget: int | None = None) -> list[PairRow]:
    """Pairs in order as trees (prefix, chosen rest, rejected rest), greedily filled into rows of ``budget`` tokens."""
    budget = budget or packed.ROW_BUDGET
    trees = []
    for chosen, rejected in pairs:
        s = shared_length(chosen, rejected)
        trees.append((chosen[:s], chosen[s:], rejected[s:]))
    rows, members, used = [], [], 0
    for i, tree in enumerate(trees):
        size = sum(int(t.numel()) for t in tree)
        if members and used + size > budget:
            rows.append(_row(members, [trees[m] for m in members]))
            members, used = [], 0
        members.append(i)
        used += size
    if members:
        rows.append(_row(members, [trees[m] for m in members]))
    return rows


def _row(members: list[int], trees: list[tuple[torch.Tensor, ...]]) -> PairRow:
    total = sum(int(t.numel()) for tree in trees for t in tree)
    device = trees[0][1].device
    allowed = torch.zeros(total, total, dtype=torch.bool, device=device)
    ids, positions, chosen_ends, rejected_ends = [], [], [], []
    start = 0
    for prefix, chosen, rejected in trees:
        s, c, r = int(prefix.numel()), int(chosen.numel()), int(rejected.numel())
        causal = torch.ones(s + max(c, r), s + max(c, r), dtype=torch.bool, device=device).tril()
        allowed[start : start + s + c, start : start + s + c] = causal[: s + c, : s + c]  # prefix + chosen
        rows = slice(start + s + c, start + s + c + r)
        allowed[rows, start : start + s] = True  # the rejected branch sees the prefix ...
        allowed[rows, rows] = causal[:r, :r]  # ... and itself, never the chosen branch
        ids += [prefix, chosen, rejected]
        positions += [torch.arange(s + c, device=device), torch.arange(s, s + r, device=device)]
        chosen_ends.append(start + s + c - 1)
        rejected_ends.append(start + s + c + r - 1)
        start += s + c + r
    return PairRow(
        members,
        torch.cat(ids).unsqueeze(0),
        torch.cat(positions).unsqueeze(0),
        allowed,
        chosen_ends,
        rejected_ends,
    )


def _mask(model: nn.Module, allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The 4D mask in the form the model's attention adds or selects with: booleans for SDPA, 0/-inf otherwise."""
    if getattr(unwrap_model(model).config, "_attn_implementation", None) == "sdpa":
        return allowed[None, None]
    blocked = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return blocked.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]


def _hidden(model: nn.Module, row: PairRow) -> torch.Tensor:
    dtype = next(p for p in model.parameters() if p.is_floating_point()).dtype
    out = model(
        input_ids=row.input_ids,
        position_ids=row.position_ids,
        attention_mask=_mask(model, row.allowed, dtype),
        use_cache=False,
        output_hidden_states=True,
        **({"logits_to_keep": 1} if forward_accepts(model, "logits_to_keep") else {}),
    )
    return out.hidden_states[-1][0]


def shares_prefixes(model: nn.Module) -> bool:
    """Whether pairs may be scored as trees for this model: a probe, once per model, against separate forwards."""
    if not packed.packs_exactly(model):
        return False
    return packed.probed_once(_VERDICTS, model, _probe, "Scoring preference pairs without sharing their prompts")


def _probe(model: nn.Module) -> str | None:
    """None when tree rows give each branch the hidden state it gets alone; else why not.

    A leak is judged with identical shapes (a different chosen branch must leave the rejected one exactly as it
    was); the comparison with plain forwards allows for rounding, which in 16-bit is loose by itself."""
    device = next(model.parameters()).device
    vocab = int(getattr(model.config, "vocab_size", 0) or 32)
    generator = torch.Generator().manual_seed(0)
    prefix = torch.randint(3, max(4, min(vocab, 1000)), (4,), generator=generator)
    rests = [torch.randint(3, max(4, min(vocab, 1000)), (n,), generator=generator) for n in (3, 2)]
    other = torch.randint(3, max(4, min(vocab, 1000)), (3,), generator=generator)
    chosen, rejected, changed = (torch.cat([prefix, r]).to(device) for r in (*rests, other))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            [row] = pair_rows([(chosen, rejected)])
            hidden = _hidden(model, row)
            tree = hidden[[row.chosen_ends[0], row.rejected_ends[0]]].float()
            [moved_row] = pair_rows([(changed, rejected)])
            same_layout = torch.equal(moved_row.allowed, row.allowed)  # a chance shared token would move the branch
            moved = _hidden(model, moved_row)[moved_row.rejected_ends[0]].float() if same_layout else None
            alone = torch.stack(
                [
                    model(input_ids=seq[None], use_cache=False, output_hidden_states=True).hidden_states[-1][0, -1]
                    for seq in (chosen, rejected)
                ]
            ).float()
    except (TypeError, ValueError, RuntimeError) as exc:
        return f"{type(model).__name__} takes no 4D attention mask ({type(exc).__name__}: {str(exc)[:120]})"
    finally:
        model.train(was_training)
    attn = getattr(model.config, "_attn_implementation", None) or "default"
    leak = (tree[1] - moved).abs().max().item() if moved is not None else 0.0
    if leak > packed.leak_tolerance(model, tree):
        return (
            f"{type(model).__name__} (attention: {attn}) does not follow a 4D mask (the rejected branch moved by "
            f"{leak:.3g} when the chosen one changed)"
        )
    gap = (tree - alone).abs().max().item()
    if gap > packed.rounding_tolerance(model, alone):
        return f"{type(model).__name__} (attention: {attn}) does not follow a 4D mask (gap {gap:.3g})"
    return None


def packed_pair_values(
    model: nn.Module, head: nn.Module, chosen: list[torch.Tensor], rejected: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``head`` at the last token of each chosen and rejected sequence ``([B], [B])``, prefixes run once."""
    scores: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for row in pair_rows(list(zip(chosen, rejected))):
        hidden = _hidden(model, row)
        values_c = head(hidden[row.chosen_ends])
        values_r = head(hidden[row.rejected_ends])
        for k, member in enumerate(row.members):
            scores[member] = (values_c[k], values_r[k])
    n = len(chosen)
    return torch.stack([scores[i][0] for i in range(n)]), torch.stack([scores[i][1] for i in range(n)])
