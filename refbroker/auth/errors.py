"""The one error of this package: a line of a password, ACL or SCRAM users file we cannot use."""


class AuthFileError(ValueError):
    """str() is 'file:line: what is wrong', like config.ConfigError."""
