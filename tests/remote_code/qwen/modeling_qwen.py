"""A tiny causal LM with first-generation Qwen's module names: ``transformer.h[i].attn.c_attn`` (fused q/k/v),
``attn.c_proj``, ``mlp.w1/w2/c_proj``, ``ln_1``/``ln_2`` and ``transformer.wte``/``ln_f``."""

from torch import nn
from torch.nn import functional as F
from transformers import GenerationMixin, PreTrainedModel

from .configuration_qwen import QWenConfig
from .tiny_core import RMSNorm, TinyCausalLMMixin, causal_attention


class QWenAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.c_attn = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=True)
        self.c_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, x):
        q, k, v = self.c_attn(x).chunk(3, dim=-1)
        return self.c_proj(causal_attention(q, k, v, self.heads))


class QWenMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        width = config.intermediate_size // 2
        self.w1 = nn.Linear(config.hidden_size, width, bias=False)
        self.w2 = nn.Linear(config.hidden_size, width, bias=False)
        self.c_proj = nn.Linear(width, config.hidden_size, bias=False)

    def forward(self, x):
        return self.c_proj(self.w1(x) * F.silu(self.w2(x)))


class QWenBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.attn = QWenAttention(config)
        self.ln_2 = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.mlp = QWenMLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class QWenPreTrainedModel(PreTrainedModel):
    config_class = QWenConfig
    base_model_prefix = "transformer"


class QWenModel(QWenPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size)
        self.h = nn.ModuleList([QWenBlock(config) for _ in range(config.num_hidden_layers)])
        self.ln_f = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.post_init()

    def forward(self, input_ids=None, inputs_embeds=None):
        x = self.wte(input_ids) if inputs_embeds is None else inputs_embeds
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class QWenLMHeadModel(TinyCausalLMMixin, QWenPreTrainedModel, GenerationMixin):
    embed_path = "transformer.wte"
    head_path = "lm_head"

    def __init__(self, config):
        super().__init__(config)
        self.transformer = QWenModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, labels=None, inputs_embeds=None, **kwargs):
        return self.lm_output(self.lm_head(self.transformer(input_ids, inputs_embeds)), labels)
