"""Experiment scripts: ``python -m experiments.train`` and friends."""
