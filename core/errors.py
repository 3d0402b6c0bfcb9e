"""The project's exception hierarchy: raised at the boundaries, with messages that say the fix."""


class RaptorError(Exception):
    """Base class of every error `raptor` raises on purpose. The CLI prints these as one line."""


class ConfigError(RaptorError, ValueError):
    """A configuration value, option or argument is invalid."""


class AirframeError(RaptorError, ValueError):
    """An airframe file or parameter set is malformed or physically implausible."""


class InputError(RaptorError, ValueError):
    """An action or observation passed to a step has the wrong shape or is not finite."""


class PolicyFileError(RaptorError, ValueError):
    """A policy file is missing, corrupt or does not match the expected architecture."""


class PolicyOutputError(RaptorError, ArithmeticError):
    """A policy produced NaN or inf from a finite observation (overflowing weights)."""
