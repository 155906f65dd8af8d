"""The Gin edge: the command lines (train, evaluate) and their flag parsing."""
