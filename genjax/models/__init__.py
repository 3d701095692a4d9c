"""Layer 2: the families (autoencoder, vae, gan, dgn), the contract they keep, their registry and presets."""
