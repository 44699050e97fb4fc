"""Exception types for errors that the user can fix: a bad config, a broken dataset, a storage problem."""


class HpoError(Exception):
    """Base class of errors caused by the user's input, printed without a traceback by the CLI."""


class ConfigError(HpoError):
    """The study YAML is invalid: the message names the key and the valid values."""


class DatasetError(HpoError):
    """The dataset is missing, unreadable or inconsistent: the message names every offending file."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            listed = "\n".join(f"  - {problem}" for problem in self.problems)
            message = f"{message}\n{listed}"
        super().__init__(message)


class StorageError(HpoError):
    """The study storage cannot be reached or used."""


class StudyError(HpoError):
    """The study is not in a state that allows the request (no finished trial, unknown trial number)."""
