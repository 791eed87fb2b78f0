"""methodology."""
