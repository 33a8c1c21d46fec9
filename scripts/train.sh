#!/usr/bin/env bash
# The main job: install superneurons and train ResNet-20 on scikit-learn's digits under a
# 256 MB memory budget, on the GPU where the build and the machine have one, else on the
# CPU (--device auto); extra arguments go to `superneurons train`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" ""
exec "$VENV/bin/superneurons" train --model resnet --depth 20 --dataset digits --epochs 3 \
  --batch 64 --budget 256MB --device auto "$@"
