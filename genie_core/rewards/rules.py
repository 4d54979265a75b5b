"""Rule-based rewards on decoded responses, for PPO demos and tests without a trained reward model.

Write ``reward_model: rule:<name>[:<argument>]``, e.g. ``rule:contains:Paris`` or ``rule:length:40``.
``genie_core.rewards.rules.list_rules()`` (and the error for an unknown name) shows every rule with its help.
A rule sees the response text (stop words removed), the prompt text and the dataset's reference reply.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from genie_core.extras.errors import ConfigError

RULE_PREFIX = "rule:"
ScoreFn = Callable[[str, str, str, str], float]  # (response, prompt, reference, argument) -> score


@dataclass(frozen=True)
class Rule:
    name: str
    fn: ScoreFn
    help: str
    needs_arg: bool


RULES: dict[str, Rule] = {}


def register_rule(name: str, help: str, needs_arg: bool = False) -> Callable[[ScoreFn], ScoreFn]:
    """Decorator adding a rule; a second rule with the same name is a bug, so it raises."""

    def add(fn: ScoreFn) -> ScoreFn:
        if name in RULES:
            raise ValueError(f"reward rule '{name}' is already registered.")
        RULES[name] = Rule(name, fn, help, needs_arg)
        return fn

    return add


def list_rules() -> list[str]:
    return [f"{r.name}{':<arg>' if r.needs_arg else ''}  {r.help}" for r in RULES.values()]


def is_rule_spec(spec: str | None) -> bool:
    return bool(spec) and str(spec).startswith(RULE_PREFIX)


@dataclass(frozen=True)
class RuleReward:
    """A parsed ``rule:<name>[:<arg>]``; call it on batches of texts."""

    rule: Rule
    arg: str

    def __call__(self, responses: list[str], prompts: list[str], references: list[str]) -> list[float]:
        return [float(self.rule.fn(r, p, ref, self.arg)) for r, p, ref in zip(responses, prompts, references)]


def parse_rule(spec: str, key: str = "reward_model") -> RuleReward:
    """``rule:contains:yes`` -> a RuleReward; unknown names and missing or bad arguments raise ConfigError."""
    body = spec[len(RULE_PREFIX) :] if spec.startswith(RULE_PREFIX) else spec
    name, _, arg = body.partition(":")
    if name not in RULES:
        raise ConfigError(f"{key}: unknown reward rule '{name}'. Rules:\n  " + "\n  ".join(list_rules()))
    rule = RULES[name]
    if rule.needs_arg and not arg:
        raise ConfigError(f"{key}: rule '{name}' needs an argument, e.g. {RULE_PREFIX}{name}:<value> ({rule.help})")
    if not rule.needs_arg and arg:
        raise ConfigError(f"{key}: rule '{name}' takes no argument; write {RULE_PREFIX}{name}.")
    _VALIDATORS.get(name, lambda a: None)(arg)
    return RuleReward(rule, arg)


def _check_int(arg: str) -> None:
    if not arg.isdigit() or int(arg) < 1:
        raise ConfigError(f"reward_model: rule length needs a positive whole number of characters, got '{arg}'.")


def _check_regex(arg: str) -> None:
    try:
        re.compile(arg)
    except re.error as exc:
        raise ConfigError(f"reward_model: rule regex: '{arg}' is not a valid regular expression ({exc}).") from None


_VALIDATORS: dict[str, Callable[[str], None]] = {"length": _check_int, "regex": _check_regex}


@register_rule("contains", "1 if the response contains the text, else 0.", needs_arg=True)
def _contains(response: str, prompt: str, reference: str, arg: str) -> float:
    return 1.0 if arg in response else 0.0


@register_rule("regex", "1 if the regular expression matches somewhere in the response, else 0.", needs_arg=True)
def _regex(response: str, prompt: str, reference: str, arg: str) -> float:
    return 1.0 if re.search(arg, response) else 0.0


@register_rule("length", "1 at exactly <arg> characters, falling linearly to 0 at twice (or zero) that.", True)
def _length(response: str, prompt: str, reference: str, arg: str) -> float:
    target = int(arg)
    return 1.0 - min(abs(len(response) - target) / target, 1.0)


@register_rule("charset", "Share of the response's non-space characters that are among <arg>.", needs_arg=True)
def _charset(response: str, prompt: str, reference: str, arg: str) -> float:
    chars = [c for c in response if not c.isspace()]
    return sum(c in arg for c in chars) / len(chars) if chars else 0.0


_WORD = re.compile(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]")


@register_rule("reference", "Unigram F1 between the response and the dataset's reference reply (0..1).")
def _reference_f1(response: str, prompt: str, reference: str, arg: str) -> float:
    hyp, ref = _WORD.findall(response.lower()), _WORD.findall(reference.lower())
    if not hyp or not ref:
        return 0.0
    common = sum((Counter(hyp) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(hyp), common / len(ref)
    return 2 * precision * recall / (precision + recall)


_SENTENCE_WORDS = 12


@register_rule(
    "gold_sentence",
    f"A reply of about {_SENTENCE_WORDS} words that ends like a sentence: 0.8 x (1 at {_SENTENCE_WORDS} words, "
    f"falling linearly to 0 at 0 and {2 * _SENTENCE_WORDS}) + 0.2 if it ends with . ! or ? (bench/rlhf_quality.py).",
)
def _gold_sentence(response: str, prompt: str, reference: str, arg: str) -> float:
    words = len(re.findall(r"[A-Za-z0-9]+(?:['.,][A-Za-z0-9]+)*", response))
    shape = 1.0 - min(abs(words - _SENTENCE_WORDS) / _SENTENCE_WORDS, 1.0)
    return 0.8 * shape + (0.2 if response.rstrip().endswith((".", "!", "?")) else 0.0)


@register_rule("arith_correct", "1 if the response's last number equals the reference reply's last number, else 0.")
def _arith_correct(response: str, prompt: str, reference: str, arg: str) -> float:
    from genie_core.rewards.math import is_correct

    return 1.0 if is_correct(response, reference) else 0.0
