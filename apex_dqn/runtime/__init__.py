"""Where components are hosted: on Ray (``ray_runtime``) or in one process (``local``)."""
