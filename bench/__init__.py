"""`make bench`: measured figures, written to bench/results.json and bench/RESULTS.md."""
