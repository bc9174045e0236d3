#!/usr/bin/env bash
# Reproduce the toy world's committed models: the dataset, then the VAE, the UNet on it, the adapter on both.
#   bash examples/toy_world/train.sh [WORK_DIR]      (default: toy-train; models land in WORK_DIR/{unet,adapter}/model)
# Each stage resumes from its newest checkpoint when run again; every stage prints its wall time.
set -euo pipefail
work="${1:-toy-train}"
mkdir -p "$work"
stage() { local name="$1"; shift; local began=$SECONDS; "$@"; echo "$name: $((SECONDS - began)) s" | tee -a "$work/times.txt"; }
[ -f "$work/data/toy.json" ] || stage data motionforge toy make "$work/data" --count 2048
stage vae motionforge train model=vae data.folder="$work/data" out="$work/vae" train.progress=false
stage unet motionforge train model=unet model.vae="$work/vae/model" data.folder="$work/data" out="$work/unet" train.progress=false
stage adapter motionforge train model=adapter model.svd="$work/unet/model" data.folder="$work/data" out="$work/adapter" train.progress=false
echo "models: $work/unet/model (backbone.pretrained) and $work/adapter/model (backbone.mofa)"
