"""Download conversation and Open conversation: the same two controls in Chat, Video Q&A and Voice.

Download writes the JSON (and a Markdown copy to read) when it is clicked, so it always holds the
conversation as it is; a hidden download button then hands the JSON to the browser. Open reads a saved JSON
back (`app.conversation_file`); each tab turns what it restored into its own outputs.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import gradio as gr

from app.conversation_file import conversation_document, conversation_markdown
from app.downloads import write_download
from app.errors import user_facing
from pipelines.settings import Settings

SHARED_SETTING_NAMES = Settings.PUBLIC_ORDER
# Hands the freshly written JSON to the browser: the hidden download button downloads what it holds.
_START_DOWNLOAD_JS = "() => document.querySelector('#{tab}-export-json')?.click()"


@dataclass(frozen=True)
class ConversationFileControls:
    download: gr.Button
    json_file: gr.DownloadButton
    markdown_file: gr.DownloadButton
    open_file: gr.UploadButton


def conversation_file_row(tab: str) -> ConversationFileControls:
    """The tab's two controls (`{tab}-export`, `{tab}-import`), plus the Markdown copy once one is written."""
    with gr.Row(elem_id=f"{tab}-conversation-file"):
        download = gr.Button("⬇️ Download conversation", size="sm", elem_id=f"{tab}-export")
        markdown_file = gr.DownloadButton(
            "📄 Markdown copy", size="sm", visible=False, elem_id=f"{tab}-export-md"
        )
        open_file = gr.UploadButton(
            "📂 Open conversation", file_types=[".json"], size="sm", elem_id=f"{tab}-import"
        )
    json_file = gr.DownloadButton(visible="hidden", elem_id=f"{tab}-export-json")
    return ConversationFileControls(download, json_file, markdown_file, open_file)


@user_facing("conversation_export")
def export_conversation(tab: str, setting_names: tuple[str, ...], describe_tab, history, *values):
    """Write the conversation as JSON and Markdown; returns the two download buttons' new values.

    `values` are the named settings' values, then the inputs of `describe_tab` (None: none), which says
    what else the tab records (e.g. the video).
    """
    settings = dict(zip(setting_names, values[: len(setting_names)], strict=True))
    if describe_tab is not None:
        settings.update(describe_tab(*values[len(setting_names) :]))
    document = conversation_document(tab, history, settings)
    stem = f"gemma4-{tab}-conversation-{document['saved_at'].replace(':', '')}"
    text = json.dumps(document, ensure_ascii=False, indent=1)
    json_path = write_download(f"{stem}.json", text, kind="conversations")
    markdown_path = write_download(f"{stem}.md", conversation_markdown(document), kind="conversations")
    return gr.DownloadButton(value=json_path), gr.DownloadButton(value=markdown_path, visible=True)


def wire_download(
    controls: ConversationFileControls,
    tab: str,
    chatbot,
    settings: dict,
    *,
    describe_tab=None,
    tab_inputs: list | None = None,
) -> None:
    """Download writes the files from the chatbot, `settings` (name → component) and `describe_tab(*tab_inputs)`,
    then downloads the JSON."""
    handler = functools.partial(export_conversation, tab, tuple(settings), describe_tab)
    controls.download.click(
        handler,
        [chatbot, *settings.values(), *(tab_inputs or [])],
        [controls.json_file, controls.markdown_file],
        queue=False,
        api_visibility="private",
    ).success(None, js=_START_DOWNLOAD_JS.format(tab=tab), api_visibility="private")


def shared_settings(controls) -> dict:
    """The shared settings' components by name, for `wire_download`."""
    return dict(zip(SHARED_SETTING_NAMES, controls.inputs, strict=True))
