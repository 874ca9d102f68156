"""sleep_20ms: OUTPUT0 = INPUT0, after waiting 20 ms per execute() call (one batch of requests)."""

import time

import triton_python_backend_utils as pb_utils

SLEEP_S = 0.020


class TritonPythonModel:
    def execute(self, requests):
        time.sleep(SLEEP_S)
        return [
            pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())]
            )
            for r in requests
        ]
