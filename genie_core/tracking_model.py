"""The MLflow pyfunc of an exported model, logged as code: it loads the export from where it lives.

A registered version points at this logged model, so MLflow consumers (`mlflow.pyfunc.load_model("models:/...")`,
`mlflow models serve`) can use it, while the weights stay in the export directory instead of being copied into
the artifact store a second time. ``predict`` takes prompts (a list of strings, or a DataFrame whose first
column holds them), formats each as one user turn with the export's chat template and returns the greedy replies.
"""

from __future__ import annotations

import mlflow
from mlflow.pyfunc import PythonModel


class GenieExport(PythonModel):
    def load_context(self, context) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = context.model_config["export_dir"]
        self.max_new_tokens = int(context.model_config.get("max_new_tokens", 128))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path)
        self.model.eval()

    def predict(self, context, model_input, params=None):  # no type hints: the signature is given when logged
        import torch

        prompts = model_input.iloc[:, 0].tolist() if hasattr(model_input, "iloc") else list(model_input)
        max_new = int((params or {}).get("max_new_tokens", self.max_new_tokens))
        replies = []
        for prompt in prompts:
            messages = [{"role": "user", "content": str(prompt)}]
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
            ids = ids["input_ids"] if hasattr(ids, "keys") else ids
            with torch.no_grad():
                out = self.model.generate(ids, max_new_tokens=max_new, do_sample=False)
            replies.append(self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
        return replies


mlflow.models.set_model(GenieExport())
