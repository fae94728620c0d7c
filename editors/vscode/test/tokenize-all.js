// Tokenizes guardflow files with the extension's TextMate grammar, through
// the same engine VS Code uses (vscode-textmate + vscode-oniguruma), and
// fails when any non-blank text gets no scope beyond `source.guardflow` or
// an `invalid.*` scope.
//
//   node test/tokenize-all.js FILE...
'use strict';

const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const GRAMMAR = path.join(__dirname, '..', 'syntaxes', 'guardflow.tmLanguage.json');

async function loadGrammar() {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === 'source.guardflow'
        ? vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR, 'utf8'), GRAMMAR)
        : null,
  });
  return registry.loadGrammar('source.guardflow');
}

/// Problems in one file, as `file:line:col: message` strings.
function problems(grammar, file) {
  const out = [];
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  let state = vsctm.INITIAL;
  lines.forEach((line, i) => {
    const result = grammar.tokenizeLine(line, state);
    for (const token of result.tokens) {
      const text = line.slice(token.startIndex, token.endIndex);
      const where = `${file}:${i + 1}:${token.startIndex + 1}`;
      const bad = token.scopes.find((s) => s.startsWith('invalid.'));
      if (bad) {
        out.push(`${where}: ${JSON.stringify(text)} is ${bad}`);
      } else if (token.scopes.length === 1 && text.trim() !== '') {
        out.push(`${where}: ${JSON.stringify(text)} has no scope`);
      }
    }
    state = result.ruleStack;
  });
  return out;
}

module.exports = { loadGrammar, problems };

if (require.main === module) {
  (async () => {
    const files = process.argv.slice(2);
    if (files.length === 0) {
      console.error('usage: node test/tokenize-all.js FILE...');
      process.exit(2);
    }
    const grammar = await loadGrammar();
    const found = files.flatMap((f) => problems(grammar, f));
    found.forEach((p) => console.error(p));
    console.log(`tokenized ${files.length} files: ${found.length} problems`);
    process.exit(found.length === 0 ? 0 : 1);
  })().catch((e) => {
    console.error(e);
    process.exit(2);
  });
}
