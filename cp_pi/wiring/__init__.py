"""The installer's self-test (`cp-pi check-wiring`): the pin map, the trials, the check."""
