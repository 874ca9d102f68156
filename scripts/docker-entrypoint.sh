#!/bin/sh
# The image's entrypoint. The original tool's procedure passes only flags:
#   docker run -v /var/run/docker.sock:/var/run/docker.sock --net=host IMAGE --batch 1,4,8 --model-names a ...
# and those go to `model-analyzer`, which starts Triton's container next to this one through the socket
# (MODEL_ANALYZER_TRITON_LAUNCH_MODE=docker: the image holds no tritonserver). Anything else is a command and
# runs as given (`IMAGE kopf run ...`, `IMAGE model-analyzer perf-point ...`); pods set `command:`, which
# replaces this entrypoint altogether.
case "${1:-}" in
  -*) exec model-analyzer "$@" ;;
esac
exec "$@"
