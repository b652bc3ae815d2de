#!/bin/sh
# Download and unpack the BAIR robot pushing dataset (about 30 GB) into TARGETDIR.
# Usage: sh data/bair/download_bair.sh TARGETDIR
# Afterwards: python data/bair/convert_bair.py --data_dir TARGETDIR --output_dir <bair root>
set -eu

if [ "$#" -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "usage: sh data/bair/download_bair.sh TARGETDIR" >&2
    exit 1
fi
TARGET_DIR=$1
URL=http://rail.eecs.berkeley.edu/datasets/bair_robot_pushing_dataset_v0.tar
TAR="$TARGET_DIR/bair_robot_pushing_dataset_v0.tar"

mkdir -p "$TARGET_DIR"
if command -v wget >/dev/null 2>&1; then
    wget --continue --output-document="$TAR" "$URL"
elif command -v curl >/dev/null 2>&1; then
    curl --location --fail --continue-at - --output "$TAR" "$URL"
else
    echo "error: neither wget nor curl is installed" >&2
    exit 1
fi
tar -xf "$TAR" -C "$TARGET_DIR"
rm -f "$TAR"
echo "BAIR records unpacked to $TARGET_DIR/softmotion30_44k/{train,test}"
