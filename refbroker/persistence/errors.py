"""The one error of persistence: the database cannot be used (foreign, damaged, newer, unreadable)."""


class PersistenceError(Exception):
    """str() says which file and what is wrong with it; the broker does not start."""
