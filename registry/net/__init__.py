"""hubless."""
