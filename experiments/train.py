"""``python -m experiments.train`` from a checkout: the console script of :mod:`genjax.cli.train`."""
from genjax.cli.train import entry

if __name__ == "__main__":
    entry()
