"""The quick loop (`pytest -m "not slow"`) can be trusted: heavy work in an unmarked test is noticed."""

import socket
import subprocess
import sys

import pytest
from conftest import _heavy_work_guard


@pytest.fixture
def watching_guard():
    """The session's guard, switched on as it is for an unmarked test, and restored afterwards."""
    was_watching, seen_before = _heavy_work_guard.watching, list(_heavy_work_guard.seen)
    _heavy_work_guard.seen.clear()
    _heavy_work_guard.watching = True
    yield _heavy_work_guard
    _heavy_work_guard.watching, _heavy_work_guard.seen[:] = was_watching, seen_before


@pytest.mark.slow
def test_building_a_model_is_noticed(watching_guard):
    from transformers import Gemma4TextConfig, Gemma4TextModel

    config = Gemma4TextConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=32,
        global_head_dim=32,
        hidden_size_per_layer_input=8,
        layer_types=["full_attention"],
    )
    Gemma4TextModel(config)
    assert any("built a model (Gemma4TextModel)" in seen for seen in watching_guard.seen)


@pytest.mark.slow
def test_starting_a_server_is_noticed(watching_guard):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
    assert any("bound a socket" in seen for seen in watching_guard.seen)


@pytest.mark.slow
def test_starting_python_or_a_browser_is_noticed(watching_guard):
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    watching_guard._check_subprocess("/usr/bin/chromium", ["chromium", "--headless"])
    assert any("Python subprocess" in seen for seen in watching_guard.seen)
    assert any("started a browser (chromium)" in seen for seen in watching_guard.seen)


def test_light_work_is_not_noticed(watching_guard):
    subprocess.run(["ffmpeg", "-version"], check=True, capture_output=True)
    with socket.socket() as client:
        client.settimeout(0.01)
        client.connect_ex(("127.0.0.1", 9))
    assert watching_guard.seen == []
