"""pipeline_bls: RAW -> preprocess -> classify -> SCORES, each step a request to Triton (Business Logic Scripting)."""

import triton_python_backend_utils as pb_utils


def _call(model, name, tensor, output):
    request = pb_utils.InferenceRequest(model_name=model, requested_output_names=[output],
                                        inputs=[pb_utils.Tensor(name, tensor.as_numpy())])
    response = request.exec()
    if response.has_error():
        raise pb_utils.TritonModelException(response.error().message())
    return pb_utils.get_output_tensor_by_name(response, output)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "RAW")
            features = _call("preprocess", "RAW", raw, "FEATURES")
            scores = _call("classify", "FEATURES", features, "SCORES")
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("SCORES", scores.as_numpy())]))
        return responses
