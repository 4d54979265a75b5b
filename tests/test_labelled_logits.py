"""The SFT forward projects to the vocabulary only where labels are scored: same loss and gradients, fewer rows."""

from __future__ import annotations

import pytest
import torch

from genie_core.stages.trainer import LabelledLogitsTrainer, scored_positions


def test_scored_positions_are_the_union_of_the_rows_labels():
    labels = torch.full((2, 10), -100)
    labels[0, 4:7] = 1
    labels[1, 6:9] = 1
    assert scored_positions(labels).tolist() == [3, 4, 5, 6, 7]  # position t predicts label t + 1
    assert scored_positions(torch.ones(2, 10, dtype=torch.long)) is None  # pre-training: every position scores
    assert scored_positions(torch.full((1, 10), -100)) is None
    assert scored_positions(None) is None


def _trainer(model, tmp_path, cls):
    from transformers import Trainer, TrainingArguments

    assert issubclass(cls, Trainer)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    return cls(model=model, args=args)


@pytest.mark.parametrize("count", [None, "tokens"])
def test_loss_and_gradients_match_the_trainers_own(tiny_model_dir, tmp_path, count):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.train()
    ids = torch.randint(3, 200, (2, 16))
    labels = ids.clone()
    labels[:, :9] = -100  # the prompts
    labels[1, 13:] = -100  # a shorter answer, then padding
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    items = (labels[:, 1:] != -100).sum() if count else None

    results = []
    for cls in (Trainer, LabelledLogitsTrainer):
        trainer = _trainer(model, tmp_path, cls)
        model.zero_grad()
        loss, outputs = trainer.compute_loss(model, dict(inputs), return_outputs=True, num_items_in_batch=items)
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        results.append((loss.detach(), outputs.logits.shape, grads))
    (plain, plain_shape, plain_grads), (mine, my_shape, my_grads) = results
    torch.testing.assert_close(mine, plain, rtol=1e-5, atol=1e-6)
    for got, want in zip(my_grads, plain_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert plain_shape[1] == 16 and my_shape[1] == 7  # positions 8..14 predict the scored labels 9..15

    model.eval()  # evaluation keeps the full logits (metrics may read them)
    with torch.no_grad():
        _, outputs = _trainer(model, tmp_path, LabelledLogitsTrainer).compute_loss(model, dict(inputs), True)
    assert outputs.logits.shape[1] == 16


def test_only_models_whose_loss_takes_shift_labels_keep_positions():
    """Causal LMs that compute their own loss from the full labels (Bart's, XLNet's) keep the Trainer's path."""
    from transformers import BartForCausalLM, GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM, XLNetLMHeadModel

    from genie_core.stages.trainer import reads_shift_labels

    assert all(reads_shift_labels(c) for c in (LlamaForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel))
    assert not any(reads_shift_labels(c) for c in (BartForCausalLM, XLNetLMHeadModel))


def test_label_smoothing_keeps_the_trainers_path(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, TrainingArguments

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).train()
    plain = LabelledLogitsTrainer(model=model, args=TrainingArguments(str(tmp_path), report_to=[], use_cpu=True))
    smoothed = TrainingArguments(str(tmp_path), report_to=[], use_cpu=True, label_smoothing_factor=0.1)
    assert plain._keeps_positions and not LabelledLogitsTrainer(model=model, args=smoothed)._keeps_positions


def test_the_training_collator_finds_scored_positions_on_the_host(tiny_model_dir, tmp_path):
    """Found on a GPU, the positions cost a device sync before every forward; the training collator finds them
    before the batch is copied, evaluation batches carry nothing extra, and the loss is the same either way."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainingArguments

    from genie_core.data.collator import PadCollator
    from genie_core.stages.trainer import SCORED_KEY

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).train()
    rows = Dataset.from_dict(
        {
            "input_ids": [list(range(5, 21)), list(range(7, 19))],
            "labels": [[-100] * 9 + list(range(14, 21)), [-100] * 9 + list(range(16, 19))],
        }
    )
    args = TrainingArguments(str(tmp_path), report_to=[], use_cpu=True, per_device_train_batch_size=2)
    trainer = LabelledLogitsTrainer(
        model=model, args=args, train_dataset=rows, eval_dataset=rows, data_collator=PadCollator(0)
    )
    (batch,) = list(trainer.get_train_dataloader())
    assert batch[SCORED_KEY].tolist() == list(range(8, 15))
    assert SCORED_KEY not in next(iter(trainer.get_eval_dataloader()))
    with_key = trainer.compute_loss(model, dict(batch))
    without = trainer.compute_loss(model, {k: v for k, v in batch.items() if k != SCORED_KEY})
    torch.testing.assert_close(with_key, without)
