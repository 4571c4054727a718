#!/usr/bin/env bash
# Debian packages the tests need: Fashion-MNIST (real data for loaders, classifier and evaluation).
set -euo pipefail
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist
fi
