"""The ``firesmoke`` command line (:func:`firesmoke.cli.main.main`)."""
