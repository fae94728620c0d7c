#!/usr/bin/env bash
# Builds editors/vscode/guardflow-<version>.vsix with vsce. Not run in CI:
# it downloads @vscode/vsce from npm. Install the result with
#   code --install-extension editors/vscode/guardflow-*.vsix
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npx --yes @vscode/vsce@3 package --skip-license --allow-missing-repository "$@"
