#!/usr/bin/env bash
# Reproduces the bundled demo model end to end on the CPU with the project's own training commands:
# stage 1 (video VAE-GAN), the conditioning AE, the cINN; then copies the released-layout files into
# models/demo/{stage1,stage2_AE,stage2}. Data: the 12 real sky time-lapse clips in
# assets/GT_samples/landscape/transfer; sample11 and sample12 are held out (eval/test).
# Usage: bash models/demo/train_demo.sh [-gpu -1]
set -euo pipefail
cd "$(dirname "$0")/../.."
GPU=("${@:--gpu}"); [ "$#" -eq 0 ] && GPU=(-gpu -1)
export WANDB_MODE=disabled
start=$(date +%s)
python -m models.demo.prepare_data --out runs/demo/data
python -m stage1_VAE.main -cf models/demo/configs/stage1.yaml "${GPU[@]}" Training.overwrite=True
t1=$(date +%s)
python -m stage2_cINN.AE.main -cf models/demo/configs/stage2_AE.yaml "${GPU[@]}" Training.overwrite=True
t2=$(date +%s)
python -m stage2_cINN.main -cf models/demo/configs/stage2.yaml "${GPU[@]}" Training.overwrite=True
t3=$(date +%s)
python -m models.demo.prepare_data --export runs/demo --to models/demo
echo "demo trained in $((t3 - start)) s (stage 1 $((t1 - start)) s, AE $((t2 - t1)) s, cINN $((t3 - t2)) s)"
