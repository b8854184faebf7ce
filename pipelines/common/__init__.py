"""Plumbing every pipeline shares: progress reporting and the run directory store."""
