#!/usr/bin/env bash
# The main job: install superneurons and train ResNet-20 on scikit-learn's digits on the
# CPU under a 256 MB memory budget; extra arguments go to `superneurons train`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" ""
exec "$VENV/bin/superneurons" train --model resnet --depth 20 --dataset digits --epochs 3 \
  --batch 64 --budget 256MB "$@"
