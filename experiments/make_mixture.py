"""``python -m experiments.make_mixture`` from a checkout: the console script of :mod:`genjax.cli.make_mixture`."""
from genjax.cli.make_mixture import entry

if __name__ == "__main__":
    entry()
