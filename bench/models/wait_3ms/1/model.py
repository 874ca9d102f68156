"""wait_3ms: OUTPUT0 = INPUT0, after waiting 3 ms + 0.1 ms per request of the batch, per execute() call."""

import time

import triton_python_backend_utils as pb_utils

FIXED_S, PER_ITEM_S = 0.003, 0.0001


class TritonPythonModel:
    def execute(self, requests):
        time.sleep(FIXED_S + PER_ITEM_S * len(requests))
        return [
            pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())]
            )
            for r in requests
        ]
