"""Config of the tiny ChatGLM2-shaped test model (field names as in ChatGLM2-6B's own config)."""

from transformers import PretrainedConfig


class ChatGLMConfig(PretrainedConfig):
    model_type = "chatglm"

    def __init__(
        self,
        num_layers=2,
        padded_vocab_size=640,
        hidden_size=32,
        ffn_hidden_size=64,
        num_attention_heads=4,
        layernorm_epsilon=1e-5,
        **kwargs,
    ):
        self.num_layers = num_layers
        self.padded_vocab_size = padded_vocab_size
        self.vocab_size = padded_vocab_size
        self.hidden_size = hidden_size
        self.ffn_hidden_size = ffn_hidden_size
        self.num_attention_heads = num_attention_heads
        self.layernorm_epsilon = layernorm_epsilon
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)
