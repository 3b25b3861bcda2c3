"""Keys of the `metadata_props` every textgen ONNX file carries (see README, "ONNX interface").

The runtime reads the same keys (`runtime/model_file.py` mirrors these strings because it may not
import this package, which needs torch).
"""

ONNX_FORMAT = "textgen-onnx"
ONNX_FORMAT_VERSION = 1

KEY_FORMAT = "textgen.format"
KEY_FORMAT_VERSION = "textgen.format_version"
KEY_KIND = "textgen.kind"
KEY_TOKENIZER = "textgen.tokenizer"
KEY_MODEL_CONFIG = "textgen.model_config"
