"""The layer stack: models built from a list of layers with hand-written backward passes."""
