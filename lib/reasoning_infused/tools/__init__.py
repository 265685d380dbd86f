"""Tools: the performance benchmark, the generation-engine check, the GPU smoke run."""
