"""The sans-I/O core: connector state and the unlock decision, free of GPIO, network and clock."""
