"""The training loop and what it saves."""
