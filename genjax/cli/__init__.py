"""Layer 6: the command-line scripts (console scripts genjax-train, genjax-compare, genjax-mode-coverage and
genjax-make-mixture)."""
