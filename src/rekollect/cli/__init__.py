"""The `rekollect` command line."""
