"""``python -m experiments.sweep`` from a checkout: the console script of :mod:`genjax.cli.sweep`."""
from genjax.cli.sweep import entry

if __name__ == "__main__":
    entry()
