"""The one exception type the model package raises for bad input."""


class ModelError(ValueError):
    """A problem with a checkpoint, a source or an input, with a message that says what to do.

    Subclassing ValueError keeps `except ValueError` working for callers who do not know this package.
    """
