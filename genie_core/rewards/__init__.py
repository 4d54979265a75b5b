"""Reward signals shared by training and evaluation: the pairwise reward-model loss, rule-based rewards, and the
scorers (rules, Python functions, rm outputs) of the online stages grpo and rloo."""
