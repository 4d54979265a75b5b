"""PPO on torch + transformers + peft: rollouts -> rewards -> GAE -> clipped updates, with checkpoints and resume.

One step: sample ``per_device_train_batch_size * gradient_accumulation_steps * ppo_buffer_size`` prompts; generate
a response for each with the KV cache until a template stop word; score it with the reward model; subtract a
per-token KL penalty to the reference (the base with adapters off); compute GAE advantages with the critic (the
policy's trunk plus a value head); then run ``ppo_epochs`` passes of clipped policy and value losses.
Arithmetic lives in ``ppo_core``, generation and scoring in ``ppo_rollout``, checkpoints and the step log in
``ppo_checkpoint``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import defaultdict
from pathlib import Path

import torch

from genie_core.data.tokenized import get_dataset
from genie_core.eval.predict import write_predictions
from genie_core.extras.logging import get_logger, is_main_process
from genie_core.extras.supervise import StopRequested, stop_requested
from genie_core.model import load_model, load_tokenizer
from genie_core.model.value_head import attach_value_head
from genie_core.stages import ppo_core as core
from genie_core.stages.common import prepare_output_dir, resume_checkpoint, save_metrics, write_json
from genie_core.stages.ppo_checkpoint import (
    POLICY_BASE,
    last_logged,
    load_checkpoint,
    reset_log,
    save_checkpoint,
    save_final,
    should_save,
    write_log,
)
from genie_core.stages.ppo_rollout import (
    build_reward,
    check_reward_model,
    concat_rollouts,
    generate,
    policy_forward,
    prompt_indices,
    reference_logprobs,
    rollout_generate_kwargs,
    sampling_temperature,
)
from genie_core.template import get_template
from genie_core.tracking import StepLogger

logger = get_logger(__name__)


def run_ppo(args) -> dict:
    check_reward_model(args.finetuning.reward_model)  # a bad path fails here, before any model loads
    gen_kwargs = rollout_generate_kwargs(args.generating)
    out = prepare_output_dir(args)
    tokenizer = load_tokenizer(args.model)
    template = get_template(args.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    stop_ids = template.get_stop_token_ids(tokenizer)
    data = get_dataset(args, tokenizer, template, "ppo")

    from accelerate import Accelerator
    from transformers import set_seed

    set_seed(args.training.seed)
    t = args.training
    if t.do_train and args.model.adapter_dirs and args.finetuning.resume_lora_training:
        logger.warning(
            "PPO keeps training the adapter %s, so the KL reference is the base without it. To make the SFT model "
            "the reference, set resume_lora_training: false (its adapter is merged and a new one trains).",
            args.model.adapter_dirs[-1],
        )
    accelerator = Accelerator(mixed_precision="bf16" if t.bf16 else "fp16" if t.fp16 else "no")
    model_args, finetuning_args = _policy_args(args)
    model = load_model(tokenizer, model_args, finetuning_args, is_trainable=True)
    head = attach_value_head(model, init_std=args.ppo.value_head_init_std)
    if not args.training.do_train:
        model.requires_grad_(False)
    if next(model.parameters()).device != accelerator.device:
        model.to(accelerator.device)
    model.eval()  # dropout off: sampling-time and update-time log-probs must agree
    reward = build_reward(args.finetuning.reward_model, model, tokenizer, args.model)

    results: dict = {}
    if t.do_train:
        results["train"] = train(args, accelerator, model, head, reward, tokenizer, data.train, gen_kwargs, stop_ids)
    if (t.do_eval or t.do_predict) and data.eval is not None and is_main_process():
        results["eval"] = evaluate(args, model, reward, tokenizer, data.eval, gen_kwargs, stop_ids, out)
    return results


def train(args, accelerator, model, head, reward, tokenizer, dataset, gen_kwargs, stop_ids) -> dict:
    t, p = args.training, args.ppo
    out, world, rank = Path(t.output_dir), accelerator.num_processes, accelerator.process_index
    micro, accum = t.per_device_train_batch_size, t.gradient_accumulation_steps
    rollout_size = micro * accum * p.ppo_buffer_size
    total = t.max_steps if t.max_steps > 0 else math.ceil(t.num_train_epochs * len(dataset) / (rollout_size * world))
    temperature = sampling_temperature(args.generating)
    params = [q for q in model.parameters() if q.requires_grad]
    optimizer = torch.optim.AdamW(
        params,
        lr=t.learning_rate,
        betas=(t.adam_beta1, t.adam_beta2),
        eps=t.adam_epsilon,
        weight_decay=t.weight_decay,
        fused=accelerator.device.type == "cuda",  # one kernel per step on a GPU; the CPU keeps the plain loop
    )
    scheduler = _scheduler(t, optimizer, total * p.ppo_epochs * p.ppo_buffer_size)
    model, optimizer = accelerator.prepare(model, optimizer)
    policy = accelerator.unwrap_model(model)
    kl_ctl = (
        core.AdaptiveKLController(p.init_kl_coef, p.target_kl, p.kl_horizon)
        if p.adap_kl_ctrl
        else core.FixedKLController(p.init_kl_coef)
    )
    moments = core.RunningMoments()

    step = 0
    checkpoint = resume_checkpoint(args)
    if checkpoint:
        state = load_checkpoint(checkpoint, policy, head, optimizer, scheduler, rank, world)
        step, kl_ctl.value = state["global_step"], state["kl_coef"]
        moments.load_state_dict(state["score_moments"])
    reset_log(out, step)
    logger.info(
        "PPO: %d steps x %d prompts/rank, %d epochs of micro-batches of %d; %d prompts", total, rollout_size,
        p.ppo_epochs, micro, len(dataset),
    )  # fmt: skip
    start, window, tracker = time.time(), defaultdict(list), StepLogger()
    while step < total:
        step_start = time.time()
        rows = dataset[prompt_indices(step, len(dataset), rollout_size, t.seed, rank, world)]
        # every prompt of the step in one generate call: decoding is bound by reading the weights, so a step of 8
        # rows costs about what a step of 4 does. The old log-probs and values are read off the decoding steps (the
        # policy is in eval mode, so they are what a forward would give); reference and reward scoring then go
        # micro-batch by micro-batch
        tick = time.time()
        sampled = generate(policy, tokenizer, rows, gen_kwargs, stop_ids, logprobs_at=temperature, value_head=head)
        gen_time, parts = time.time() - tick, []
        for i in range(0, len(sampled), micro):
            part = sampled.select(slice(i, i + micro))
            with torch.no_grad():
                part.ref_logprobs = reference_logprobs(policy, part, temperature)
                part.scores = reward(part)
            parts.append(part)
        batch = concat_rollouts(parts, tokenizer.pad_token_id)

        stats = ppo_update(args, accelerator, model, head, optimizer, scheduler, params, batch, kl_ctl, moments)
        step += 1
        lengths = batch.response_mask.sum(-1).float()
        stats.update(
            reward=batch.scores.mean().item(),
            reward_std=batch.scores.std(unbiased=False).item(),
            response_length=lengths.mean().item(),
            tokens_per_second=lengths.sum().item() / max(gen_time, 1e-9),
            step_time=time.time() - step_start,
            learning_rate=scheduler.get_last_lr()[0],
        )
        for key, value in stats.items():
            window[key].append(accelerator.reduce(torch.tensor(value, device=accelerator.device), "mean").item())
        if step % max(int(t.logging_steps), 1) == 0 or step == total:
            epoch = step * rollout_size * world / len(dataset)
            means = {k: sum(v) / len(v) for k, v in window.items()}
            write_log(out, step, total, epoch, time.time() - start, means)
            tracker.log(means, step)
            window.clear()
        stopping = stop_requested() and step < total
        if should_save(t, step, total) or stopping:
            state = {"kl_coef": kl_ctl.value, "score_moments": moments.state_dict(), "max_steps": total}
            save_checkpoint(out, step, policy, head, optimizer, scheduler, state, rank, world, t.save_total_limit)
        if stopping:
            raise StopRequested(f"stopped after step {step}, with a checkpoint saved")

    metrics = {"train_runtime": time.time() - start, "global_step": step, "kl_coef": kl_ctl.value}
    metrics.update({f"train_{k}": v for k, v in last_logged(out).items() if k in ("reward", "kl", "loss")})
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_final(policy, out, merged_adapters(args))
        write_json(out / "trainer_state.json", {"global_step": step, "kl_coef": kl_ctl.value, "max_steps": total})
        save_metrics(out, "train", metrics)
        if args.finetuning.plot_loss:
            from genie_core.stages.plotting import plot_loss

            plot_loss(out, keys=("loss", "reward", "kl"))
    return metrics


def ppo_update(args, accelerator, model, head, optimizer, scheduler, params, batch, kl_ctl, moments) -> dict:
    """Rewards -> advantages -> ``ppo_epochs`` passes of clipped losses; returns the step's mean statistics."""
    p, t = args.ppo, args.training
    mask = batch.response_mask
    scores = batch.scores
    if p.ppo_score_norm:
        moments.update(scores)
        scores = moments.normalize(scores)
    if p.score_clip is not None:
        scores = scores.clamp(-p.score_clip, p.score_clip)
    rewards, kl = core.token_rewards(scores, batch.logprobs, batch.ref_logprobs, mask, kl_ctl.value)
    if p.whiten_rewards:
        rewards = core.masked_whiten(rewards, mask, shift_mean=False)
    advantages, batch.returns = core.gae(rewards, batch.values, mask, p.gamma, p.lam)
    batch.advantages = core.masked_whiten(advantages, mask)

    micro, accum = t.per_device_train_batch_size, t.gradient_accumulation_steps
    temperature = sampling_temperature(args.generating)
    stats = defaultdict(list)
    for _ in range(p.ppo_epochs):
        order = torch.randperm(len(batch), device=mask.device)
        minibatches = [order[i : i + micro] for i in range(0, len(batch), micro)]
        for i, index in enumerate(minibatches):
            mb = batch.select(index)
            logits, logprobs, values = policy_forward(model, head, mb, temperature)
            out = core.ppo_losses(
                logprobs, mb.logprobs, mb.advantages, values, mb.values, mb.returns, mb.response_mask,
                p.cliprange, p.cliprange_value, p.vf_coef,
            )  # fmt: skip
            accelerator.backward(out.loss / accum)
            if (i + 1) % accum == 0 or i + 1 == len(minibatches):
                if t.max_grad_norm and t.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(params, t.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                stats["entropy"].append(core.masked_mean(core.entropy_from_logits(logits), mb.response_mask).item())
            for key in ("loss", "policy_loss", "value_loss", "clip_frac", "value_clip_frac", "approx_kl"):
                stats[key].append(getattr(out, key).item())
    sequence_kl = kl.sum(-1).mean().item()
    kl_ctl.update(sequence_kl, len(batch) * accelerator.num_processes)
    result = {k: sum(v) / len(v) for k, v in stats.items()}
    result.update(kl=sequence_kl, kl_coef=kl_ctl.value, advantage_abs=batch.advantages.abs().mean().item())
    return result


@torch.no_grad()
def evaluate(args, model, reward, tokenizer, dataset, gen_kwargs, stop_ids, out: Path) -> dict:
    """Mean reward of the policy's responses to held-out prompts -> eval_results.json + generated_predictions."""
    size = args.training.per_device_eval_batch_size
    scores, lengths, rows = [], [], []
    from tqdm.auto import tqdm

    for start in tqdm(range(0, len(dataset), size), desc="PPO eval", unit="batch"):
        part = generate(model, tokenizer, dataset[start : start + size], gen_kwargs, stop_ids)
        part.scores = reward(part)
        scores += part.scores.tolist()
        lengths += part.response_mask.sum(-1).tolist()
        for i in range(len(part)):
            rows.append({"prompt": part.prompts[i], "predict": part.texts[i], "label": part.references[i]})
            rows[-1]["reward"] = part.scores[i].item()
    write_predictions(out, rows)
    values = torch.tensor(scores)
    metrics = {
        "eval_reward_mean": values.mean().item(),
        "eval_reward_std": values.std(unbiased=False).item(),
        "eval_response_length": sum(lengths) / len(lengths),
        "eval_samples": len(scores),
    }
    save_metrics(out, "eval", metrics)
    return metrics


# ---- helpers ----------------------------------------------------------------------------------------------------


def merged_adapters(args) -> list[str]:
    """The adapters merged into the base under the policy adapter while training (absolute paths)."""
    dirs = [str(Path(d).resolve()) for d in args.model.adapter_dirs]
    return dirs[:-1] if args.finetuning.resume_lora_training else dirs


def _policy_args(args):
    """Training merges earlier adapters and adds a new one as asked; evaluation keeps the last (PPO) adapter apart.

    Keeping it apart leaves the base as it was when the reward model was trained, so a LoRA reward adapter scores
    on the right weights. A PPO output given alone brings back the adapters it was trained over (``POLICY_BASE``);
    without checkpoint_dir a fresh adapter (zero LoRA B) evaluates the base itself.
    """
    if args.training.do_train:
        return args.model, args.finetuning
    dirs = list(args.model.adapter_dirs)
    if len(dirs) == 1 and (Path(dirs[0]) / POLICY_BASE).is_file():
        merged = json.loads((Path(dirs[0]) / POLICY_BASE).read_text())["merged_adapters"]
        if merged:
            logger.info("PPO policy %s was trained over %s; merging those first.", dirs[0], ", ".join(merged))
            dirs = [*merged, dirs[0]]
    model_args = dataclasses.replace(args.model, checkpoint_dir=",".join(dirs) or None)
    finetuning = dataclasses.replace(args.finetuning, resume_lora_training=True)
    if dirs:  # the adapter is read back as trained with its own targets; new-adapter targets would only draw a warning
        finetuning = dataclasses.replace(finetuning, lora_target=None, additional_target=None)
    return model_args, finetuning


def _scheduler(t, optimizer, num_steps: int):
    from transformers import get_scheduler

    return get_scheduler(
        t.lr_scheduler_type,
        optimizer,
        num_warmup_steps=t.get_warmup_steps(num_steps),
        num_training_steps=num_steps,
        scheduler_specific_kwargs=t.lr_scheduler_kwargs or {},
    )
