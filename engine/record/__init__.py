"""Outputs of ``edirecon run`` and their writers (CSV, JSON Lines, summary.json)."""
