"""Pure-Python pipelines, one module per task over the model contract; they never import gradio.

Layers: `pipelines.model` (the contract and the backends), `pipelines.media` (user media), and the tasks
here (chat, detection, screenshot, video_qa, voice, tools, fit, compare). Usable from a script or a notebook;
heavy libraries load lazily inside the model layer.
"""
