"""Layer 1, the leaves: batch and report types, metric names, the seed tree, shared rules."""
