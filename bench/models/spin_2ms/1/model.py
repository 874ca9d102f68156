"""spin_2ms: OUTPUT0 = INPUT0, after keeping a CPU core busy for 2 ms per execute() call (it computes, so two
models that each spin compete for the machine's cores: bench/together_vs_alone.py)."""

import time

import triton_python_backend_utils as pb_utils

BUSY_S = 0.002


class TritonPythonModel:
    def execute(self, requests):
        until = time.thread_time() + BUSY_S  # CPU time, not wall time: a descheduled instance takes longer
        while time.thread_time() < until:
            pass
        return [
            pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())]
            )
            for r in requests
        ]
