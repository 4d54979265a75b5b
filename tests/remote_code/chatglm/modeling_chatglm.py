"""A tiny causal LM with ChatGLM2-6B's module names: ``transformer.encoder.layers[i].self_attention.query_key_value``
(fused q/k/v), ``mlp.dense_h_to_4h``/``dense_4h_to_h``, ``transformer.embedding.word_embeddings`` and an LM head
called ``transformer.output_layer``."""

from torch import nn
from torch.nn import functional as F
from transformers import GenerationMixin, PreTrainedModel

from .configuration_chatglm import ChatGLMConfig
from .tiny_core import RMSNorm, TinyCausalLMMixin, causal_attention


class SelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.query_key_value = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=True)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, x):
        q, k, v = self.query_key_value(x).chunk(3, dim=-1)
        return self.dense(causal_attention(q, k, v, self.heads))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(config.hidden_size, 2 * config.ffn_hidden_size, bias=False)
        self.dense_4h_to_h = nn.Linear(config.ffn_hidden_size, config.hidden_size, bias=False)

    def forward(self, x):
        gate, up = self.dense_h_to_4h(x).chunk(2, dim=-1)
        return self.dense_4h_to_h(F.silu(gate) * up)


class GLMBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.layernorm_epsilon)
        self.self_attention = SelfAttention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.layernorm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.self_attention(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class GLMTransformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layers = nn.ModuleList([GLMBlock(config) for _ in range(config.num_layers)])
        self.final_layernorm = RMSNorm(config.hidden_size, config.layernorm_epsilon)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.final_layernorm(x)


class Embedding(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.padded_vocab_size, config.hidden_size)

    def forward(self, input_ids):
        return self.word_embeddings(input_ids)


class ChatGLMPreTrainedModel(PreTrainedModel):
    config_class = ChatGLMConfig
    base_model_prefix = "transformer"


class ChatGLMModel(ChatGLMPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embedding = Embedding(config)
        self.encoder = GLMTransformer(config)
        self.output_layer = nn.Linear(config.hidden_size, config.padded_vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids=None, inputs_embeds=None):
        x = self.embedding(input_ids) if inputs_embeds is None else inputs_embeds
        return self.output_layer(self.encoder(x))


class ChatGLMForConditionalGeneration(TinyCausalLMMixin, ChatGLMPreTrainedModel, GenerationMixin):
    embed_path = "transformer.embedding.word_embeddings"
    head_path = "transformer.output_layer"

    def __init__(self, config):
        super().__init__(config)
        self.transformer = ChatGLMModel(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, labels=None, inputs_embeds=None, **kwargs):
        return self.lm_output(self.transformer(input_ids, inputs_embeds), labels)
