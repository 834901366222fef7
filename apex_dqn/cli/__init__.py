"""Layer 6, the faces: the Hydra training app and the eval, plot and sweep command lines."""
