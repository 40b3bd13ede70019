"""The `4bit` loader path (issue 9): what bitsandbytes leaves in bf16 is quantized or moved off the accelerator.

The accuracy checks use a reduced-depth model with the real 26B-A4B layer widths (random weights,
fewer experts and a small vocabulary so it builds in seconds), loaded through the real loader.
"""

from __future__ import annotations

import pytest
import torch

from pipelines.model.contract import drain
from pipelines.model.local.loader import LoadedModel, _load_from_folder, load_model, tensor_bytes_by_device
from pipelines.model.local.synthetic import build_config, tiny_special_token_ids, write_checkpoint
from pipelines.model.quant import nf4, quantization, torch_modules
from pipelines.model.variants import get_variant
from pipelines.settings import GenerationSettings

PROMPT_COUNT = 6
PROMPT_LENGTH = 12


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)


def small_experts(seed: int = 0):
    from transformers import Gemma4TextConfig
    from transformers.models.gemma4.modeling_gemma4 import Gemma4TextExperts

    config = Gemma4TextConfig(
        hidden_size=256, num_experts=6, moe_intermediate_size=96, top_k_experts=2, enable_moe_block=True
    )
    torch.manual_seed(seed)
    experts = Gemma4TextExperts(config)
    with torch.no_grad():
        experts.gate_up_proj.normal_(std=0.05)
        experts.down_proj.normal_(std=0.05)
    return experts.to(torch.bfloat16).eval()


def routing(tokens: int, experts: int, top_k: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(tokens, experts, generator=generator)
    weights, index = scores.topk(top_k, dim=-1)
    return index, (weights / weights.sum(-1, keepdim=True)).to(torch.bfloat16)


def test_nf4_experts_compute_exactly_with_their_dequantized_weights():
    experts = small_experts()
    quantized = torch_modules.Nf4Experts(experts)
    reference = small_experts()
    with torch.no_grad():
        for index in range(experts.num_experts):
            reference.gate_up_proj[index] = quantized.gate_up_proj.dequantize(index)
            reference.down_proj[index] = quantized.down_proj.dequantize(index)
    hidden = torch.randn(9, experts.hidden_dim, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    index, weights = routing(9, experts.num_experts, 2)
    with torch.no_grad():
        expected = reference(hidden, index, weights)
        got = quantized(hidden, index, weights)
        bf16 = experts(hidden, index, weights)
    assert torch.allclose(got.float(), expected.float(), atol=2e-2, rtol=2e-2)
    # Two chained NF4 matmuls around a GELU on random weights: close to bf16, not equal.
    assert cosine(got.flatten(), bf16.flatten()) > 0.95
    # Every expert's NF4 storage is about a quarter of its bf16 size, statistics included.
    stored = sum(buffer.numel() * buffer.element_size() for buffer in quantized.buffers())
    dense = sum(parameter.numel() * parameter.element_size() for parameter in experts.parameters())
    assert stored < 0.3 * dense


def test_host_embedding_keeps_an_nf4_table_in_host_memory_close_to_the_original():
    from transformers.models.gemma4.modeling_gemma4 import Gemma4TextScaledWordEmbedding

    torch.manual_seed(0)
    original = Gemma4TextScaledWordEmbedding(50, 64, padding_idx=0, embed_scale=4.0).to(torch.bfloat16)
    holder = torch.nn.Module()
    holder.embed_tokens_per_layer = original
    offloaded = quantization.offload_per_layer_embeddings(holder)
    ids = torch.tensor([[0, 3, 49, 7]])
    got = holder.embed_tokens_per_layer(ids)
    assert got.dtype == torch.bfloat16
    assert cosine(got.flatten(), original(ids).flatten()) > 0.99
    assert offloaded and all(tensor.device.type == "cpu" for tensor in offloaded)
    # The table is no parameter: model.to(...) and device maps can't pull it onto the accelerator.
    assert list(holder.parameters()) == []


@pytest.fixture(scope="module")
def moe_checkpoint(tmp_path_factory):
    """26B-A4B at real widths, 2 layers (sliding + full), 32 experts (bitsandbytes CPU needs router widths in multiples of 32), the tiny tokenizer's vocabulary."""
    ids = tiny_special_token_ids()
    config = build_config(
        "26B-A4B", layers=2, vocab_size=512, num_experts=32, vision_layers=1, special_token_ids=ids
    )
    return str(write_checkpoint(config, tmp_path_factory.mktemp("moe"), seed=3))


@pytest.fixture(scope="module")
def moe_models(moe_checkpoint):
    from bench.memory import load_plain_bnb

    bf16, processor = _load_from_folder(moe_checkpoint, "bf16", "cpu")
    four_bit, _ = _load_from_folder(moe_checkpoint, "4bit", "cpu")
    plain = load_plain_bnb(moe_checkpoint, "cpu")
    return {"bf16": bf16, "4bit": four_bit, "plain": plain, "processor": processor}


def next_token_logits(model, prompts: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=prompts).logits[:, -1, :].float()


def fixed_prompts(vocab_size: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    return torch.randint(10, vocab_size, (PROMPT_COUNT, PROMPT_LENGTH), generator=generator)


@pytest.mark.slow
def test_4bit_replaces_what_bitsandbytes_leaves_in_bf16(moe_models):
    import bitsandbytes as bnb

    model = moe_models["4bit"]
    types = {type(module).__name__ for module in model.modules()}
    assert "Gemma4TextExperts" not in types and "Nf4Experts" in types
    assert isinstance(model.lm_head, bnb.nn.Linear8bitLt)  # no per-layer embeddings: int8 vocabulary
    assert type(model.get_input_embeddings()).__name__ == "Int8VocabularyEmbedding"
    vision_linears = [m for m in model.model.vision_tower.modules() if type(m) is torch.nn.Linear]
    assert vision_linears == []
    # Nothing big is left in bf16 besides the vision position table (a lookup, 0.05 GB at full size).
    left_in_bf16 = [name for name, p in model.named_parameters() if p.dtype == torch.bfloat16 and p.ndim > 1]
    assert left_in_bf16 == ["model.vision_tower.patch_embedder.position_embedding_table"]
    assert quantization.accelerator_bytes(model, "cpu") < 0.6 * quantization.accelerator_bytes(
        moe_models["plain"], "cpu"
    )


@pytest.mark.slow
def test_4bit_logits_stay_close_to_bf16_and_no_worse_than_plain_bitsandbytes(moe_models):
    prompts = fixed_prompts(moe_models["bf16"].config.text_config.vocab_size)
    reference = next_token_logits(moe_models["bf16"], prompts)
    ours = next_token_logits(moe_models["4bit"], prompts)
    plain = next_token_logits(moe_models["plain"], prompts)
    ours_cosine = cosine(ours, reference).mean().item()
    plain_cosine = cosine(plain, reference).mean().item()
    ours_top1 = (ours.argmax(-1) == reference.argmax(-1)).float().mean().item()
    plain_top1 = (plain.argmax(-1) == reference.argmax(-1)).float().mean().item()
    # Random weights give small, flat logits, so even plain bitsandbytes is only ~0.89 cosine here;
    # what matters is that quantizing the experts, vocabulary and towers on top costs next to nothing.
    assert ours_cosine > 0.85
    assert ours_cosine >= plain_cosine - 0.01
    assert ours_top1 >= plain_top1 - 1 / PROMPT_COUNT


@pytest.mark.slow
def test_4bit_moe_model_generates_with_an_image(moe_models, moe_checkpoint):
    from PIL import Image

    loaded = LoadedModel(
        model=moe_models["4bit"],
        processor=moe_models["processor"],
        variant="26B-A4B",
        quantization="4bit",
        device="cpu",
        spec=get_variant("26B-A4B"),
        source=moe_checkpoint,
    )
    image = Image.new("RGB", (96, 64), (200, 30, 30))
    messages = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "?"}]}
    ]
    stream = loaded.generate(
        messages,
        settings=GenerationSettings(thinking=False, max_new_tokens=3, image_budget=70),
        min_new_tokens=3,
    )
    reply, usage = drain(stream)
    # Random weights: the words are noise, but three tokens came out of the 4-bit experts after the image.
    assert usage.outcome == "ok" and usage.output_tokens == 3 and usage.input_tokens > 70
    assert reply.thought == ""


@pytest.mark.slow
def test_tiny_4bit_keeps_ple_in_host_memory_and_generates_with_an_image():
    from PIL import Image

    loaded = load_model("tiny", "4bit", device="cpu")
    model = loaded.model
    host = quantization.offloaded_tensors(model)
    assert host and all(tensor.device.type == "cpu" for tensor in host)
    host_bytes = sum(
        {tensor.untyped_storage().data_ptr(): tensor.untyped_storage().nbytes() for tensor in host}.values()
    )
    total = sum(tensor_bytes_by_device(model).values())
    assert quantization.accelerator_bytes(model, "cpu") == total - host_bytes
    assert sum(loaded.memory_bytes().values()) == total
    image = Image.new("RGB", (64, 64), (10, 120, 240))
    messages = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "hi"}]}
    ]
    deltas = list(
        loaded.generate(
            messages,
            settings=GenerationSettings(thinking=False, max_new_tokens=4),
        )
    )
    assert deltas


@pytest.mark.slow
@pytest.mark.parametrize(
    ("bits", "head_class", "storage"), [(4, "Linear4bit", "uint8"), (8, "Linear8bitLt", "int8")]
)
def test_vocabulary_serves_embedding_and_lm_head_from_one_copy(bits, head_class, storage, monkeypatch):
    monkeypatch.setattr(quantization, "vocabulary_bits", lambda config: bits)
    import bitsandbytes as bnb
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig

    config = Gemma4TextConfig(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=1,
        layer_types=["full_attention"],
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=32,
        global_head_dim=32,
        hidden_size_per_layer_input=0,
    )
    torch.manual_seed(0)
    model = Gemma4ForCausalLM(config).to(torch.bfloat16).eval()
    original = model.get_input_embeddings()
    ids = torch.tensor([[0, 5, 95, 17]])
    expected = original(ids)
    assert quantization.quantize_vocabulary(model)
    embedding = model.get_input_embeddings()
    assert isinstance(model.lm_head, getattr(bnb.nn, head_class))
    got = embedding(ids)
    assert got.dtype == expected.dtype
    assert cosine(got.flatten(), expected.flatten()) > 0.99
    # Gemma 4 reads `embed_tokens.weight[pad_token_id, :]` for multimodal positions.
    assert torch.allclose(
        embedding.weight[5, :].float(), got[0, 1].float() / original.scalar_embed_scale, atol=0.05
    )
    packed = [p for p in model.parameters() if p.dtype == getattr(torch, storage)]
    assert [p.data_ptr() for p in packed] == [model.lm_head.weight.data_ptr()]


@pytest.mark.slow
def test_every_4bit_layer_the_avx512_bf16_cpu_path_would_repack_meets_its_shape_rules(monkeypatch):
    """bitsandbytes' other CPU path, forced on: the shapes it would repack, repacked and unpacked exactly.

    On a processor with AVX512-BF16 a `Linear4bit` repacks its weight on first use and asserts on shapes
    it can't block; this machine may not have one, so the check stands in for it.
    """
    import copy

    import bitsandbytes.functional as bnb_functional
    import bitsandbytes.nn.modules as bnb_modules

    from pipelines.model.local.loader import unload_model

    monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True)
    unload_model()
    try:
        model = load_model("tiny", "4bit", device="cpu").model
        packed, generic = [], []
        for name, module in model.named_modules():
            if not isinstance(module, bnb_modules.Linear4bit):
                continue
            state = module.weight.quant_state
            if not module.support_avx512bf16_for_cpu:
                assert not nf4.packed_cpu_path_accepts(*state.shape, state.blocksize), name
                generic.append(name)
                continue
            weight, kept = module.weight.data.clone(), copy.deepcopy(state)
            repacked, repacked_state = bnb_functional._convert_weight_packed_for_cpu(weight.clone(), kept)
            restored, _ = bnb_functional._convert_weight_packed_for_cpu_inverse(repacked, repacked_state)
            assert torch.equal(restored.view(torch.uint8).flatten(), weight.view(torch.uint8).flatten()), name
            packed.append(name)
    finally:
        unload_model()
    # tiny's vocabulary head has 387 rows (not a multiple of 32); its decoder layers all fit the packed path.
    assert generic == ["lm_head"]
    assert len(packed) == 19


def test_the_packed_cpu_path_rules_match_what_bitsandbytes_asserts():
    import bitsandbytes.functional as bnb_functional

    for rows, columns in [(64, 128), (96, 64), (387, 64), (40, 64)]:
        weight = torch.randn(rows, columns, dtype=torch.bfloat16)
        packed, state = bnb_functional.quantize_4bit(weight, blocksize=64, quant_type="nf4")
        accepted = nf4.packed_cpu_path_accepts(rows, columns, 64)
        if accepted:
            bnb_functional._convert_weight_packed_for_cpu(packed, state)
        else:
            with pytest.raises(AssertionError, match="divisible"):
                bnb_functional._convert_weight_packed_for_cpu(packed, state)
        assert accepted == (rows % 32 == 0)
