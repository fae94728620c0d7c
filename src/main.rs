//! The `guardflow` command: parses arguments and hands over to `cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    guardflow::cli::main()
}
