"""Layer 2, environments: gymnasium factories (classic control, MinAtar, Atari), chaos env."""
