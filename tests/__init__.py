"""graphrec's tests (a package, so that tests/api and tests/gnn do not shadow api/ and gnn/)."""
