"""llm_stream: a stand-in LLM with the vLLM backend's interface that sleeps known delays (see config.pbtxt).

Requests are served on threads, as an LLM server batches them in flight: one slow prompt does not hold back
the others. With MAX_IN_FLIGHT set, requests beyond it wait for a slot, so time to first token grows with load
past that point, as it does on a real server whose KV cache is full."""

import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils

WORDS = ("the", "model", "streams", "one", "token", "at", "a", "time", "until", "done")


class TritonPythonModel:
    def initialize(self, args):
        params = {k: v["string_value"] for k, v in json.loads(args["model_config"]).get("parameters", {}).items()}
        self.prefill_s = float(params.get("PREFILL_MS", "5")) / 1000
        self.prefill_per_word_s = float(params.get("PREFILL_MS_PER_WORD", "0")) / 1000
        self.token_s = float(params.get("TOKEN_MS", "2")) / 1000
        self.default_max_tokens = int(params.get("DEFAULT_MAX_TOKENS", "16"))
        in_flight = int(params.get("MAX_IN_FLIGHT", "0"))
        self.slots = threading.Semaphore(in_flight) if in_flight > 0 else None
        self.threads = []

    def execute(self, requests):
        for request in requests:
            thread = threading.Thread(target=self.generate, args=(request,), daemon=True)
            thread.start()
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        return None

    def generate(self, request):
        if self.slots is None:
            self._generate(request)
            return
        with self.slots:
            self._generate(request)

    def _generate(self, request):
        sender = request.get_response_sender()
        try:
            prompt = _text(pb_utils.get_input_tensor_by_name(request, "text_input"))
            stream_tensor = pb_utils.get_input_tensor_by_name(request, "stream")
            stream = bool(stream_tensor.as_numpy().reshape(-1)[0]) if stream_tensor is not None else False
            max_tokens = self.default_max_tokens
            sampling = pb_utils.get_input_tensor_by_name(request, "sampling_parameters")
            if sampling is not None:
                try:
                    max_tokens = int(json.loads(_text(sampling)).get("max_tokens", max_tokens))
                except (ValueError, AttributeError):
                    pass  # perf_analyzer's random strings are no JSON: the default length
            time.sleep(self.prefill_s + self.prefill_per_word_s * len(prompt.split()))
            tokens = []
            for i in range(max_tokens):
                if i:
                    time.sleep(self.token_s)
                tokens.append(WORDS[i % len(WORDS)] + " ")
                if stream:
                    sender.send(_response(tokens[-1]))
            if not stream:
                sender.send(_response("".join(tokens)))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        except Exception as exc:  # noqa: BLE001 - the client must hear why, not wait forever
            sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def finalize(self):
        for thread in self.threads:
            thread.join(timeout=5)


def _text(tensor):
    value = tensor.as_numpy().reshape(-1)[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _response(text):
    return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("text_output", np.array([text], dtype=object))])
