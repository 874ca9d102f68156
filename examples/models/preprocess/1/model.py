"""preprocess: FEATURES = RAW scaled to unit length, after sleeping SLEEP_MS per execution."""

import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.sleep_s = float(params.get("SLEEP_MS", {}).get("string_value", "1")) / 1000

    def execute(self, requests):
        time.sleep(self.sleep_s)
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "RAW").as_numpy()
            norm = np.linalg.norm(raw, axis=-1, keepdims=True) + 1e-6
            features = (raw / norm).astype(np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("FEATURES", features)]))
        return responses
