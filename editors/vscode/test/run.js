// Headless checks of the extension's declarative parts and of
// extension.js (with a stand-in for the `vscode` module, which exists only
// inside VS Code). The TextMate grammar has its own tests:
// test/syntax.test.guardflow (vscode-tmgrammar-test) and tokenize-all.js.
'use strict';

const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Module = require('module');

const root = path.join(__dirname, '..');
const read = (p) => JSON.parse(fs.readFileSync(path.join(root, p), 'utf8'));
let failures = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures++;
    console.error(`FAIL ${name}\n${e.stack}`);
  }
}

(async () => {
  const pkg = read('package.json');

  await check('package.json contributes files that exist', () => {
    const c = pkg.contributes;
    assert.deepStrictEqual(c.languages[0].extensions, ['.guardflow']);
    const grammar = c.grammars[0];
    assert.strictEqual(read(grammar.path).scopeName, grammar.scopeName);
    read(c.languages[0].configuration);
    read(c.snippets[0].path);
    assert.ok(fs.existsSync(path.join(root, pkg.main)));
  });

  await check('indentation rules indent after openers, dedent closers', () => {
    const rules = read('language-configuration.json').indentationRules;
    const inc = new RegExp(rules.increaseIndentPattern);
    const dec = new RegExp(rules.decreaseIndentPattern);
    for (const line of [
      'action fix(code: Source) -> Source {',
      '  method small {',
      '    :subtasks (',
      'guard fixed(tests: Source) on Source =',
      'type Plan = {  // a record',
    ]) {
      assert.ok(inc.test(line), `should indent after: ${line}`);
    }
    for (const line of ['  :retry 2', '// a comment {', '  :guard a && b', '}']) {
      assert.ok(!inc.test(line), `should not indent after: ${line}`);
    }
    for (const line of ['}', '  }', '    )', ']']) {
      assert.ok(dec.test(line), `should dedent: ${line}`);
    }
    assert.ok(!dec.test('  :retry 2'));
  });

  await check('word pattern takes properties, names and durations whole', () => {
    const word = new RegExp(read('language-configuration.json').wordPattern, 'g');
    const words = '  :max-tokens 2_000 :timeout 60s write_tests'.match(word);
    assert.deepStrictEqual(words, [':max-tokens', '2_000', ':timeout', '60s', 'write_tests']);
  });

  await check('snippets have a prefix, a body and a description', () => {
    const snippets = read('snippets/guardflow.json');
    assert.deepStrictEqual(Object.keys(snippets).sort(), ['action', 'generator', 'method', 'task']);
    for (const [name, s] of Object.entries(snippets)) {
      assert.strictEqual(s.prefix, name);
      assert.ok(Array.isArray(s.body) && s.body.length > 0);
      assert.ok(s.description);
    }
  });

  // extension.js against stand-ins for `vscode` and the language client
  const started = [];
  let statusMessage = null;
  let configuredPath = 'guardflow';
  class FakeClient {
    constructor(id, name, serverOptions, clientOptions) {
      Object.assign(this, { id, name, serverOptions, clientOptions, running: false });
      started.push(this);
    }
    async start() {
      this.running = true;
    }
    async stop() {
      this.running = false;
    }
  }
  const fakes = {
    vscode: {
      workspace: { getConfiguration: () => ({ get: () => configuredPath }) },
      window: { setStatusBarMessage: (m) => (statusMessage = m) },
    },
    'vscode-languageclient/node': { LanguageClient: FakeClient, TransportKind: { stdio: 0 } },
  };
  const load = Module._load;
  Module._load = function (request, ...rest) {
    return request in fakes ? fakes[request] : load.call(this, request, ...rest);
  };
  const extension = require('../extension.js');
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'guardflow-vscode-'));
  const fakeBinary = path.join(bin, 'guardflow');
  fs.writeFileSync(fakeBinary, '#!/bin/sh\n', { mode: 0o755 });
  const savedPath = process.env.PATH;

  await check('with guardflow on PATH, starts `guardflow lsp` over stdio', async () => {
    process.env.PATH = ['/nonexistent', bin].join(path.delimiter);
    const context = { subscriptions: [] };
    await extension.activate(context);
    assert.strictEqual(started.length, 1);
    const client = started[0];
    assert.deepStrictEqual(client.serverOptions.run, { command: fakeBinary, args: ['lsp'], transport: 0 });
    assert.deepStrictEqual(client.clientOptions.documentSelector, [{ scheme: 'file', language: 'guardflow' }]);
    assert.ok(client.running);
    await extension.deactivate();
    assert.ok(!client.running);
  });

  await check('without guardflow on PATH, highlights only and says so', async () => {
    process.env.PATH = '/nonexistent';
    await extension.activate({ subscriptions: [] });
    assert.strictEqual(started.length, 1);
    assert.match(statusMessage, /'guardflow' not found/);
  });

  await check('guardflow.path names the binary; a non-executable file is not one', async () => {
    process.env.PATH = '/nonexistent';
    configuredPath = fakeBinary;
    await extension.activate({ subscriptions: [] });
    assert.strictEqual(started.length, 2);
    assert.strictEqual(started[1].serverOptions.run.command, fakeBinary);
    fs.chmodSync(fakeBinary, 0o644);
    assert.strictEqual(extension.findExecutable(fakeBinary, process.env), null);
    assert.strictEqual(extension.findExecutable('guardflow', { PATH: bin }), null);
  });

  process.env.PATH = savedPath;
  Module._load = load;
  fs.rmSync(bin, { recursive: true, force: true });
  if (failures > 0) {
    console.error(`${failures} check(s) failed`);
    process.exit(1);
  }
})();
