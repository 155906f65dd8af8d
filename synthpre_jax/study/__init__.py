"""Studies: the matrix spec, its runner, statistics and the report."""
