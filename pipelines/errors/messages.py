"""Every sentence the app shows a person when it refuses, fails or warns: one place to read and word them.

Plain strings are shown as they are; templates are filled with `str.format` and named fields at the
place that raises (which keeps any logic, e.g. joined lists), so each call says what it fills in.
"""

# Requests as a whole: their size, and how many each visitor may have waiting.
REQUEST_NESTED_TOO_DEEPLY = "This request is nested too deeply. Send messages as a flat list."
TOO_MANY_VALUES = "This request has more than {limit:,} values. Send a shorter conversation."
TOO_MANY_MESSAGES = "This conversation has {messages:,} messages; the limit is {limit} per request. Remove the oldest messages (or start a new conversation) and send it again."
TOO_MANY_FILE_REFERENCES = "This request refers to files {references:,} times (repeats count); the limit is {limit}. Remove attachments, or the oldest messages that carry them."
IMAGES_TOO_LARGE_TOGETHER = "The images in this request are too large together: {megapixels:,.0f} million pixels in all (repeats count), and the limit is {limit:,.0f} million. Send fewer or smaller images."
FILES_TOO_LARGE_TO_DECODE = "The files in this request would take about {megabytes:,.0f} MB to decode; the limit is {limit:,.0f} MB. Send fewer, smaller or shorter files."
UPLOADED_TOO_MUCH_THIS_HOUR = "You have uploaded {uploaded:,.0f} MB in the last hour; the limit is {limit:,.0f} MB an hour. Wait a while, or send smaller files."
SESSION_HAS_TOO_MANY_REQUESTS = "You already have {limit} requests waiting or running. Wait for one of them to finish (or stop it), then try again."
ADDRESS_HAS_TOO_MANY_REQUESTS = "{limit} requests from your network address are already waiting or running. Wait for one of them to finish, then try again."
TOO_FEW_VALUES = "This request sent {received} values but the endpoint takes {expected}, in the order /gradio_api/info lists them."
QUEUE_FULL = "Gemma is busy with other people's requests right now. Please try again in a minute."

# The app's own boundary: bugs, and what Gradio refuses before a handler runs.
SOMETHING_WENT_WRONG = (
    "Something went wrong on our side. Please try again; if it keeps happening, reload the page."
)
NOT_ONE_OF_THE_CHOICES = "One of the settings is not one of its choices (the API page lists each argument's choices, e.g. quantization: auto, 4bit, 8bit, bf16 or fp32)."
NOT_ENOUGH_ARGUMENTS = "This endpoint takes {needed} arguments; the request sent {sent}. See its API page."
UNREADABLE_ARGUMENT = "One of the arguments is not in a form this endpoint takes. See its API page."
SETTING_MUST_BE_A_NUMBER = "{setting} must be a number."
SETTING_MUST_BE_A_NUMBER_IN_RANGE = "{setting} must be a number from {low:g} to {high:g}."
ARGUMENT_MUST_BE = 'The "{name}" argument must be {shape}.'

# Uploaded files.
FILE_NOT_UPLOADED_HERE = "That file was not uploaded to this app. Upload the file with your request."
UPLOAD_NOT_AN_IMAGE = "That file is not a readable image (expected PNG, JPEG, WebP, GIF or BMP)."
UPLOADED_IMAGE_TOO_LARGE = "The image is too large to process safely; please upload a smaller one."
CANT_USE_ATTACHMENT = "Can't use {name!r}: attach images, audio clips or videos (PNG, JPEG, WebP, WAV, MP3, OGG, FLAC, MP4, WebM, MOV)."

# Images.
PLEASE_PROVIDE = "Please provide {what_with_article}."
IMAGE_HAS_NO_PIXELS = "The {what} has no pixels."
IMAGE_FILE_NOT_FOUND = "The {what} file could not be found. Please upload it again."
IMAGE_FILE_EMPTY = "The {what} file is empty."
IMAGE_TOO_LARGE = "The {what} is too large to process safely: at most {megapixels:g} megapixels (for example {size}) can be used. Please resize it and try again."
NOT_A_READABLE_IMAGE = "That file is not a readable {what} (expected PNG, JPEG, WebP, GIF or BMP)."
IMAGE_TOO_LARGE_TO_DECODE_WHOLE = "The {what} is too large to process safely: {kind} is decoded whole, so at most {megapixels:g} megapixels (for example {size}) can be used. Please resize it and try again."

# Audio.
RECORD_OR_UPLOAD_AUDIO = "Please record or upload an audio clip."
AUDIO_MUST_BE_RATE_AND_SAMPLES = "Audio must be given as (sample_rate, samples)."
UNSUPPORTED_AUDIO_INPUT = "Unsupported audio input: expected a file or a recording."
AUDIO_MUST_BE_MONO = "Audio must be a single (mono) channel."
AUDIO_CLIP_EMPTY = "The audio clip is empty."
AUDIO_TOO_LONG = "The audio is too long ({length}); the limit is {limit}. Please trim it and try again."
AUDIO_HAS_TOO_MANY_CHANNELS = "The {what} has {channels} channels; at most {limit} can be used. Please mix it down (to mono or stereo) and try again."
AUDIO_SAMPLE_RATE_OUT_OF_RANGE = "The {what} is sampled at {sample_rate:,.0f} Hz; rates from {lowest:,} to {highest:,} Hz can be used. Please convert it (16,000 Hz is what the model hears)."
RECORDING_HAS_NO_SAMPLE_RATE = "The recording has no valid sample rate."
RECORDING_EMPTY = "The recording is empty."
RECORDING_HAS_UNEXPECTED_SHAPE = "The recording has an unexpected shape; expected mono or stereo samples."
RECORDING_SAMPLES_NOT_NUMBERS = "The recording's samples are not numbers."
RECORDING_HAS_INVALID_SAMPLES = "The recording contains invalid (non-finite) samples."
AUDIO_FILE_NOT_FOUND = "The audio file could not be found. Please upload it again."
AUDIO_FILE_EMPTY = "The audio file is empty."
AUDIO_FILE_TOO_LARGE = "The audio file is too large ({size}); the limit is {limit}."
AUDIO_FORMAT_NEEDS_FFMPEG = "This audio format can't be read on this server (ffmpeg is missing). Please use WAV, FLAC, MP3 or OGG instead."
AUDIO_DECODING_TOOK_TOO_LONG = "Decoding the audio took too long; please upload a shorter or simpler file."
NOT_A_READABLE_AUDIO_CLIP = "That file is not a readable audio clip (expected {formats}). It may be corrupt or contain no audio track."
AUDIO_FILE_HAS_INVALID_SAMPLES = "The audio file contains invalid (non-finite) samples."
AUDIO_CLIP_TOO_SHORT = "The audio clip is too short (under {minimum:g} seconds). Please record a longer one."
RECORDING_SILENT = "The recording is silent. Please check your microphone and try again."

# Video files, their frames and their sound.
FRAME_COUNT_NOT_A_WHOLE_NUMBER = "The number of frames must be a whole number from {minimum} to {maximum}."
FRAME_COUNT_OUT_OF_RANGE = "Choose between {minimum} and {maximum} frames (got {count})."
UPLOAD_A_VIDEO = "Please upload a video."
UNSUPPORTED_VIDEO_INPUT = "Unsupported video input: expected an uploaded file."
VIDEO_FILE_NOT_FOUND = "The video file could not be found. Please upload it again."
VIDEO_FILE_EMPTY = "The video file is empty."
NOT_A_READABLE_VIDEO_MAYBE_CORRUPT = (
    "That file is not a readable video (expected {formats}). It may be corrupt."
)
IMAGE_NOT_VIDEO = "That file is an image, not a video. Please upload a video clip."
NOT_A_READABLE_VIDEO = "That file is not a readable video (expected {formats})."
VIDEO_HAS_NO_VIDEO_TRACK = "That file has no video track. Please upload a video clip."
VIDEO_FRAME_SIZE_UNREADABLE = "The video's frame size could not be read, or its frames are larger than {frame_limit}. Please convert it to {formats} at a smaller size."
VIDEO_HAS_NO_FRAMES = "The video has no frames (its length is zero)."
VIDEO_UNREADABLE = "The video could not be read; it may be corrupt."
START_TIME_NEGATIVE = "The start time can't be negative."
START_TIME_PAST_THE_END = "The start time ({start}) is at or past the end of the video ({length} long)."
END_TIME_NOT_AFTER_START = "The end time must be after the start time."
TIME_MUST_BE_SECONDS = "The {which} time must be a number of seconds."
TIME_MUST_BE_FINITE_SECONDS = "The {which} time must be a finite number of seconds."
VIDEO_FRAMES_TOO_LARGE = "The video's frames are {width:,} x {height:,} pixels; frames up to {frame_limit} can be read. Please convert it to a smaller size."
VIDEO_FRAMES_HAVE_NO_TIMESTAMPS = (
    "The video's frames carry no timestamps (a raw stream?). Please save it as {formats} and try again."
)
NO_FRAME_IN_TIME_RANGE = "No frame of the video starts between {range_start:.2f} s and {range_end:.2f} s. Choose a longer time range."
NO_FRAMES_DECODED = "No frames could be decoded from the video; it may be corrupt."
VIDEO_HAS_NO_AUDIO_TRACK = "This video has no audio track, so only its frames can be asked about."
VIDEO_AUDIO_SPAN_TOO_LONG = "The audio of the chosen span is {length} long; at most {limit} can be included. Choose a shorter time range."
VIDEO_AUDIO_SILENT_IN_RANGE = "The video's audio track has no sound in the chosen time range."
VIDEO_AUDIO_UNREADABLE = "The video's audio track could not be read; it may be corrupt."
VIDEO_AUDIO_UNDECODABLE = "The video's audio track could not be decoded; it may be corrupt."

# Generation settings and options.
MUST_BE_A_WHOLE_NUMBER_IN_RANGE = "{name} must be a whole number from {low} to {high}."
IMAGE_BUDGET_MUST_BE_ONE_OF = "The image token budget must be one of {choices}."
SETTINGS_MUST_BE_GENERATION_SETTINGS = (
    "A request's settings must be a GenerationSettings (pipelines.settings)."
)
OPTION_OUT_OF_RANGE = "{key} must be a number from {low} to {high}."
UNKNOWN_GENERATION_OPTION = "Unknown generation option {key!r}."
TOOLS_MUST_BE_DECLARATIONS = "Tools must be function declarations with a name."
UNKNOWN_SETTING = "Unknown setting {name!r}."
CHOOSE_A_VARIANT_AND_A_QUANTIZATION = "Choose a Gemma 4 variant and a quantization."

# Chat: the conversation a request carries.
TYPE_A_MESSAGE_OR_ATTACH_A_FILE = "Type a message or attach a file to start."
TOO_MANY_ATTACHMENTS = "Attach at most {limit} files per message."
NOT_ANSWERED = "This message got no reply (see the error). Change what the error says, then press ↻ Retry."
HISTORY_PART_UNREADABLE = "The chat history has a message part this app can't read."
HISTORY_FORMAT_UNKNOWN = "The chat history is not in a format this app understands."
HISTORY_MUST_BE_A_LIST = "The chat history must be a list of messages."
HISTORY_ROLE_MUST_BE_USER_OR_ASSISTANT = (
    "Each message in the chat history must be from the user or the assistant."
)
REQUEST_NEEDS_A_MESSAGE = "A request needs at least one message."
MESSAGE_NEEDS_A_ROLE = "Every message needs a role: system, user, assistant or tool."
MESSAGE_CONTENT_MUST_BE_TEXT_OR_PARTS = "A message's content must be text or a list of parts."
MESSAGE_PART_TYPE_UNKNOWN = "A message part must be text, an image, audio or video frames."
TEXT_PART_MUST_HOLD_TEXT = "A text part must hold text."
VARIANT_CANT_TAKE_MODALITY = "{variant} can't take {modality} input. Switch to a variant that supports {modality} (E2B and E4B take audio; every variant takes images)."
REQUEST_TEXT_TOO_LONG = "This request has {characters:,} characters of text, more than the model can take ({limit:,} tokens). Shorten the message or clear the conversation."
TYPE_A_PROMPT_TO_COMPARE = "Type a prompt to compare the two models on."

# Conversation files.
CHOOSE_A_CONVERSATION_FILE = "Choose a conversation file (.json) saved with Download conversation."
CONVERSATION_FILE_TOO_LARGE = "That file is too large for a conversation (over {megabytes} MB)."
NOT_A_SAVED_CONVERSATION = "That file is not a conversation saved by this app ({reason})."
CONVERSATION_FROM_ANOTHER_TAB = "That conversation was saved in the {tab} tab: open it there."

# Detection.
DETECT_NEEDS_AN_IMAGE = "Please provide an image: upload one, paste it, or take a webcam photo."
ANSWER_WITH_BOXES_OR_POINTS = "Answer with boxes or points, not {mode!r}."
WHAT_TO_FIND_MUST_BE_TEXT = "What to find must be text."
NO_OBJECTS_FOUND = "No objects found: Gemma's answer had no boxes or points we could read."
UNKNOWN_DETECTION_MODE = "Unknown detection mode {mode!r}; choose one of {choices}."
DETECTION_QUERY_MUST_BE_TEXT = "The detection query must be text."
DETECTION_QUERY_TOO_LONG = "The detection query is too long (at most {limit} characters)."

# Screenshot to HTML, and rendering a page.
UPLOAD_A_SCREENSHOT = "Please upload or paste a screenshot first."
INSTRUCTIONS_MUST_BE_TEXT = "Instructions must be text."
NO_PAGE_TO_EDIT = "There is no page to edit yet: generate one from a screenshot first."
TYPE_THE_CHANGE = "Type the change you want, e.g. “make the header sticky”."
PREVIOUS_PAGE_KEPT = "The previous page is kept."
REPLY_HAD_NO_HTML = (
    "The model's reply contained no HTML, so there is nothing to preview. Try again or rephrase."
)
REPLY_WAS_EMPTY = "The model returned an empty reply, so there is nothing to preview. Try again."
REPLY_STOPPED_BEFORE_PAGE_FINISHED = "The reply stopped before the page was finished (raise the token limit to get the rest); the preview shows the partial page."
STOPPED_BEFORE_ANY_HTML = "Generation was stopped before the model wrote any HTML."
PREVIEW_WIDTH_MUST_BE_POSITIVE = "The preview width must be a positive number of pixels."
DESCRIBE_THE_CHANGE = "Please describe the change you want to make to the page."
NO_HTML_TO_EDIT = "There is no HTML to edit yet. Generate a page from the screenshot first."
NO_HTML_TO_COMPARE = "There is no HTML to compare with the screenshot."
SCREENSHOT_TOO_SMALL_TO_COMPARE = (
    "The screenshot is too small to compare (at least {minimum}x{minimum} pixels)."
)
CHROMIUM_COULD_NOT_START = "Chromium could not be started: {reason}"
PAGE_MUST_BE_HTML_TEXT = "The page to render must be HTML text."
HTML_TOO_LONG_TO_RENDER = "The HTML is too long to render (over {limit:,} characters)."
RENDER_SIZE_OUT_OF_RANGE = (
    "The page can't be rendered at {width}x{height} pixels (at most {max_width}x{max_height})."
)
RENDER_TIMED_OUT = "The page did not finish rendering within {timeout_s:g} s (it may run an endless script)."
RENDERING_NEEDS_PLAYWRIGHT = (
    "Page rendering is unavailable: the Python package 'playwright' is not installed."
)
RENDERING_NEEDS_CHROMIUM = "Page rendering is unavailable: Chromium was not found at {path}."
PAGE_USED_TOO_MUCH_MEMORY = "The page used more than {megabytes} MB of memory and was stopped."
PAGE_TOOK_TOO_LONG = "The page took too long to render and was stopped."

# Video questions.
TOKENS_PER_FRAME_MUST_BE_ONE_OF = "Tokens per frame must be one of {choices}."
VIDEO_HISTORY_IS_TEXT_ONLY = (
    "The video conversation holds text only: send the video itself as `video`, not in the history."
)
NO_VIDEO_FRAMES_TO_ASK_ABOUT = "There are no video frames to ask about. Please upload a video first."
FRAMES_MUST_COME_FROM_SAMPLE_FRAMES = "Video frames must come from sample_frames."
TYPE_A_QUESTION_ABOUT_THE_VIDEO = "Please type a question about the video."

# Voice.
UNKNOWN_VOICE_TASK = "Unknown voice task {task!r}; choose one of: {choices}."
GIVE_THE_TARGET_LANGUAGE = "Please give the target language as a short name, such as French or Japanese."
CLIP_OVER_CONTEXT_LIMIT = "This clip needs about {used_tokens:,} tokens, more than the context limit of {budget:,}. Please record a shorter clip."
ONE_EARLIER_TURN_DROPPED = "1 earlier turn was dropped to fit the context."
EARLIER_TURNS_DROPPED = "{count} earlier turns were dropped to fit the context."
CONTEXT_LIMIT_NOT_ABOVE_REPLY_LENGTH = (
    "The context limit must be larger than the reply length (max_new_tokens)."
)

# Will it fit?
PLOT_FOR_ONE_OF = "Plot for one of: {choices}."
CHOOSE_THE_HARDWARE_FROM = "Choose the hardware from: {choices}."
MODALITIES_MUST_BE_SOME_OF = "Modalities must be some of: {choices}."
MEMORY_MUST_BE_1_TO_10000_GB = "The memory must be a number of GB from 1 to 10,000."
NO_VARIANT_TAKES_THOSE_MODALITIES = "No Gemma 4 variant takes all of those modalities."
QUANTIZATION_MUST_BE_ONE_OF = "Quantization must be one of {choices}."
CONTEXT_AND_SEQUENCES_AT_LEAST_1 = "Context length and concurrent sequences must be at least 1."
UNKNOWN_HARDWARE = "Unknown hardware {hardware!r}."
ENTER_CUSTOM_HARDWARE_MEMORY = "Enter the memory in GB (more than 0) for custom hardware."

# Tools: what a tool call is told when it can't run.
TOOL_FAILED = "{name} could not run with these arguments. Try other arguments, or answer without the tool."
TOOL_ARGUMENTS_MUST_BE_AN_OBJECT = "arguments must be an object of named values."
UNKNOWN_TOOL_ARGUMENTS = "unknown argument(s) {unknown}; expected {expected}."
MISSING_TOOL_ARGUMENTS = "missing required argument(s) {missing}."
TOOL_ARGUMENT_OF_WRONG_TYPE = "argument '{key}' must be of type {expected}, not {actual}."
TOOL_ARGUMENT_NOT_ONE_OF = "argument '{key}' must be one of {choices}."
TOOL_ARGUMENTS_TOO_LONG = "the arguments are too long (at most {limit:,} characters)."
TOOL_CALL_TIMED_OUT = "The tool call took longer than {seconds:g} s and was stopped."
TOOL_CALL_STOPPED_WITHOUT_ANSWER = "The tool call stopped without an answer (it may have run out of memory)."
UNKNOWN_TIME_ZONE = (
    "Unknown time zone '{name}'. Use an IANA name such as 'Europe/Paris' or 'America/New_York'."
)
NO_IMAGE_TO_ZOOM_INTO = "No image is attached to this conversation, so there is nothing to zoom into."
IMAGE_INDEX_OUT_OF_RANGE = "image_index must be between 1 and {count} (the attached images, in order)."
BOX_MUST_BE_FOUR_NUMBERS = "box must be four numbers: [ymin, xmin, ymax, xmax], each 0-1000."
BOX_COORDINATES_OUT_OF_RANGE = "box coordinates must be between 0 and 1000 ([ymin, xmin, ymax, xmax])."
BOX_EMPTY_OR_TOO_SMALL = (
    "The box is empty or too small (ymin < ymax and xmin < xmax, each side at least {minimum}/1000)."
)
EXPRESSION_EMPTY = "The expression is empty."
EXPRESSION_TOO_LONG = "The expression is too long (at most {limit} characters)."
NOT_AN_ARITHMETIC_EXPRESSION = "'{text}' is not a valid arithmetic expression."
EXPRESSION_NESTED_TOO_DEEPLY = "The expression is nested too deeply."
UNSUPPORTED_SYNTAX = "Unsupported syntax: {syntax}. Only numbers, arithmetic and math functions work."
USE_DOUBLE_STAR_FOR_POWERS = "Use ** for powers ('^' is not supported)."
UNKNOWN_CONSTANT = "Unknown name '{name}'. Known constants: {choices}."
UNKNOWN_FUNCTION = "Unknown function '{name}'. Known functions: {choices}."
FACTORIAL_NEEDS_A_WHOLE_NUMBER = "factorial needs a whole number ≥ 0."
FACTORIAL_TOO_LARGE = "factorial is limited to n ≤ {limit}."
ROUND_DIGITS_OUT_OF_RANGE = "round's digits must be between -{limit} and {limit}."
DIVISION_BY_ZERO = "Division by zero."
FUNCTION_CANT_TAKE_VALUE = "A function got a value it can't take (for example, the square root or logarithm of a negative number, or the wrong number of arguments)."
RESULT_IS_COMPLEX = "The result is a complex number, which the calculator does not support."
RESULT_TOO_LARGE = "The result is too large."
RESULT_HAS_TOO_MANY_DIGITS = "The result is too large (more than about 1200 digits)."
RESULT_NOT_FINITE = "The result is not a finite number."
UNKNOWN_UNIT = "Unknown unit '{name}'. Known units — {known}."
VALUE_MUST_BE_FINITE = "The value must be a finite number."
UNITS_MEASURE_DIFFERENT_THINGS = "Can't convert {source_dimension} ({source}) to {target_dimension} ({target}): the units measure different things."
BELOW_ABSOLUTE_ZERO = "{value} {source} is below absolute zero."
TOO_MANY_TOOL_CALLS_IN_ONE_REPLY = "Not run: one reply may make at most {limit} tool calls."
TOO_MANY_TOOL_IMAGES = "Not shown: at most {limit} tool images are kept per request."

# Choosing and loading a model.
UNKNOWN_VARIANT = "Unknown variant {variant!r}. Choose one of: {choices}."
UNKNOWN_VARIANT_OR_CHECKPOINT = "Unknown variant {variant!r}. Choose one of: {choices}, or a folder or Hub id of a pre-quantized checkpoint."
UNKNOWN_QUANTIZATION = "Unknown quantization {quantization!r}. Choose one of: {choices}."
UNKNOWN_BACKEND = "Unknown backend {kind!r}. Choose one of: {choices}."
BITSANDBYTES_MISSING = "needs bitsandbytes, which is not installed here (pip install bitsandbytes on Linux), or choose bf16 or fp32"
QUANTIZATION_UNAVAILABLE_HERE = "{quantization} can't run on this machine: it {reason}."
QUANTIZATION_NEEDS_BITSANDBYTES = "{quantization} quantization {reason}."
MODEL_LOCKED_BY_OPERATOR = "This app serves only {variant} with {quantization} quantization: its operator locked the model, so requests can't change it. Send variant {variant!r} and quantization {quantization!r}, or leave both out."
STILL_ANSWERING_WITH_CURRENT_MODEL = "Gemma is still answering other people's requests with the current model, so it can't switch now. Please try again in a minute."
CUDA_REQUESTED_BUT_UNAVAILABLE = "CUDA was requested but no CUDA GPU is available to PyTorch. Run on a GPU machine, install a CUDA build of torch, or choose the CPU."
PREQUANTIZED_CHECKPOINT_MISMATCH = "{variant} is a pre-quantized {prequantized} checkpoint; it can't be loaded as {quantization}. Choose auto or {prequantized}, or the base variant."
NOT_A_READABLE_PREQUANTIZED_CHECKPOINT = "{folder} is not a readable pre-quantized checkpoint: {error}"
GATED_MODEL = "{name} is a gated model. Accept its licence on its Hugging Face page, then set HF_TOKEN to a token of the account that accepted it, and try again."
MODEL_NOT_FOUND_ON_HUB = (
    "{name} was not found on the Hugging Face Hub, or your token can't see it. Check HF_TOKEN."
)
NOT_ENOUGH_MEMORY_TO_LOAD = "Not enough memory to load {variant} ({quantization}). Choose a smaller variant or 4-bit quantization, or free memory on the device."
BITSANDBYTES_FAILED = "{quantization} quantization failed in bitsandbytes ({error}). Install a bitsandbytes build for your platform, or choose bf16 or fp32."
CUDA_NOT_USABLE = "CUDA is not usable here ({error}). Choose the CPU device or fix the CUDA install."
COULD_NOT_DOWNLOAD = "Couldn't download {name}: no network, or offline mode is on (HF_HUB_OFFLINE). Connect to the internet or pre-download the model, or choose the offline tiny variant."
LOADING_FAILED = "Loading {variant} failed: {error}"

# Generating on this machine.
REQUEST_TOO_MANY_TOKENS = "This request is {length:,} tokens long; the limit is {limit:,}. Use fewer or smaller images, a lower image budget, fewer frames, a shorter clip, or clear the conversation."
OUT_OF_MEMORY_WHILE_GENERATING = "{variant} ran out of memory while generating. Lower the image budget, max new tokens or the number of frames, or choose a smaller variant or 4-bit quantization."
GENERATION_FAILED_UNEXPECTEDLY = (
    "Generation failed unexpectedly. Please try again; if it persists, reload the model."
)

# A remote model server (OpenAI-compatible).
MODEL_SERVER_URL_NOT_HTTP = "The model server URL {url!r} is not an http(s) URL. Pass --base-url http://host:port/v1 (or set OPENAI_BASE_URL)."
MODEL_SERVER_AT = "The model server at {url}"
MODEL_SERVER_REPORTS_NO_MODELS = "The model server at {url} reports no models at /v1/models."
MODEL_SERVER_DOESNT_SERVE = "The model server at {url} doesn't serve {requested!r}. Pick one of: {choices}."
MODEL_SERVER_REPLY_TIMED_OUT = "The model server at {url} didn't finish the reply within {timeout_s:.0f} s. It may be overloaded; try again, or ask for fewer new tokens."
MODEL_SERVER_DIDNT_ANSWER_IN_TIME = "{server} didn't answer within {timeout_s:.0f} s. It may be overloaded or still loading the model; try again in a moment, or ask for fewer new tokens."
MODEL_SERVER_DROPPED_CONNECTION = "{server} dropped the connection in the middle of the reply; it may have crashed or run out of memory. Try again; if it persists, check the server's logs."
CANT_REACH_MODEL_SERVER = "Can't reach the model server at {url}{reason}. Check that it is running and that --base-url (or OPENAI_BASE_URL) points at it, e.g. http://127.0.0.1:8000/v1."
MODEL_SERVER_REFUSED_API_KEY = (
    "{server} refused the API key (HTTP {status}). Set --api-key (or OPENAI_API_KEY)."
)
MODEL_SERVER_HAS_NO_SUCH_MODEL = "{server} has no model{named} or no chat endpoint (HTTP 404){suffix} Check the model name and that --base-url ends in /v1."
MODEL_SERVER_BUSY = "{server} is busy (HTTP 429). Try again in a moment."
MODEL_SERVER_FAILED = "{server} failed (HTTP {status}){suffix} Try again; if it persists, check its logs."
MODEL_SERVER_REJECTED_REQUEST = "{server} rejected the request (HTTP {status}){suffix}"
MODEL_SERVER_STOPPED_REPLY = (
    "{server} stopped the reply with an error. Try again; if it persists, check its logs."
)
MODEL_SERVER_FAILED_UNEXPECTEDLY = "{server} failed unexpectedly ({error_type}). Please try again."
UNKNOWN_CHAT_ROLE = "A chat message has the role {role!r}; use system, user or assistant."
SEND_VIDEO_AS_FRAMES = "Send a video as its sampled frames (a list of images)."
UNSENDABLE_PART = "A chat message has a {kind!r} part this app can't send."
CONVERSATION_IMAGE_UNREADABLE = "An image in the conversation could not be read."
CONVERSATION_AUDIO_EMPTY_OR_NOT_MONO = "An audio clip in the conversation is empty or not mono."
