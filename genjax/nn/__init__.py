"""Layer 1: Flax networks and pure loss functions, shared by every family."""
