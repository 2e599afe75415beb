#!/usr/bin/env bash
# Every CUDA check and benchmark of vitcore in one command, sized for a short lease of one GPU
# (an H100/H200 machine whose Python already has torch, torchvision, timm and most of our
# dependencies, but no network).
#
#   bash benchmarks/gpu_session.sh prepare   # here, with network or a local index: wheels the GPU
#                                            # machine lacks (pydantic), into .whl/ (git-ignored)
#   bash benchmarks/gpu_session.sh           # there, from the repository root, .whl/ copied along;
#                                            # writes every result under $OUT (default /tmp/vitcore-gpu)
#
# Each step has its own time limit and writes its output as it goes, so a lease that ends early
# still returns what finished. Record the figures in benchmarks/RESULTS.md with nvidia-smi.txt.
set -u

if [ "${1:-}" = "prepare" ]; then
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
    mkdir -p .whl
    # The versions this checkout's environment resolved, as wheels for the GPU machine's Python 3.12.
    python=${PYTHON:-.venv/bin/python}
    for name in pydantic pydantic_core annotated-types typing-inspection; do
        version=$("$python" -m pip show "$name" | awk '/^Version/ {print $2}')
        python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d .whl "$name==$version" || exit 1
    done
    ls .whl
    exit 0
fi

OUT=${OUT:-/tmp/vitcore-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ! nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1; then
    echo "no NVIDIA GPU here: these checks are for a CUDA machine" >&2
    exit 2
fi
if ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
# The core registers its built-ins itself; the model plugins need their entry points installed.
timeout 60 python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . -e plugins/vit_timm -e plugins/vit_hf \
    > "$OUT/install.log" 2>&1 || export PYTHONPATH=$PWD:${PYTHONPATH:-}
python3 -c "import torch, torchvision, vitcore; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name())" \
    | tee "$OUT/versions.txt"

step() {  # step NAME SECONDS COMMAND...: run with a limit, output to $OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit}s)"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "   exit $? after ${SECONDS}s in all"
}

# In the order of what the targets need most, each boxed so the whole fits one 600 s
# command with room for the install: the ViT-B/16 MFU figure first, then whether real data keeps
# it fed, then the CUDA tests, then the smaller models. Each benchmark streams one JSON line per
# model or mode to its log as it finishes, so a step cut short keeps what it measured.
step train_step_vit_b16 170 python3 benchmarks/train_step.py --model vit_b16 --batch auto --precision bf16 --compile \
    --steps 20 --repeats 3
step input_pipeline 150 python3 benchmarks/input_pipeline.py --model vit_b16 --images 4096 --batch 256 --workers 12 \
    --precision bf16 --compile --decode all --augment all
step cuda_tests 100 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_path.py tests/test_auto_batch_size.py \
    tests/test_device_augment.py tests/test_decoding.py tests/test_hot_loop_sync.py
step train_step_vit_s16_ti16 120 python3 benchmarks/train_step.py --model vit_s16,vit_ti16 --batch auto --precision bf16 \
    --compile --steps 20 --repeats 3
tail -n 4 "$OUT"/*.log
