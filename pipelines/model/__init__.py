"""The model layer: the one `ChatModel` contract and every backend behind it, and the only code that imports torch, transformers or bitsandbytes."""
