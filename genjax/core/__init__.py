"""Layer 0, imported by every other layer: errors, config fields, optimizers, the training state, data sets."""
