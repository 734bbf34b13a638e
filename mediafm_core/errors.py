"""Errors a user can act on: each names the input (a title or a file) and the problem."""


class MediaFMError(Exception):
    """Base class for every error MediaFM raises on purpose."""


class InputError(MediaFMError):
    """Bad input: `source` is the title id or file path, `problem` says what is wrong with it."""

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class TitleError(InputError):
    """A title's media, subtitles or metadata are unusable; only that title's work fails."""

    def __init__(self, title_id: str, problem: str):
        self.title_id = title_id
        super().__init__(f"title {title_id!r}", problem)
