"""Typed errors whose messages are written for the person using the app.

The UI turns every `ShowcaseError` into a `gr.Error` at one boundary
(`app/errors.py`); anything else is treated as a bug and shown generically.
Their words live in one place: the catalogue `pipelines/errors/messages.py`.
"""


class ShowcaseError(Exception):
    """Base class: `str(error)` is safe and useful to show to a user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(ShowcaseError, ValueError):
    """The user's input can't be used (empty, corrupt, wrong type, too large)."""


class ModelLoadError(ShowcaseError):
    """The model could not be loaded; the message says what to do about it."""


class CapabilityError(ShowcaseError):
    """The selected variant can't do what was asked (e.g. audio without an audio tower)."""


class GenerationError(ShowcaseError):
    """Generation failed at run time (for example the accelerator ran out of memory)."""


class BackendError(ShowcaseError):
    """A remote serving backend failed or could not be reached."""
