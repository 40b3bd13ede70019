"""A real model made to write a reply of a known length: the length of a random-weight reply is chance.

The tiny model's weights are random, so a reply may end at its first token. Tests that need a reply to be
there (something to cut off, to parse, to time) wrap the model in `FixedLength`: every reply is exactly
`max_new_tokens` long, sampled from a fixed seed so a run can be repeated.
"""

from __future__ import annotations

from pipelines.settings import GenerationSettings

FIXED_SEED = 1234


class FixedLength:
    """`model`, generating until `max_new_tokens` (and from a fixed seed); everything else is `model`'s."""

    def __init__(self, model, *, seed: int = FIXED_SEED):
        self.model = model
        self.seed = seed

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, messages, settings=None, **options):
        options["min_new_tokens"] = (settings or GenerationSettings()).max_new_tokens
        options.setdefault("seed", self.seed)
        return self.model.generate(messages, settings, **options)
