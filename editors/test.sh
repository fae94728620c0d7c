#!/usr/bin/env bash
# Tests of the editor support, all headless:
#   vscode       the TextMate grammar (vscode-tmgrammar-test on annotated
#                samples; every example tokenizes with no unscoped or
#                invalid text), the language configuration, the snippets'
#                shape and extension.js
#   tree-sitter  generate, the corpus and highlight tests, and every
#                example parses with no ERROR or MISSING node
#   vim          syntax groups at chosen places (synIDattr), filetype
#                detection and the ftplugin; re-indenting every workflow
#                changes nothing
#   emacs        byte-compiles without warnings; ERT: faces, indentation,
#                comments
#
#   editors/test.sh [vscode|tree-sitter|vim|emacs]...   (default: all)
#
# Needs node and npm, vim, emacs, a C compiler and the tree-sitter CLI
# (`tree-sitter` on PATH, or $TREE_SITTER). A missing tool is a failure,
# never a skip. .ci/run installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "editors/test.sh: '$1' is not installed; $2" >&2
    exit 1
  fi
}

# every workflow in the repository: the examples, the test programs, the
# standard library and the editor sample
guardflow_files() {
  ls "$root"/examples/*.guardflow "$root"/tests/pass/*.guardflow \
    "$root"/tests/pass/lib/*.guardflow "$root"/stdlib/*.guardflow \
    "$root"/editors/test/*.guardflow "$root"/bench/suite/*/task.guardflow
}

test_vscode() {
  need node "install Node.js 18 or later"
  need npm "install npm"
  cd "$root/editors/vscode"
  npm ci --no-audit --no-fund --loglevel=error
  npx --no-install vscode-tmgrammar-test 'test/*.test.guardflow'
  node test/tokenize-all.js $(guardflow_files)
  node test/run.js
}

test_tree_sitter() {
  local ts=${TREE_SITTER:-tree-sitter}
  need "$ts" "cargo install tree-sitter-cli --locked (see docs/editors.md)"
  need cc "install a C compiler (gcc)"
  cd "$root/editors/tree-sitter-guardflow"
  "$ts" generate
  "$ts" test
  # `parse` fails when a file has an ERROR or MISSING node
  "$ts" parse --quiet $(guardflow_files)
  echo "parsed $(guardflow_files | wc -l) files without errors"
  # the other queries compile against the grammar and find what they are for
  local sample=$root/editors/test/sample.guardflow folds definitions
  "$ts" query queries/locals.scm $(guardflow_files) >/dev/null
  "$ts" query queries/folds.scm $(guardflow_files) >/dev/null
  folds=$("$ts" query queries/folds.scm "$sample" | grep -c 'capture: 0 - fold' || true)
  definitions=$("$ts" query queries/locals.scm "$sample" | grep -c 'local.definition' || true)
  if [ "$folds" -lt 10 ] || [ "$definitions" -lt 8 ]; then
    echo "queries: $folds folds, $definitions local definitions in the sample" >&2
    exit 1
  fi
  echo "queries: $folds folds and $definitions local definitions in the sample"
}

test_vim() {
  need vim "apt-get install vim"
  vim -Nu NONE -i NONE -es -S editors/vim/test/syntax.vim -- editors/test/sample.guardflow
  echo "vim: syntax, filetype and ftplugin checks passed"
  vim -Nu NONE -i NONE -es -S editors/vim/test/indent.vim -- $(guardflow_files)
  echo "vim: re-indenting $(guardflow_files | wc -l) files changed nothing"
}

test_emacs() {
  need emacs "apt-get install emacs-nox"
  local out
  out=$(mktemp -d)
  cp editors/emacs/guardflow-mode.el "$out/"
  emacs -Q --batch --eval '(setq byte-compile-error-on-warn t)' \
    -f batch-byte-compile "$out/guardflow-mode.el"
  emacs -Q --batch -L "$out" -l editors/emacs/test/guardflow-mode-test.el \
    -f ert-run-tests-batch-and-exit 2>&1 | grep -v '^Indenting region'
  rm -rf "$out"
}

sections=("$@")
if [ ${#sections[@]} -eq 0 ]; then
  sections=(vscode tree-sitter vim emacs)
fi
for section in "${sections[@]}"; do
  start=$SECONDS
  echo "== editors: $section"
  case $section in
    vscode) (test_vscode) ;;
    tree-sitter) (test_tree_sitter) ;;
    vim) (test_vim) ;;
    emacs) (test_emacs) ;;
    *) echo "editors/test.sh: unknown section '$section'" >&2; exit 2 ;;
  esac
  echo "== editors: $section passed in $((SECONDS - start))s"
done
