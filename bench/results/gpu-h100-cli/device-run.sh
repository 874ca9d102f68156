#!/bin/bash
# Device-only: install our CLI + deps from carried wheels, unpack Triton 2.51, profile a GPU model end to end.
set -u
R=$(pwd); W=/tmp/w; rm -rf $W; mkdir -p $W/out $W/lib $W/models; O=$W/out
exec > >(tee $OUT/run.log) 2>&1
PY=/opt/torch/.venv/bin/python3
echo "== env $(date -u +%FT%T)"; nvidia-smi -L; $PY -V; uname -r
nvidia-smi --query-gpu=uuid,name,driver_version,memory.total,power.limit --format=csv | tee $O/smi-gpu.csv
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $W/site .device/wheels/*.whl || { echo PIPFAIL; exit 1; }
export PYTHONPATH=$W/site PATH=$W/site/bin:$PATH
ls $W/site/bin
cp .device/libs/libb64.so.0d .device/libs/libcudart.so.12 $W/lib/
$PY -c "import tarfile; tarfile.open('.device/pt.tar.xz').extractall('$W/pt', filter='fully_trusted')" || exit 1
T=$W/pt/pytriton/tritonserver; chmod 755 $T/bin/tritonserver $T/python_backend_stubs/3.12/*
LIBDIR=$($PY -c 'import sysconfig;print(sysconfig.get_config_var("LIBDIR"))'); BASE=$($PY -c 'import sys;print(sys.base_prefix)')
SITE=$($PY -c 'import numpy,os;print(os.path.dirname(os.path.dirname(numpy.__file__)))')
echo "LIBDIR=$LIBDIR BASE=$BASE SITE=$SITE"; ls -la $LIBDIR/libpython3.12* 2>&1; ldconfig -p | grep libpython
if ldconfig -p | grep -q 'libpython3.12.so.1.0' || [ -e $LIBDIR/libpython3.12.so.1.0 ]; then echo "libpython: device's"; export LD_LIBRARY_PATH=$W/lib:$LIBDIR
else
  echo "libpython: carried pyenv 3.12.1 build"
  $PY -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.device/libs/libpython3.12.so.1.0.xz'),open('$W/lib/libpython3.12.so.1.0','wb'))"
  mkdir -p /root/.pyenv/versions/3.12.1/lib; ln -sfn $BASE/lib/python3.12 /root/.pyenv/versions/3.12.1/lib/python3.12
  export LD_LIBRARY_PATH=$W/lib
fi
# the stub imports triton_python_backend_utils (numpy) before model.py: give its isolated sys.path the device's site-packages
sed -i "1i import sys; sys.path[:0] = [p for p in ['$SITE'] if p not in sys.path]" $T/backends/python/triton_python_backend_utils.py
ldd $T/python_backend_stubs/3.12/triton_python_backend_stub | grep -E "python|not found"; ldd $W/site/bin/perf_analyzer | grep -E "not found|b64|cudart"
cp -r examples/models/add_sub $W/models/
mkdir -p $W/models/gpu_matmul/1
cat > $W/models/gpu_matmul/config.pbtxt <<'C'
# Device-only test model: 8 x (4096x4096 @ 4096x4096) bf16 matmuls on the GPU per batch item, 1 GiB held.
name: "gpu_matmul"
backend: "python"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
instance_group [ { count: 1 kind: KIND_GPU gpus: [ 0 ] } ]
C
cat > $W/models/gpu_matmul/1/model.py <<M
import sys
sys.path[:0] = ["$SITE"]
import numpy as np
import torch
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        self.b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        self.hold = torch.ones(1 << 30, dtype=torch.uint8, device="cuda")

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            c = None
            for _ in range(8 * x.shape[0]):
                c = self.a @ self.b
            s = float(c[0, 0].float().cpu())
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", (x + 0.0 * s).astype(np.float32))]))
        return responses
M
nvidia-smi --query-gpu=timestamp,uuid,memory.used,power.draw,utilization.gpu,utilization.memory --format=csv -lms 250 > $O/smi-during.csv 2>&1 &
SMI=$!
cli() { timeout 420 model-analyzer profile --model-folder $W/models --model-names "$1" --batch 1,4 --concurrency 1,2 \
  --measurement-interval 1000 --triton-server-path $T/bin/tritonserver --export --export-path $O/$2; echo "CLI rc=$?"; }
cli gpu_matmul,add_sub results
if grep -q '"load_failed"\|LoadFailed\|load failed' $O/results/analysis.json 2>/dev/null; then
  echo "== retry gpu_matmul with KIND_CPU instance"; sed -i 's/KIND_GPU gpus: \[ 0 \]/KIND_CPU/' $W/models/gpu_matmul/config.pbtxt; cli gpu_matmul results-cpuinst
fi
kill $SMI
ls -la $O $O/*
tar czf $OUT/out.tgz -C $W out
