// The netc extension: starts `netc lsp` for YAML documents and hands them to it.
// The server itself decides which YAML files are specs (a top-level `netc:` key, the schema
// modeline, or a *.netc.yaml name) and leaves the others alone.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function start() {
  const cfg = vscode.workspace.getConfiguration("netc");
  const options = { checkBudgetMs: cfg.get("checkBudgetMs"), allFiles: cfg.get("allFiles") };
  if (cfg.get("debounceMs") !== null && cfg.get("debounceMs") !== undefined) {
    options.debounceMs = cfg.get("debounceMs");
  }
  const serverOptions = { command: cfg.get("path") || "netc", args: ["lsp"], transport: TransportKind.stdio };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "yaml" }, { scheme: "untitled", language: "yaml" }],
    initializationOptions: options,
    outputChannelName: "netc",
  };
  client = new LanguageClient("netc", "netc", serverOptions, clientOptions);
  return client.start();
}

function activate(context) {
  context.subscriptions.push(vscode.commands.registerCommand("netc.restartServer", async () => {
    if (client) {
      await client.stop();
    }
    await start();
  }));
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration(async (e) => {
    if (e.affectsConfiguration("netc") && client) {
      await client.stop();
      await start();
    }
  }));
  return start().catch((err) => {
    vscode.window.showErrorMessage(
      `netc: could not start \`${vscode.workspace.getConfiguration("netc").get("path")} lsp\` ` +
      `(${err.message}). Install netc with \`pip install 'netc[lsp]'\` or set netc.path.`);
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
