// The Guardflow extension: highlighting, snippets and language
// configuration are declarative (package.json); this file starts the
// language server, `guardflow lsp` over stdio, when the `guardflow`
// binary can be found. Without it the extension still highlights.
'use strict';

const fs = require('fs');
const path = require('path');
const vscode = require('vscode');

let client;

/// The absolute path of `command`: itself when it names a file, else the
/// first executable of that name on `PATH` (`PATHEXT` on Windows); null
/// when there is none.
function findExecutable(command, env) {
  const isFile = (p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (command.includes('/') || command.includes('\\')) {
    return isFile(command) ? path.resolve(command) : null;
  }
  const exts = process.platform === 'win32' ? (env.PATHEXT || '.EXE').split(';') : [''];
  for (const dir of (env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, command + ext);
      if (isFile(candidate)) return candidate;
    }
  }
  return null;
}

async function activate(context) {
  const configured = vscode.workspace.getConfiguration('guardflow').get('path') || 'guardflow';
  const command = findExecutable(configured, process.env);
  if (!command) {
    vscode.window.setStatusBarMessage(
      `Guardflow: '${configured}' not found; highlighting only (no language server).`,
      10000
    );
    return;
  }
  const { LanguageClient, TransportKind } = require('vscode-languageclient/node');
  const server = { command, args: ['lsp'], transport: TransportKind.stdio };
  client = new LanguageClient(
    'guardflow',
    'Guardflow language server',
    { run: server, debug: server },
    { documentSelector: [{ scheme: 'file', language: 'guardflow' }] }
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  await client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate, findExecutable };
