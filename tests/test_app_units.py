"""App pieces without a server: history shapes, undo/retry, config, start-up imports, the Spaces card."""

import subprocess
import sys

import gradio as gr
import pytest
from conftest import ROOT

from app.chat import (
    NOT_ANSWERED_TITLE,
    _mark_unanswered,
    _without_last_reply,
    add_user_message,
    reply_in_browser,
    undo_last_exchange,
)
from app.config import parse_config
from app.history import normalize_history
from app.reply import StreamedReply
from pipelines.model.contract import Delta

BROWSER_SHAPE = [
    {
        "role": "user",
        "content": [{"type": "file", "file": {"path": "/tmp/cat.png"}, "alt_text": None}],
        "metadata": None,
    },
    {"role": "user", "content": [{"type": "text", "text": "What is this?"}], "metadata": None},
    {
        "role": "assistant",
        "content": [{"type": "text", "text": "A cat thinks."}],
        "metadata": {"title": "🧠 Thinking"},
    },
    {"role": "assistant", "content": [{"type": "text", "text": "A cat."}], "metadata": None},
]
API_SHAPE = [
    {"role": "user", "content": {"path": "/tmp/cat.png"}},
    {"role": "user", "content": "What is this?"},
    {"role": "assistant", "content": "A cat thinks.", "metadata": {"title": "🧠 Thinking", "status": "done"}},
    {"role": "assistant", "content": "A cat."},
]


@pytest.mark.parametrize("history", [BROWSER_SHAPE, API_SHAPE], ids=["browser", "api"])
def test_history_normalizer_accepts_both_shapes_and_drops_thoughts(history):
    turns = normalize_history(history)
    assert [(t.role, t.text, t.files) for t in turns] == [
        ("user", "", ["/tmp/cat.png"]),
        ("user", "What is this?", []),
        ("assistant", "A cat.", []),
    ]


def test_history_normalizer_accepts_chat_messages_and_pairs():
    turns = normalize_history([gr.ChatMessage(role="user", content="Hi"), gr.ChatMessage(content="Hello")])
    assert [(t.role, t.text) for t in turns] == [("user", "Hi"), ("assistant", "Hello")]
    turns = normalize_history([["Hi", "Hello"], ["Bye", None]])
    assert [(t.role, t.text) for t in turns] == [("user", "Hi"), ("assistant", "Hello"), ("user", "Bye")]


def test_history_normalizer_rejects_garbage_with_a_message():
    from pipelines.errors import InputError

    with pytest.raises(InputError, match="history"):
        normalize_history("not a list")
    with pytest.raises(InputError):
        normalize_history([{"role": "user", "content": [12345]}])


def test_retry_drops_the_reply_and_undo_restores_the_message():
    assert _without_last_reply(API_SHAPE) == API_SHAPE[:2]
    history, textbox = undo_last_exchange(API_SHAPE)
    assert history == []
    assert textbox.value["text"] == "What is this?"
    assert [file["path"] for file in textbox.value["files"]] == ["/tmp/cat.png"]


BROWSER_SETTINGS = ("tiny", "fp32", False, 32, 70, False)


def test_enter_on_an_empty_box_asks_nothing():
    history, textbox, pending = add_user_message({"text": "  ", "files": []}, API_SHAPE)
    assert isinstance(history, type(gr.skip())) and isinstance(textbox, type(gr.skip())) and pending == []
    # Nothing new at the end of the chat: the reply step leaves it as it is and asks the model nothing.
    assert [type(step) for step in reply_in_browser(None, API_SHAPE, *BROWSER_SETTINGS)] == [type(gr.skip())]


def test_a_failed_reply_leaves_the_error_sentence_in_the_chat():
    from app import model_access
    from pipelines.errors import ModelLoadError

    def failing(variant, quantization, progress=None):
        raise ModelLoadError("Couldn't download E2B: no network. Choose the offline tiny variant.")

    asked = [{"role": "user", "content": "Hello?"}]
    model_access.use_provider(failing)
    try:
        steps = reply_in_browser(None, asked, *BROWSER_SETTINGS)
        *_, shown = [next(steps)]
        with pytest.raises(gr.Error):
            next(steps)
    finally:
        model_access.use_provider(None)
    assert shown[:-1] == asked
    assert shown[-1]["metadata"]["title"] == NOT_ANSWERED_TITLE
    assert shown[-1]["content"].startswith(
        "Couldn't download E2B: no network. Choose the offline tiny variant."
    )
    # The failure handler that runs next keeps the sentence rather than a generic "see the error".
    history, _ = _mark_unanswered(shown, [asked[-1]])
    assert history == shown


def test_streamed_reply_puts_thoughts_in_a_titled_message_with_status_and_duration():
    reply = StreamedReply()
    reply.add(Delta(thought="Let me look."))
    pending = reply.messages(done=False)
    assert pending == [
        {
            "role": "assistant",
            "content": "Let me look.",
            "metadata": {"title": "🧠 Thinking", "status": "pending"},
        }
    ]
    reply.add(Delta(answer="A cat."))
    thought, answer = reply.messages(done=True)
    assert thought["metadata"]["status"] == "done" and isinstance(thought["metadata"]["duration"], float)
    assert answer == {"role": "assistant", "content": "A cat."}


def test_config_from_cli_and_environment(monkeypatch):
    monkeypatch.setenv("SHOWCASE_VARIANT", "E4B")
    monkeypatch.setenv("SHOWCASE_CONCURRENCY_LIMIT", "2")
    config = parse_config([])
    assert (config.variant, config.concurrency_limit, config.preload) == ("E4B", 2, False)
    config = parse_config(
        ["--variant", "tiny", "--quantization", "4bit", "--port", "9000", "--preload", "--share"]
    )
    assert (config.variant, config.quantization, config.port, config.preload, config.share) == (
        "tiny",
        "4bit",
        9000,
        True,
        True,
    )


@pytest.mark.slow
def test_building_the_app_imports_no_heavy_library_and_no_model_runtime():
    # matplotlib too: the Fit page draws its plot when a visitor opens the page, not at start-up; and PyAV
    # (FFmpeg's libraries, ~0.2 s), which loads when a video is first read. The model runtimes (in-process,
    # 4-bit, remote) load when the first model is asked for, through the factory.
    code = (
        "import sys; from app import build_app; build_app()\n"
        "heavy = [m for m in ('torch', 'transformers', 'cv2', 'librosa', 'bitsandbytes', 'matplotlib', 'av')"
        " if m in sys.modules]\n"
        "heavy += sorted(m for m in sys.modules if m.startswith(('pipelines.model.local', "
        "'pipelines.model.quant', 'pipelines.model.remote', 'openai')))\n"
        "print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_readme_card_is_a_valid_space_card_pinned_to_the_installed_gradio():
    from huggingface_hub import SpaceCard

    card = SpaceCard.load(ROOT / "README.md")
    assert card.data.sdk == "gradio"
    assert card.data.sdk_version == gr.__version__
    assert card.data.app_file == "app.py"
    assert "google/gemma-4-E2B-it" in card.data.models


def test_readme_has_exactly_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in setup.split("```bash")[1:]]
    assert [c.split("```")[0].strip() for c in commands] == [
        "pip install -r requirements.txt && python app.py",
        "bash scripts/test.sh",
    ]


def test_spaces_gpu_wrapper_is_a_no_op_off_zero_gpu(monkeypatch, use_scripted):
    import threading
    from types import SimpleNamespace

    from app import gpu

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)

    def work():
        return 7

    assert gpu._gpu_slice(work) is work
    # A job streams in this very thread, on the model the settings select, with nothing pickled on the way.
    model = use_scripted("unused", variant="E2B")
    ran = []

    class Job:
        settings = SimpleNamespace(variant="E2B", quantization="bf16")

        def run(self, given):
            ran.append((given, threading.current_thread()))
            yield from ("first", "second")

    job = Job()
    assert list(gpu.stream_on_gpu(job)) == ["first", "second"]
    ((given, thread),) = ran
    # The job gets the selected model, its stream coalesced for the page (pipelines.streaming).
    assert given.model is model and thread is threading.current_thread()


def test_zero_gpu_places_weights_on_cuda_in_bf16(monkeypatch):
    from pipelines.model.local.loader import pick_device, resolve_quantization

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert pick_device() == "cuda"
    assert resolve_quantization("auto", "cuda", "E2B") == "bf16"
