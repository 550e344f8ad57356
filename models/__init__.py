"""Stage 3: GANs trained from a JSON config; generation from trained runs."""
