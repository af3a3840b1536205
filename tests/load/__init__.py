"""Load and soak tests: many concurrent clients against one real gateway, then a leak check."""
