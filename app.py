"""Gemma 4 Showcase: the entry point (and the Hugging Face Spaces `app_file`).

python app.py                  # serves E2B from the Hub
python app.py --variant tiny   # offline, random-weight test model
"""

import logging
import os

# On ZeroGPU Spaces, `spaces` must be imported before anything imports torch.
if os.environ.get("SPACE_ID"):
    import spaces  # noqa: F401

from app import build_app, launch_kwargs
from app.config import parse_config


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_config(argv)
    demo = build_app(config)
    if config.preload:
        from app.model_access import preload_in_background

        preload_in_background(config.variant, config.quantization)
    demo.launch(**launch_kwargs(config))


if __name__ == "__main__":
    main()
