"""Layer 3: the training loop (``fit``), many runs in one program (``fit_sweep``, ``fit_seeds``), meshes, checkpoints
and run directories."""
