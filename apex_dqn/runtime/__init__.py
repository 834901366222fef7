"""Layer 5, the runtimes: the roles hosted on Ray (``ray_runtime``) or in one process."""
