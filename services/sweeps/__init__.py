"""Sweeps: one job per point of a grid or of seeded random draws, ranked by a metric."""
