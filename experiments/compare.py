"""``python -m experiments.compare`` from a checkout: the console script of :mod:`genjax.cli.compare`."""
from genjax.cli.compare import entry

if __name__ == "__main__":
    entry()
