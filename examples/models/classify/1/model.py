"""classify: SCORES = a fixed 16x4 projection of FEATURES, after sleeping SLEEP_MS per execution."""

import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.sleep_s = float(params.get("SLEEP_MS", {}).get("string_value", "4")) / 1000
        self.weights = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)

    def execute(self, requests):
        time.sleep(self.sleep_s)
        responses = []
        for request in requests:
            features = pb_utils.get_input_tensor_by_name(request, "FEATURES").as_numpy()
            scores = (features @ self.weights).astype(np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("SCORES", scores)]))
        return responses
