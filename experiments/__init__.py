"""Thin entry points for a checkout: ``python -m experiments.train`` and friends run ``genjax.cli``."""
