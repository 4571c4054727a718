# Continue the shipped `fashion` network on a GPU in three recipes at once (issue 18, docs/studio.md):
# each trains P1 minutes at a constant rate, then resumes with a warmup-stable-decay cool-down over a
# quarter more steps.  Runs go to /tmp/{A,B,C}; their config.json and model.safetensors to $OUT.
#
#   OUT=results DEV=cuda P1=4.5 bash bench/gpu_fashion.sh
#
# A machine without the Debian Fashion-MNIST package: put its train-*.gz files in $FASHION_GZ.  A machine
# without the text-encoder package: point DIFFUSIO_CACHE at a cache filled elsewhere by a one-step run
# (`diffusio train --data fashion-mnist --init fashion --steps 1 ...`).  DEV=cpu runs the same recipe on CPU.
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
DEV=${DEV:-cuda}; P1=${P1:-4.5}; PY=${PY:-python3}; THREADS=${THREADS:-4}
: "${OUT:?set OUT to a folder for the results}"; mkdir -p "$OUT"
LOG=$OUT/log.txt
mkdir -p /usr/share/datasets/fashion-mnist
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || cp "${FASHION_GZ:?no Fashion-MNIST here: set FASHION_GZ to a folder holding its train-*.gz files}"/train-*.gz /usr/share/datasets/fashion-mnist/
{ date -u; nproc; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } > $LOG 2>&1

# name launcher batch lr
RUNS="A:dist:64:5e-4 B:plain:256:1e-3 C:plain:512:1e-3"
common() { echo "--data fashion-mnist --init fashion --seed 1 --every 1000000 --threads $THREADS --device $DEV"; }
launch() {  # name launcher batch lr extra...
  local name=$1 how=$2 batch=$3 lr=$4; shift 4
  if [ "$how" = dist ]; then set -- $PY -m torch.distributed.run --standalone --nproc_per_node=1 -m diffusio train "$@"
  else set -- $PY -m diffusio train "$@"; fi
  "$@" --out /tmp/$name --batch-size $batch --lr $lr $(common)
}
phase1() { local n how b lr; IFS=: read -r n how b lr <<< "$1"; launch $n $how $b $lr --steps 1000000 --minutes $P1 > /tmp/$n.p1.log 2>&1; }
phase2() {
  local n how b lr s1; IFS=: read -r n how b lr <<< "$1"
  s1=$($PY -c "import json; print(json.load(open('/tmp/$n/train_state.json'))['step'])") || return 1
  launch $n $how $b $lr --steps $(( s1 * 5 / 4 )) --cooldown 0.2 --resume > /tmp/$n.p2.log 2>&1
}
pids=""
for r in $RUNS; do ( phase1 $r && phase2 $r; echo "${r%%:*} exit $?" >> /tmp/status ) & pids="$pids $!"; done

# fail fast: a run that dies in its first minute is a bug, and the lease is short
sleep ${CHECK:-75}
for r in $RUNS; do n=${r%%:*}
  if ! grep -q "step/s\|s/step" /tmp/$n.p1.log 2>/dev/null; then
    echo "== $n has not started stepping" >> $LOG; tail -c 3000 /tmp/$n.p1.log >> $LOG; cat /tmp/status >> $LOG 2>/dev/null
    cat $LOG; exit 1; fi
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv >> $LOG 2>&1
wait $pids
cat /tmp/status >> $LOG
for r in $RUNS; do n=${r%%:*}
  mkdir -p $OUT/$n; cp /tmp/$n/config.json /tmp/$n/model.safetensors $OUT/$n/ 2>>$LOG
  for p in p1 p2; do echo "== $n $p" >> $LOG; tr '\r' '\n' < /tmp/$n.$p.log | grep -v '^\s*$' | tail -4 >> $LOG; done
  $PY -c "import json; c = json.load(open('/tmp/$n/config.json'))['training']; print('$n', c['steps_done'], c['wall_seconds'], c['batch_size'], c['lr'], c['device'])" >> $LOG
done
cat $LOG
