"""Our Gemma 4 chat template.

It renders the official Gemma 4 prompt format for what this app sends and is
tested byte for byte against the official template (stored golden renders):
system, user and model turns with text, images, audio and video; thinking on
or off; and Gemma 4's native function calling.

- `enable_thinking=True` puts `<|think|>` at the top of the system turn.
- With thinking off, the generation prompt pre-fills an empty thought channel.
- Thoughts are stripped from earlier model turns, so they never go back to the model.

Tools (see `pipelines.tools` for the value format and `pipelines.tool_loop` for the loop):

- `tools=[{"type": "function", "function": {"name", "description", "parameters"}}]` (JSON
  schema, OpenAI format) are declared in the system turn as `<|tool>declaration:NAME{…}<tool|>`,
  with the official template's exact (and sometimes quirky) schema rendering.
- An assistant message's `tool_calls` (`[{"type": "function", "function": {"name", "arguments"}}]`,
  arguments a dict or an already formatted string) render as `<|tool_call>call:NAME{…}<tool_call|>`.
- A message's `tool_responses` (`[{"name": NAME, "response": dict or value}]`) render as
  `<|tool_response>response:NAME{…}<tool_response|>`. A message with tool responses and no content
  leaves its turn open and the generation prompt then adds no new model turn, so the model goes on
  with its answer in the same turn: put the calls and their responses on one assistant message.
- A `role: "tool"` message renders, like any other role, as a plain `<|turn>tool\\n…<turn|>` turn
  (as the official template does); prefer `tool_responses`, which is what the model was trained on.
"""

_VALUE = (
    # format_value: strings in <|"|>, bare true/false and numbers, sorted (case-insensitive) keys.
    "{%- macro value(v, quote_keys=true) -%}"
    "{%- if v is string -%}{{- '<|\"|>' + v + '<|\"|>' -}}"
    "{%- elif v is boolean -%}{{- 'true' if v else 'false' -}}"
    "{%- elif v is mapping -%}{{- '{' -}}"
    "{%- for key, item in v | dictsort -%}"
    "{%- if not loop.first -%},{%- endif -%}"
    "{{- ('<|\"|>' + key + '<|\"|>') if quote_keys else key -}}:{{- value(item, quote_keys) -}}"
    "{%- endfor -%}{{- '}' -}}"
    "{%- elif v is sequence -%}{{- '[' -}}"
    "{%- for item in v -%}{%- if not loop.first -%},{%- endif -%}{{- value(item, quote_keys) -}}{%- endfor -%}"
    "{{- ']' -}}"
    "{%- else -%}{{- v -}}"
    "{%- endif -%}"
    "{%- endmacro -%}"
)

_QUOTED_LIST = (
    "{%- macro quoted_list(items) -%}"
    "{%- for item in items -%}{%- if not loop.first -%},{%- endif -%}{{- '<|\"|>' -}}{{- item -}}{{- '<|\"|>' -}}"
    "{%- endfor -%}"
    "{%- endmacro -%}"
)

_PROPERTIES = (
    # The properties of a JSON schema object, the way the official template writes them: the
    # standard keys are skipped, a comma only follows description/nullable/enum, and an object's
    # or array's details always start with a comma.
    "{%- macro properties(props) -%}"
    "{%- set outer = namespace(first=true) -%}"
    "{%- for key, spec in props | dictsort -%}"
    "{%- if key not in ['description', 'type', 'properties', 'required', 'nullable'] -%}"
    "{%- if not outer.first -%},{%- endif -%}{%- set outer.first = false -%}"
    "{%- set ns = namespace(comma=false) -%}"
    "{{- key -}}:{{- '{' -}}"
    "{%- if spec['description'] -%}"
    "description:{{- '<|\"|>' -}}{{- spec['description'] -}}{{- '<|\"|>' -}}{%- set ns.comma = true -%}"
    "{%- endif -%}"
    "{%- if spec['nullable'] -%}"
    "{%- if ns.comma -%},{%- endif -%}{%- set ns.comma = true -%}nullable:true"
    "{%- endif -%}"
    "{%- set kind = (spec['type'] if spec['type'] is string else spec['type'][0]) | upper -%}"
    "{%- if kind == 'STRING' -%}"
    "{%- if spec['enum'] -%}"
    "{%- if ns.comma -%},{%- endif -%}{%- set ns.comma = true -%}enum:{{- value(spec['enum']) -}}"
    "{%- endif -%}"
    "{%- elif kind == 'OBJECT' -%}"
    "{{- ',properties:{' -}}"
    "{%- if spec['properties'] is defined and spec['properties'] is mapping -%}"
    "{{- properties(spec['properties']) -}}"
    "{%- elif spec is mapping -%}{{- properties(spec) -}}"
    "{%- endif -%}"
    "{{- '}' -}}"
    "{%- if spec['required'] -%},required:[{{- quoted_list(spec['required']) -}}]{%- endif -%}"
    "{%- elif kind == 'ARRAY' -%}"
    "{%- if spec['items'] is mapping and spec['items'] -%}"
    "{{- ',items:{' -}}"
    "{%- set inner = namespace(first=true) -%}"
    "{%- for item_key, item in spec['items'] | dictsort -%}"
    "{%- if item is not none -%}"
    "{%- if not inner.first -%},{%- endif -%}{%- set inner.first = false -%}"
    "{%- if item_key == 'properties' -%}"
    "properties:{{- '{' -}}{%- if item is mapping -%}{{- properties(item) -}}{%- endif -%}{{- '}' -}}"
    "{%- elif item_key == 'required' -%}required:[{{- quoted_list(item) -}}]"
    "{%- elif item_key == 'type' -%}"
    "type:{{- value(item | upper if item is string else item | map('upper') | list) -}}"
    "{%- else -%}{{- item_key -}}:{{- value(item) -}}"
    "{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{- '}' -}}"
    "{%- endif -%}"
    "{%- endif -%}"
    "{%- if ns.comma -%},{%- endif -%}"
    "type:{{- '<|\"|>' + kind + '<|\"|>}' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endmacro -%}"
)

_DECLARATION = (
    # declaration:NAME{description:…,parameters:{properties:{…},required:[…],type:…},response:{…}}
    "{%- macro declaration(tool) -%}"
    "{%- set function = tool['function'] -%}"
    "{%- set params = function['parameters'] -%}"
    "{{- 'declaration:' -}}{{- function['name'] -}}{{- '{description:' -}}{{- '<|\"|>' -}}{{- function['description'] -}}"
    "{{- '<|\"|>' -}}"
    "{%- if params -%}"
    "{{- ',parameters:{' -}}"
    "{%- if params['properties'] -%}properties:{{- '{' -}}{{- properties(params['properties']) -}}{{- '},' -}}{%- endif -%}"
    "{%- if params['required'] -%}required:[{{- quoted_list(params['required']) -}}],{%- endif -%}"
    "{%- if params['type'] -%}type:{{- '<|\"|>' -}}{{- params['type'] | upper -}}{{- '<|\"|>}' -}}{%- endif -%}"
    "{%- endif -%}"
    "{%- if 'response' in function -%}"
    "{%- set response = function['response'] -%}"
    "{{- ',response:{' -}}"
    "{%- if response['description'] -%}"
    "description:{{- '<|\"|>' -}}{{- response['description'] -}}{{- '<|\"|>' -}},"
    "{%- endif -%}"
    "{%- if response['type'] | upper == 'OBJECT' -%}"
    "type:{{- '<|\"|>' -}}{{- response['type'] | upper -}}{{- '<|\"|>}' -}}"
    "{%- endif -%}"
    "{%- endif -%}"
    "{{- '}' -}}"
    "{%- endmacro -%}"
)

_TEXT_HELPERS = (
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
)

_BODY = (
    "{%- set thinking = enable_thinking is defined and enable_thinking -%}"
    "{%- set turns = messages -%}"
    # `last` is what the last message ended with; after tool responses the model turn stays open.
    "{%- set state = namespace(last=none) -%}"
    "{{- bos_token -}}"
    "{%- if thinking or tools or messages[0]['role'] in ['system', 'developer'] -%}"
    "{{- '<|turn>system\\n' -}}"
    "{%- if thinking -%}{{- '<|think|>' -}}{%- endif -%}"
    "{%- if messages[0]['role'] in ['system', 'developer'] -%}"
    "{{- text_of(messages[0]['content']) | trim -}}"
    "{%- set turns = messages[1:] -%}"
    "{%- endif -%}"
    "{%- for tool in tools or [] -%}"
    "{{- '<|tool>' -}}{{- declaration(tool) | trim -}}{{- '<tool|>' -}}"
    "{%- endfor -%}"
    "{{- '<turn|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in turns -%}"
    "{%- set state.last = none -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{- '<|turn>' + role + '\\n' -}}"
    "{%- if message['tool_calls'] -%}"
    "{%- for call in message['tool_calls'] -%}"
    "{%- set function = call['function'] -%}"
    "{{- '<|tool_call>call:' + function['name'] + '{' -}}"
    "{%- if function['arguments'] is mapping -%}"
    "{%- for key, item in function['arguments'] | dictsort -%}"
    "{%- if not loop.first -%},{%- endif -%}{{- key -}}:{{- value(item, false) -}}"
    "{%- endfor -%}"
    "{%- elif function['arguments'] is string -%}{{- function['arguments'] -}}"
    "{%- endif -%}"
    "{{- '}<tool_call|>' -}}"
    "{%- endfor -%}"
    "{%- set state.last = 'tool_call' -%}"
    "{%- endif -%}"
    "{%- if message['tool_responses'] -%}"
    "{%- for answer in message['tool_responses'] -%}"
    "{{- '<|tool_response>response:' + answer['name'] | default('unknown') -}}"
    "{%- if answer['response'] is mapping -%}"
    "{{- value(answer['response'], false) -}}"
    "{%- else -%}{{- '{value:' + value(answer['response'], false) + '}' -}}"
    "{%- endif -%}"
    "{{- '<tool_response|>' -}}"
    "{%- endfor -%}"
    "{%- set state.last = 'tool_response' -%}"
    "{%- endif -%}"
    "{%- set content = message['content'] -%}"
    "{%- set parts = [{'type': 'text', 'text': content}] if content is string"
    " else (content if content is sequence else []) -%}"
    "{%- for part in parts -%}"
    "{%- if part['type'] == 'text' -%}"
    "{{- without_thoughts(part['text']) if role == 'model' else part['text'] | trim -}}"
    "{%- elif part['type'] == 'image' -%}{{- '\\n\\n<|image|>\\n\\n' -}}{%- set state.last = 'image' -%}"
    "{%- elif part['type'] == 'audio' -%}{{- '<|audio|>' -}}{%- set state.last = 'audio' -%}"
    "{%- elif part['type'] == 'video' -%}{{- '\\n\\n<|video|>\\n\\n' -}}{%- set state.last = 'video' -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if not (message['tool_responses'] and not content) -%}{{- '<turn|>\\n' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{%- if state.last != 'tool_response' -%}{{- '<|turn>model\\n' -}}{%- endif -%}"
    "{%- if not thinking -%}{{- '<|channel>thought\\n<channel|>' -}}{%- endif -%}"
    "{%- endif -%}"
)

CHAT_TEMPLATE = _VALUE + _QUOTED_LIST + _PROPERTIES + _DECLARATION + _TEXT_HELPERS + _BODY
