"""sleep_10ms: OUTPUT0 = INPUT0, after waiting 10 ms per request."""

import time

import triton_python_backend_utils as pb_utils

SLEEP_S = 0.010


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            time.sleep(SLEEP_S)
            data = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT0", data)]))
        return responses
