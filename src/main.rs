//! The `v8box` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use v8box::{loader, Worker};

#[derive(Parser)]
#[command(
    name = "v8box",
    version,
    about = "An auditable JavaScript sandbox on V8"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a script: an ES module, or a classic script with --script.
    Run {
        /// Run FILE as a classic script instead of an ES module.
        #[arg(long)]
        script: bool,
        /// The script to run.
        file: PathBuf,
        /// Arguments passed to the script.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(
                e.kind(),
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // One line: clap's first line already says what was wrong.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            return usage_error(first.trim_start_matches("error: "));
        }
    };
    match cli.command {
        Command::Run {
            script,
            file,
            args: _,
        } => run(&file, script),
    }
}

fn run(file: &std::path::Path, classic: bool) -> ExitCode {
    let source = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => return usage_error(format!("cannot read {}: {e}", file.display())),
    };
    let name = file.to_string_lossy().into_owned();
    let mut worker = Worker::new(|_| None);
    let result = if classic {
        worker.load(&name, &source)
    } else {
        worker
            .load_module(&name, &source, loader::file_resolver)
            .and_then(|()| match worker.poll_modules()? {
                false => Ok(()),
                true => Err(v8box::JsError {
                    script: Some(name.clone()),
                    ..v8box::JsError::plain_message(
                        "top-level await never settled: nothing left to wait for",
                    )
                }),
            })
    };
    let result = result.and_then(|()| match worker.take_unhandled_rejection() {
        Some(e) => Err(e),
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
