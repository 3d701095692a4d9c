"""``python -m experiments.mode_coverage`` from a checkout: the console script of :mod:`genjax.cli.mode_coverage`."""
from genjax.cli.mode_coverage import entry

if __name__ == "__main__":
    entry()
