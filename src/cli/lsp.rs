//! `guardflow lsp`: the language server, over stdin and stdout.

use super::{EXIT_FINDINGS, EXIT_OK};

/// Run the language server on stdin/stdout (for editors)
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow lsp                  started by an editor, which talks to it on stdin/stdout\n  nvim: vim.lsp.config(\"guardflow\", { cmd = { \"guardflow\", \"lsp\" } })\n\nSpeaks the Language Server Protocol on standard input and output: diagnostics\nas you type, hover, go to definition, find references, completion, document\nsymbols and formatting. Editors start it; see docs/lsp.md.\n\nExit status: 0 after `shutdown` and `exit`, 1 on a protocol error or `exit`\nwithout `shutdown`."
)]
pub struct Args {}

pub fn run(_args: Args) -> u8 {
    match crate::lsp::serve_stdio() {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: guardflow lsp: {e}");
            EXIT_FINDINGS
        }
    }
}
