"""Our Gemma 4 chat template.

It renders the official Gemma 4 prompt format for what this app sends (system,
user and model turns with text, images and audio; thinking on or off) and is
tested byte for byte against the official template. Tool declarations are not
used by the app and are left out.

- `enable_thinking=True` puts `<|think|>` at the top of the system turn.
- With thinking off, the generation prompt pre-fills an empty thought channel.
- Thoughts are stripped from earlier model turns, so they never go back to the model.
"""

CHAT_TEMPLATE = (
    "{%- macro text_of(content) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- else -%}{%- for part in content if part['type'] == 'text' -%}{{- part['text'] -}}{%- endfor -%}"
    "{%- endif -%}"
    "{%- endmacro -%}"
    "{%- macro without_thoughts(text) -%}"
    "{%- set ns = namespace(result='') -%}"
    "{%- for piece in text.split('<channel|>') -%}"
    "{%- set ns.result = ns.result + piece.split('<|channel>')[0] -%}"
    "{%- endfor -%}"
    "{{- ns.result | trim -}}"
    "{%- endmacro -%}"
    "{%- set thinking = enable_thinking is defined and enable_thinking -%}"
    "{%- set turns = messages -%}"
    "{{- bos_token -}}"
    "{%- if thinking or messages[0]['role'] in ['system', 'developer'] -%}"
    "{{- '<|turn>system\\n' -}}"
    "{%- if thinking -%}{{- '<|think|>' -}}{%- endif -%}"
    "{%- if messages[0]['role'] in ['system', 'developer'] -%}"
    "{{- text_of(messages[0]['content']) | trim -}}"
    "{%- set turns = messages[1:] -%}"
    "{%- endif -%}"
    "{{- '<turn|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in turns -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{- '<|turn>' + role + '\\n' -}}"
    "{%- set parts = [{'type': 'text', 'text': message['content']}] if message['content'] is string"
    " else message['content'] -%}"
    "{%- for part in parts -%}"
    "{%- if part['type'] == 'text' -%}"
    "{{- without_thoughts(part['text']) if role == 'model' else part['text'] | trim -}}"
    "{%- elif part['type'] == 'image' -%}{{- '\\n\\n<|image|>\\n\\n' -}}"
    "{%- elif part['type'] == 'audio' -%}{{- '<|audio|>' -}}"
    "{%- elif part['type'] == 'video' -%}{{- '\\n\\n<|video|>\\n\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{- '<turn|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|turn>model\\n' -}}"
    "{%- if not thinking -%}{{- '<|channel>thought\\n<channel|>' -}}{%- endif -%}"
    "{%- endif -%}"
)
