"""``nash eval``: reproduce the paper's benchmark tables (filled in by the engine work)."""
