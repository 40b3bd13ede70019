"""A Gemma 4 processor without the video sub-processor.

transformers' `Gemma4VideoProcessor` needs torchvision, which we can't rely on,
and we sample video frames ourselves (`pipelines.media.video`) and send them as images
with their timestamps. `Gemma4Processor` insists on a video processor, and a
processor holding `None` won't serialize, so this subclass simply doesn't declare
one: `ProcessorMixin` derives its sub-processors from the `__init__` signature.
Everything else (image and audio placeholder expansion, the chat template) is
inherited unchanged.
"""

from __future__ import annotations

from transformers import Gemma4Processor
from transformers.processing_utils import ProcessorMixin


class FramesGemma4Processor(Gemma4Processor):
    def __init__(
        self,
        feature_extractor,
        image_processor,
        tokenizer,
        chat_template=None,
        image_seq_length: int = 280,
        audio_seq_length: int = 750,
        audio_ms_per_token: int = 40,
        **kwargs,
    ):
        # Mirrors Gemma4Processor.__init__ minus the video processor.
        self.image_seq_length = image_seq_length
        self.image_token_id = tokenizer.image_token_id
        self.boi_token = tokenizer.boi_token
        self.eoi_token = tokenizer.eoi_token
        self.image_token = tokenizer.image_token
        self.video_token = "<|video|>"
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        self.audio_seq_length = audio_seq_length
        self.audio_ms_per_token = audio_ms_per_token
        self.audio_token_id = getattr(tokenizer, "audio_token_id", None)
        self.audio_token = getattr(tokenizer, "audio_token", None)
        self.boa_token = getattr(tokenizer, "boa_token", None)
        self.eoa_token = getattr(tokenizer, "eoa_token", None)
        ProcessorMixin.__init__(
            self,
            feature_extractor=feature_extractor,
            image_processor=image_processor,
            tokenizer=tokenizer,
            chat_template=chat_template,
            **kwargs,
        )


def load_processor(source: str, **hub_kwargs) -> FramesGemma4Processor:
    """Load the tokenizer, image processor and feature extractor of a Gemma 4 checkpoint.

    Works the same for a Hub id and a local folder. The PIL image processor is used so
    that no torchvision is needed.
    """
    from transformers import AutoTokenizer, Gemma4AudioFeatureExtractor, Gemma4ImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(source, **hub_kwargs)
    image_processor = Gemma4ImageProcessorPil.from_pretrained(source, **hub_kwargs)
    feature_extractor = Gemma4AudioFeatureExtractor.from_pretrained(source, **hub_kwargs)
    from pipelines.model.format.chat_template import CHAT_TEMPLATE

    return FramesGemma4Processor(
        feature_extractor=feature_extractor,
        image_processor=image_processor,
        tokenizer=tokenizer,
        # Our template renders the official format byte for byte (tests/test_chat_template.py),
        # so every checkpoint, Hub or tiny, is prompted identically.
        chat_template=CHAT_TEMPLATE,
    )
