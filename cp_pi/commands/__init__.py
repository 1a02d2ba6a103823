"""The `cp-pi` commands: argument parsing and one module per command, above the composition root."""
