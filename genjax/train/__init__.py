"""Layer 3: the training loop (``fit``), many seeds in one program (``fit_seeds``), meshes, checkpoints
and run directories."""
