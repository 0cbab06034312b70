#!/usr/bin/env bash
# One command: set up the environment and run the main job on built-in sample data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/causalspy demo --out "${1:-demo_out}"
