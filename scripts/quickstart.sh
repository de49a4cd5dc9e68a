#!/usr/bin/env bash
# Quick start: install dependencies, build, and run moescope on the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
export OMP_WAIT_POLICY=PASSIVE
bin=build/cli/moescope
echo "== moescope info (bundled model)"
$bin info
echo "== moescope generate"
$bin generate --prompt "This program is free software" --max-new-tokens 24
echo "== moescope score"
$bin score --text "Permission is hereby granted, free of charge, to any person obtaining a copy"
