"""Issue 16: the layer-by-layer `4bit` load, the quantized host PLE table, quantize-once export.

Run with tests/test_loader.py and tests/test_quantization.py (the load path's own tests).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from pipelines.errors import InputError
from pipelines.model.quant import load_meter, nf4, quantization, streaming_load
from pipelines.model.variants import register_checkpoint


def test_nf4_rows_quantized_in_chunks_equal_bitsandbytes_whole_matrix_and_gather_exactly():
    import bitsandbytes.functional as bnb_functional

    weight = torch.randn(300, 192, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    whole, state = bnb_functional.quantize_4bit(
        weight, blocksize=64, quant_type="nf4", compress_statistics=True
    )
    chunked = nf4.Nf4Tensor.quantize_rows(
        lambda start, stop: weight[start:stop], weight.shape, "cpu", chunk_values=192 * 7
    )
    assert torch.equal(chunked.packed, whole.view(-1))
    assert torch.equal(chunked.absmax, state.absmax)
    assert torch.allclose(chunked.nested_absmax, state.state2.absmax)
    dequantized = bnb_functional.dequantize_4bit(whole, state).float()
    ids = torch.tensor([[0, 299, 17], [5, 5, 150]])
    # bitsandbytes rounds its output to bf16; the gather keeps float32.
    assert torch.allclose(
        chunked.gather_rows(ids).to(torch.bfloat16).float(), dequantized[ids], rtol=8e-3, atol=1e-4
    )


def test_quantized_host_table_gathers_rows_close_to_bf16():
    """The E2B/E4B per-layer-embedding table in host RAM: NF4 rows against the bf16 rows they replace."""
    from transformers.models.gemma4.modeling_gemma4 import Gemma4TextScaledWordEmbedding

    torch.manual_seed(0)
    # Real PLE row width of a 4-layer slice (4 x 256); the table is what `embed_tokens_per_layer` holds.
    original = Gemma4TextScaledWordEmbedding(4096, 1024, padding_idx=0, embed_scale=16.0).to(torch.bfloat16)
    with torch.no_grad():
        original.weight.normal_(std=0.02)
    holder = torch.nn.Module()
    holder.embed_tokens_per_layer = original
    host = quantization.offload_per_layer_embeddings(holder)
    quantized = holder.embed_tokens_per_layer
    ids = torch.randint(0, 4096, (3, 50), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, expected = quantized(ids).float(), original(ids).float()
    assert got.shape == expected.shape and quantized(ids).dtype == torch.bfloat16
    row_cosine = torch.nn.functional.cosine_similarity(got, expected, dim=-1)
    relative = (got - expected).norm() / expected.norm()
    print(
        f"PLE NF4 rows: mean cosine {row_cosine.mean():.4f}, min {row_cosine.min():.4f}, rel. error {relative:.4f}"
    )
    assert row_cosine.min() > 0.98
    assert relative < 0.12
    # 4.13 bits a value instead of 16, all in host memory, none of it a parameter or buffer.
    stored = sum(tensor.untyped_storage().nbytes() for tensor in host)
    assert stored < 0.27 * original.weight.numel() * 2
    assert all(tensor.device.type == "cpu" for tensor in host)
    assert list(holder.parameters()) == [] and list(holder.buffers()) == []
    # `weight[row, :]` (read by Gemma 4 for multimodal positions) dequantizes just that row.
    assert torch.equal(quantized.weight[5, :], quantized.dequantize_rows(torch.tensor([5]))[0])


@pytest.fixture(scope="module")
def moe_checkpoint(tmp_path_factory):
    from pipelines.model.local.synthetic import build_config, tiny_special_token_ids, write_checkpoint

    config = build_config(
        "26B-A4B",
        layers=2,
        vocab_size=512,
        num_experts=32,
        vision_layers=1,
        special_token_ids=tiny_special_token_ids(),
    )
    return str(write_checkpoint(config, tmp_path_factory.mktemp("moe-load"), seed=3))


@pytest.mark.slow
def test_checkpoint_rows_are_metered_as_the_rows_read_not_the_whole_mapped_table(tmp_path):
    """A chunk of a memory-mapped table views the whole file mapping; the load holds only what it reads."""
    from safetensors.torch import save_file

    table = torch.randn(1000, 256, dtype=torch.bfloat16)
    save_file({"table": table}, str(tmp_path / "model.safetensors"))
    meter = load_meter.LoadMeter("cpu")
    reader = streaming_load.CheckpointReader(tmp_path, meter=meter)
    rows = reader.rows("table", 10, 20)
    # What the loaders do next on a CPU: a same-device, same-dtype `.to` keeps the view.
    meter.probe(rows.to("cpu", torch.bfloat16).contiguous(), torch.zeros(100, dtype=torch.uint8))
    assert torch.equal(rows, table[10:20])
    assert rows.untyped_storage().nbytes() == table.numel() * 2  # the view's storage is the whole mapping
    assert meter.peak == 10 * 256 * 2 + 100
    reader.close()


@pytest.mark.slow
def test_layer_by_layer_load_equals_quantizing_after_a_bf16_load():
    """Tiny model (PLE, vision, audio): same modules, bytes and logits as the in-memory fallback path."""
    from transformers import AutoModelForImageTextToText

    from pipelines.model.local.loader import _bitsandbytes_config
    from pipelines.model.local.tiny import build_tiny_checkpoint

    folder = str(build_tiny_checkpoint())
    streamed = streaming_load.load_streaming(folder, "cpu")
    in_memory = AutoModelForImageTextToText.from_pretrained(
        folder, quantization_config=_bitsandbytes_config("4bit"), dtype=torch.bfloat16, device_map="cpu"
    )
    quantization.finish_4bit(in_memory, "cpu")
    in_memory.eval()
    types = {name: type(module).__name__ for name, module in streamed.named_modules()}
    assert types == {name: type(module).__name__ for name, module in in_memory.named_modules()}
    assert types["lm_head"] == "Linear4bit"
    assert types["model.language_model.embed_tokens"] == "Nf4VocabularyEmbedding"
    assert types["model.language_model.embed_tokens_per_layer"] == "Nf4HostEmbedding"
    assert quantization.accelerator_bytes(streamed, "cpu") == quantization.accelerator_bytes(in_memory, "cpu")
    prompts = torch.randint(10, 300, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(streamed(input_ids=prompts).logits, in_memory(input_ids=prompts).logits)


@pytest.mark.slow
def test_layer_by_layer_load_peaks_about_one_layer_above_resident(moe_checkpoint):
    """26B-A4B at real widths, 2 layers: the meter's peak exceeds the final size by at most about one
    decoder layer in bf16 (the in-memory path held every expert in bf16 first)."""
    meter = load_meter.LoadMeter("cpu")
    streamed = streaming_load.load_streaming(moe_checkpoint, "cpu", meter=meter)
    assert type(streamed.model.language_model.layers[0].experts).__name__ == "Nf4Experts"
    resident = quantization.accelerator_bytes(streamed, "cpu")
    layer_bf16 = sum(parameter.numel() * 2 for parameter in _bf16_layer(moe_checkpoint).parameters())
    assert resident < meter.peak <= resident + 1.1 * layer_bf16


def _bf16_layer(folder):
    from transformers import AutoConfig
    from transformers.models.gemma4.modeling_gemma4 import Gemma4TextDecoderLayer

    config = AutoConfig.from_pretrained(folder).text_config
    with torch.device("meta"):
        return Gemma4TextDecoderLayer(config, layer_idx=1)


def greedy_tokens(loaded, text: str = "Tell me about the sea", count: int = 12) -> list[int]:
    messages = [{"role": "user", "content": [{"type": "text", "text": text}]}]
    inputs = loaded.processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    with torch.no_grad():
        output = loaded.model.generate(**inputs, max_new_tokens=count, min_new_tokens=count, do_sample=False)
    return output[0, inputs["input_ids"].shape[1] :].tolist()


@pytest.fixture(scope="module")
def exported_tiny(tmp_path_factory):
    from pipelines.model.local.export import main

    out = tmp_path_factory.mktemp("tiny-4bit")
    assert main(["tiny", str(out), "--quantization", "4bit"]) == 0
    return out


@pytest.mark.slow
def test_export_round_trip_reads_only_quantized_bytes_and_keeps_greedy_tokens(exported_tiny, monkeypatch):
    import bitsandbytes.functional as bnb_functional

    from pipelines.errors import ModelLoadError
    from pipelines.model.local.loader import load_model, unload_model

    names = {path.name for path in exported_tiny.iterdir()}
    assert {"model.safetensors", "config.json", "showcase_quantization.json", "README.md"} <= names
    assert {"tokenizer.json", "chat_template.jinja"} <= names
    card = (exported_tiny / "README.md").read_text()
    assert "base_model:" in card and "NF4" in card
    on_load = load_model("tiny", "4bit", device="cpu")
    expected = greedy_tokens(on_load)
    expected_bytes = on_load.memory_bytes()
    unload_model()

    def no_quantizing(*args, **kwargs):
        raise AssertionError("a pre-quantized checkpoint must not be quantized again")

    monkeypatch.setattr(bnb_functional, "quantize_4bit", no_quantizing)
    monkeypatch.setattr(bnb_functional, "int8_vectorwise_quant", no_quantizing)
    # A request can't name a folder: only what was registered at launch (`--variant DIR`) loads.
    with pytest.raises(InputError, match="Unknown variant"):
        load_model(str(exported_tiny), device="cpu")
    register_checkpoint(str(exported_tiny))
    exported = load_model(str(exported_tiny), device="cpu")
    assert exported.quantization == "4bit"
    assert exported.memory_bytes() == expected_bytes
    assert greedy_tokens(exported) == expected
    with pytest.raises(ModelLoadError, match="pre-quantized"):
        load_model(str(exported_tiny), "bf16", device="cpu")
    unload_model()


@pytest.mark.slow
def test_exported_checkpoint_serves_chat_through_variant_dir(exported_tiny):
    from conftest import free_port
    from gradio_client import Client

    from app import build_app, launch_kwargs
    from app.config import parse_config
    from pipelines.model.local.loader import unload_model

    config = parse_config(["--variant", str(exported_tiny), "--port", str(free_port()), "--no-preload"])
    assert config.variant == str(exported_tiny)
    config = dataclasses.replace(config, delete_cache=None)  # a second app in this process keeps shared files
    demo = build_app(config)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(config))
    try:
        client = Client(f"http://127.0.0.1:{config.port}/", verbose=False)
        job = client.submit(
            message={"text": "Say something", "files": []},
            history=[],
            thinking=False,
            variant=str(exported_tiny),
            quantization="auto",
            max_new_tokens=16,
            image_budget=70,
            api_name="/chat",
        )
        final, _numbers = job.result(timeout=600)
        assert final[0]["role"] == "user"
        assert final[-1]["role"] == "assistant" and final[-1]["content"]
    finally:
        demo.close()
        unload_model()


@pytest.mark.slow
def test_gpu_check_dry_run_writes_one_json(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
        check=True,
        cwd=ROOT,
        env=env,
        timeout=240,
    )
    result = json.loads(out.read_text())
    assert result["dry_run"] is True
    (memory,) = result["memory_and_load_peak"]
    assert memory["resident_bytes"] > 0 and memory["peak_bytes"] >= memory["resident_bytes"]
    (decode,) = result["decode"]
    assert decode["tokens_per_s_4bit"] > 0 and decode["tokens_per_s_bf16"] > 0
    assert result["cache"]["status"] in ("absent", "skipped in --dry-run")


def test_exporting_into_a_folder_that_holds_anything_is_refused_without_overwrite(tmp_path):
    from pipelines.model.local.export import main

    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    with pytest.raises(SystemExit, match="is not empty; pass --overwrite"):
        main(["tiny", str(out), "--quantization", "4bit"])
    assert [path.name for path in out.iterdir()] == ["README.md"]
    assert (out / "README.md").read_text() == "my notes"


@pytest.mark.slow
def test_re_export_replaces_the_whole_folder_and_an_interrupted_one_changes_nothing(
    exported_tiny, tmp_path, monkeypatch
):
    from pipelines.model.local import export as export_module

    out = tmp_path / "again"
    shutil.copytree(exported_tiny, out)
    # What an earlier, sharded export would have left: the loader followed this index to a stale shard.
    stale = {"model-00001-of-00002.safetensors", "model.safetensors.index.json", "notes.txt"}
    for name in stale:
        (out / name).write_text("stale")
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(export_module, "write_safetensors", disk_full)
        with pytest.raises(OSError, match="No space left"):
            export_module.main(["tiny", str(out), "--quantization", "4bit", "--overwrite"])
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["again"]  # no partial folder left behind

    assert export_module.main(["tiny", str(out), "--quantization", "4bit", "--overwrite"]) == 0
    assert {path.name for path in out.iterdir()} == {path.name for path in exported_tiny.iterdir()}
    assert [path.name for path in tmp_path.iterdir()] == ["again"]
    assert (out / "README.md").read_text() == (exported_tiny / "README.md").read_text()
