"""Reward signals shared by training and evaluation: the pairwise reward-model loss and rule-based rewards."""
