"""What every tiny remote-code model here shares: the test copies this file next to a family's modeling file.

Only the module names differ between families (that is what LoRA targets and freeze tuning see), so the maths
lives here once: RMSNorm, plain causal attention, and the causal-LM head plumbing addressed by dotted paths.
"""

import torch
from torch import nn
from torch.nn import functional as F
from transformers.modeling_outputs import CausalLMOutputWithPast


class RMSNorm(nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def causal_attention(q, k, v, heads):
    b, s, h = q.shape
    q, k, v = (t.view(b, s, heads, h // heads).transpose(1, 2) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, s, h)


def _resolve(root, path):
    *parents, leaf = path.split(".")
    for name in parents:
        root = getattr(root, name)
    return root, leaf


class TinyCausalLMMixin:
    """Embedding accessors and loss for a causal LM whose embedding and head sit at ``embed_path``/``head_path``."""

    embed_path = ""
    head_path = ""

    def get_input_embeddings(self):
        return getattr(*_resolve(self, self.embed_path))

    def set_input_embeddings(self, value):
        setattr(*_resolve(self, self.embed_path), value)

    def get_output_embeddings(self):
        return getattr(*_resolve(self, self.head_path))

    def set_output_embeddings(self, value):
        setattr(*_resolve(self, self.head_path), value)

    @staticmethod
    def lm_output(logits, labels):
        logits = logits.float()
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits)
