"""Pure-Python model and task pipelines for the Gemma 4 Showcase.

Nothing in this package imports gradio, so every pipeline can be driven from a
script or a notebook. Heavy libraries (torch, transformers) are imported lazily
inside the functions that need them.
"""
