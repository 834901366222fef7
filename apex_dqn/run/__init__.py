"""Layer 4, the run: one driver for every runtime, the run state it feeds, and the run's files."""
