"""Speed measurements against references, run by `nox -s bench`."""
