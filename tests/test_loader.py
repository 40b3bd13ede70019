"""The shared loader: one resident model, switching, quantization, and load failures."""

import gc
import os
import subprocess
import sys
import weakref

import pytest
from conftest import ROOT

from pipelines.errors import ModelLoadError
from pipelines.model.local import loader
from pipelines.model.local.loader import load_count, load_model
from pipelines.settings import GenerationSettings


@pytest.mark.slow
def test_same_arguments_return_the_same_object_without_reloading():
    first = load_model("tiny", "fp32")
    count = load_count()
    again = load_model("tiny", "fp32")
    assert again is first
    assert load_count() == count


@pytest.mark.slow
def test_switching_quantization_unloads_and_frees_the_previous_model():
    first = load_model("tiny", "fp32")
    first_weights = weakref.ref(first.model)
    count = load_count()
    del first
    second = load_model("tiny", "bf16")
    gc.collect()
    assert load_count() == count + 1
    assert first_weights() is None, "the previous model must be freed"
    assert loader.current_model() is second
    import torch

    assert next(second.model.parameters()).dtype == torch.bfloat16
    load_model("tiny", "fp32")


@pytest.mark.slow
def test_auto_quantization_on_cpu_and_loaded_model_fields():
    loaded = load_model("tiny", "auto")
    assert loaded.device == "cpu"
    assert loaded.quantization == "fp32"
    assert "(auto, fp32: the random tiny model stays exact)" in loaded.describe()
    assert loaded.variant == "tiny"
    assert loaded.processor.tokenizer.image_token == "<|image|>"
    memory = loaded.memory_bytes()
    parameter_bytes = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    # Tied embeddings are held once, so the real footprint is at most the naive sum.
    assert (
        0
        < memory["cpu"]
        <= parameter_bytes + sum(b.numel() * b.element_size() for b in loaded.model.buffers())
    )


@pytest.mark.slow
@pytest.mark.parametrize(("quantization", "layer_class"), [("4bit", "Linear4bit"), ("8bit", "Linear8bitLt")])
def test_bitsandbytes_quantization_runs_on_cpu(quantization, layer_class, tiny_image):
    full = load_model("tiny", "fp32").memory_bytes()["cpu"]
    loaded = load_model("tiny", quantization)
    quantized_layers = [m for m in loaded.model.modules() if type(m).__name__ == layer_class]
    assert quantized_layers, f"expected {layer_class} layers"
    assert loaded.memory_bytes()["cpu"] < full
    messages = [
        {"role": "user", "content": [{"type": "image", "image": tiny_image}, {"type": "text", "text": "Hi"}]}
    ]
    deltas = list(
        loaded.generate(
            messages, settings=GenerationSettings(thinking=False, max_new_tokens=5), min_new_tokens=5
        )
    )
    assert deltas
    load_model("tiny", "fp32")


@pytest.mark.slow
def test_progress_reports_stages_up_to_done():
    loader.unload_model()
    seen = []
    load_model("tiny", "fp32", progress=lambda fraction, message: seen.append((fraction, message)))
    fractions = [f for f, _ in seen if f is not None]
    assert fractions == sorted(fractions)
    assert seen[-1] == (1.0, "Loaded tiny")


@pytest.mark.slow
def test_loads_tiny_with_no_network_from_a_fresh_process(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SHOWCASE_CACHE": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipelines.model.local.loader import load_model; print(load_model('tiny').describe())",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tiny" in result.stdout


@pytest.mark.slow
def test_tiny_checkpoint_is_deterministic(tmp_path):
    from safetensors.torch import load_file

    from pipelines.model.local.tiny import build_tiny_checkpoint

    first = load_file(build_tiny_checkpoint(tmp_path / "a") / "model.safetensors")
    second = load_file(build_tiny_checkpoint(tmp_path / "b") / "model.safetensors")
    assert first.keys() == second.keys()
    assert all((first[k] == second[k]).all() for k in first)
    assert any("audio_tower" in k for k in first) and any("vision_tower" in k for k in first)


# --- failures become ModelLoadError with a message that says what to do ---


@pytest.mark.slow
def test_offline_hub_variant_says_no_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="no network, or offline mode"):
        load_model("E2B", "bf16")
    assert loader.current_model() is None
    assert load_model("tiny", "fp32").variant == "tiny", "another variant must still load"


def test_gated_repo_says_accept_licence_and_set_token(monkeypatch):
    import httpx
    from huggingface_hub.errors import GatedRepoError

    url = "https://huggingface.co/google/gemma-4-E4B-it/resolve/main/config.json"
    response = httpx.Response(403, request=httpx.Request("GET", url))

    def gated(repo_id, report):
        raise GatedRepoError(
            "403 Client Error: access to model google/gemma-4-E4B-it is restricted", response=response
        )

    monkeypatch.setattr(loader, "_download", gated)
    with pytest.raises(ModelLoadError, match="licence.*HF_TOKEN"):
        load_model("E4B", "bf16")


def test_out_of_memory_says_choose_smaller(monkeypatch):
    import torch

    def out_of_memory(folder, quantization, device):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(loader, "_load_from_folder", out_of_memory)
    with pytest.raises(ModelLoadError, match="Not enough memory.*smaller variant"):
        load_model("tiny", "bf16")


def test_missing_bitsandbytes_says_install_it(monkeypatch):
    loader.unload_model()
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(ModelLoadError, match="pip install bitsandbytes"):
        load_model("tiny", "4bit")


def test_missing_cuda_is_explained():
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        load_model("tiny", "fp32", device="cuda")


def test_unknown_quantization_and_variant():
    from pipelines.errors import InputError

    with pytest.raises(ModelLoadError, match="Unknown quantization"):
        load_model("tiny", "3bit")
    with pytest.raises(InputError, match="Unknown variant"):
        load_model("gemma-5", "fp32")
