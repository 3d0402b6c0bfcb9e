# Sourced by the GPU scripts: make `python3 -m raptor` work on a lent GPU machine that has torch but not this
# package (no pip access there): import raptor from this checkout, with the wheels in .dev/whl (gymnasium) and the
# published checkpoint in .dev/foundation_policy when present. Filled on a machine with pip access, for its Python:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .dev/whl gymnasium==1.4.0 \
#       farama-notifications==0.0.4 importlib_resources==7.1.0 h5py==3.12.1
#   cp -r "$(python3 -c 'import foundation_policy, os; print(os.path.dirname(foundation_policy.__file__))')" .dev/
if [ -n "${FORCE_SETUP:-}" ] || ! python3 -c "import raptor.rl.train" 2>/dev/null; then
  echo "setting up raptor from the checkout in /tmp/raptor-pkg"
  rm -rf /tmp/raptor-pkg && mkdir -p /tmp/raptor-pkg/site
  if ls .dev/whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/raptor-pkg/site .dev/whl/*.whl || exit 2
  fi
  [ -d .dev/foundation_policy ] && cp -r .dev/foundation_policy /tmp/raptor-pkg/site/
  cp -r core /tmp/raptor-pkg/raptor
  for s in sim rl distill policy_export hil firmware; do ln -sfn "$PWD/$s" "/tmp/raptor-pkg/raptor/$s"; done
  export PYTHONPATH=/tmp/raptor-pkg:/tmp/raptor-pkg/site
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 2
python3 - <<'PY'
from raptor.rl.teacher import load_official
print("published policy:", "loaded" if load_official("cpu")[0] is not None else "MISSING (see the reason above)")
PY
