"""What an export writes: a `4bit` model as quantized tensors ("records") and the manifest that names them.

`pipelines.model.local.export` saves them; `streaming_load._ReadQuantized` reads them back.
"""

from __future__ import annotations

from pipelines.model.quant.nf4 import linear_nf4


def quantized_records(model) -> tuple[dict, dict]:
    """(tensors, manifest modules) describing a `4bit` model exactly, for `pipelines.model.local.export`."""
    import bitsandbytes as bnb

    from pipelines.model.quant.torch_modules import (
        Int8VocabularyEmbedding,
        Nf4Experts,
        Nf4HostEmbedding,
        Nf4Stack,
        Nf4VocabularyEmbedding,
        int8_scales,
    )

    names = {id(module): name for name, module in model.named_modules()}
    tensors: dict = {}
    modules: dict = {}
    skip: set[str] = set()
    for name, module in model.named_modules():
        if name in skip or any(name.startswith(prefix + ".") for prefix in skip):
            continue
        if isinstance(module, Nf4VocabularyEmbedding):
            head = module.lm_head[0]
            head_name = names[id(head)]
            weight = linear_nf4(head)
            modules[name] = {"kind": "nf4_vocabulary", "head": head_name, **weight.meta()}
            tensors.update(weight.record(f"{head_name}."))
            skip.update((name, head_name))
        elif isinstance(module, Int8VocabularyEmbedding):
            head = module.lm_head[0]
            head_name = names[id(head)]
            modules[name] = {"kind": "int8_vocabulary", "head": head_name}
            tensors[f"{head_name}.weight"] = head.weight.data
            tensors[f"{head_name}.SCB"] = int8_scales(head)
            skip.update((name, head_name))
        elif isinstance(module, bnb.nn.Linear4bit):
            weight = linear_nf4(module)
            modules[name] = {"kind": "nf4_linear", **weight.meta()}
            tensors.update(weight.record(f"{name}."))
            if module.bias is not None:
                tensors[f"{name}.bias"] = module.bias.data
            skip.add(name)
        elif isinstance(module, bnb.nn.Linear8bitLt):
            modules[name] = {"kind": "int8_linear"}
            tensors[f"{name}.weight"] = module.weight.data
            tensors[f"{name}.SCB"] = int8_scales(module)
            if module.bias is not None:
                tensors[f"{name}.bias"] = module.bias.data
            skip.add(name)
        elif isinstance(module, Nf4Experts):
            entry = {"kind": "nf4_experts"}
            for part in ("gate_up_proj", "down_proj"):
                stack = getattr(module, part)
                entry[part] = stack.meta()
                for buffer in Nf4Stack.BUFFERS:
                    tensors[f"{name}.{part}.{buffer}"] = getattr(stack, buffer)
            modules[name] = entry
            skip.add(name)
        elif isinstance(module, Nf4HostEmbedding):
            modules[name] = {"kind": "nf4_host_embedding", **module.table.meta()}
            tensors.update(module.table.record(f"{name}."))
            skip.add(name)
        else:
            prefix = f"{name}." if name else ""
            for local, parameter in module._parameters.items():
                if parameter is not None:
                    tensors[prefix + local] = parameter.data
            for local, buffer in module._buffers.items():
                if buffer is not None and local not in module._non_persistent_buffers_set:
                    tensors[prefix + local] = buffer
    return tensors, modules
