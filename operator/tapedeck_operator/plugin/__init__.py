"""`kubectl tapedeck`: a kubectl plugin (the console script `kubectl-tapedeck`) to start,
control, watch and fetch Recordings. Pure builders in `manifest` and `views`; the calls to
the API server in `cluster`; the command line in `cli`."""
