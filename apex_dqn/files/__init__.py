"""Layer 2, files: atomic writes, checkpoints and plots."""
