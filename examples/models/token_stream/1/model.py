"""token_stream: token ids in, one response per generated token id out, at known delays (see config.pbtxt).
Each request is served on its own thread, as an LLM server batches requests in flight."""

import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = {k: v["string_value"] for k, v in json.loads(args["model_config"]).get("parameters", {}).items()}
        self.prefill_s = float(params.get("PREFILL_MS", "4")) / 1000
        self.token_s = float(params.get("TOKEN_MS", "1")) / 1000
        self.default_max_tokens = int(params.get("DEFAULT_MAX_TOKENS", "16"))
        self.threads = []

    def execute(self, requests):
        for request in requests:
            thread = threading.Thread(target=self.generate, args=(request,), daemon=True)
            thread.start()
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        return None

    def generate(self, request):
        sender = request.get_response_sender()
        try:
            ids = pb_utils.get_input_tensor_by_name(request, "INPUT_IDS").as_numpy().reshape(-1)
            limit = pb_utils.get_input_tensor_by_name(request, "MAX_TOKENS")
            count = int(limit.as_numpy().reshape(-1)[0]) if limit is not None else self.default_max_tokens
            count = max(1, min(count, 4096))  # perf_analyzer's random MAX_TOKENS may be anything
            time.sleep(self.prefill_s)
            token = int(ids.sum()) % 32000 if ids.size else 0
            for i in range(count):
                if i:
                    time.sleep(self.token_s)
                token = (token * 31 + 7) % 32000
                tensor = pb_utils.Tensor("TOKEN_ID", np.array([token], dtype=np.int32))
                sender.send(pb_utils.InferenceResponse(output_tensors=[tensor]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        except Exception as exc:  # noqa: BLE001 - the client must hear why, not wait forever
            sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def finalize(self):
        for thread in self.threads:
            thread.join(timeout=5)
