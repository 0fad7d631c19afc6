#!/usr/bin/env bash
# A GPU session's one prepared run: the CUDA tests, then the speed rows, each stage under its own time limit, in the
# order they matter, each writing its own file into OUTDIR (what finished comes back even if a later stage does not).
#
#   bash benchmarks/gpu_check.sh OUTDIR        # on a CUDA machine, from the repository root
#   STAGES="tests train" bash benchmarks/gpu_check.sh OUTDIR        # only the stages named
#
# Stages, in this order: tests (tests/test_cuda.py: CUDA against the CPU); generate (bench_train_generate.py --device
# cuda: 100,000 x 2,000, the CPU target's size); scale_generate_big (gpu_scale.py: 200,000 x 2,000 in batches of
# 65,536); train (bench_train_generate.py: default training on 2,500 x 1,000); scale_train (one epoch of each stage
# at 50,000 x 2,000); scale_generate (200,000 x 2,000 in generate's default batches of 4,096); scale_privacy
# (200,000 x 200,000 x 2,000). Each generate stage trains its model first, inside its
# limit (on 2026-12-04 limits of 40 and 100 s ran out; the split is unknown). At their limits all stages take 870 s:
# with 15 minutes of device time, a machine's start included, name a subset in STAGES. Results: BENCHMARKS.md,
# "On a GPU".
set -u
out=${1:?usage: gpu_check.sh OUTDIR}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
stage() {  # stage NAME LOG SECONDS COMMAND...: run, append to OUTDIR/LOG.txt, note the time and exit status
    local name=$1 log=$2 limit=$3 t0=$SECONDS
    shift 3
    [[ -z ${STAGES:-} || " $STAGES " == *" $name "* ]] || return 0
    echo "## $name: $*" >>"$out/$log.txt"
    timeout "$limit" "$@" >>"$out/$log.txt" 2>&1
    echo "$name: exit $? in $((SECONDS - t0)) s (limit $limit s)" | tee -a "$out/stages.txt"
}
{ nvidia-smi -L; nproc; "$py" -c "import sys, torch; print(sys.version.split()[0], torch.__version__, \
torch.cuda.get_device_name(0))"; } >>"$out/stages.txt" 2>&1
stage tests tests 120 "$py" -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py
stage generate speed 200 "$py" benchmarks/bench_train_generate.py --device cuda --only generate --repeats 1 --threads 4
stage scale_generate_big scale 150 "$py" benchmarks/gpu_scale.py --stages generate --n-generate 200000 \
    --batch-size 65536
stage train speed 150 "$py" benchmarks/bench_train_generate.py --device cuda --only train --threads 4
stage scale_train scale 50 "$py" benchmarks/gpu_scale.py --stages train --n-train 50000
stage scale_generate scale 150 "$py" benchmarks/gpu_scale.py --stages generate --n-generate 200000
stage scale_privacy scale 50 "$py" benchmarks/gpu_scale.py --stages privacy --n-privacy 200000
