"""A short notice for a tab that is not built yet."""

import gradio as gr


def build_coming_tab(what: str) -> None:
    gr.Markdown(f"🚧 **Coming soon:** {what}")
