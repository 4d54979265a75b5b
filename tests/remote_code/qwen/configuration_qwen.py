"""Config of the tiny Qwen-shaped test model (field names as in first-generation Qwen's own config)."""

from transformers import PretrainedConfig


class QWenConfig(PretrainedConfig):
    model_type = "qwen"

    def __init__(
        self,
        vocab_size=640,
        hidden_size=32,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size  # Qwen's MLP halves it: w1 and w2 are each half as wide
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.layer_norm_epsilon = layer_norm_epsilon
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)
