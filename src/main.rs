//! The `v8box` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use v8box::audit::AuditLog;
use v8box::policy::{Flags, Policy};
use v8box::{loader, Exit, Main, RunOptions};

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
    Run(RunArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Run FILE as a classic script instead of an ES module.
    #[arg(long)]
    script: bool,
    /// Stop the script after this many milliseconds (exit code 3).
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// Stop the script when its heap reaches this many MiB (exit code 4).
    #[arg(long, value_name = "MB")]
    max_heap: Option<u64>,
    /// A TOML policy file (see docs/POLICY.md); the --allow-* flags add to it.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Write the audit log (JSON lines) to FILE, continuing its hash chain if it exists.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Allow reading these paths (all paths without a value).
    #[arg(long, value_name = "PATHS", num_args = 0..=1, require_equals = true, value_delimiter = ',')]
    allow_read: Option<Vec<String>>,
    /// Allow writing these paths (all paths without a value).
    #[arg(long, value_name = "PATHS", num_args = 0..=1, require_equals = true, value_delimiter = ',')]
    allow_write: Option<Vec<String>>,
    /// Allow fetching from these HOST[:PORT]s (all hosts without a value).
    #[arg(long, value_name = "HOSTS", num_args = 0..=1, require_equals = true, value_delimiter = ',')]
    allow_net: Option<Vec<String>>,
    /// Allow reading these environment variables (all without a value).
    #[arg(long, value_name = "NAMES", num_args = 0..=1, require_equals = true, value_delimiter = ',')]
    allow_env: Option<Vec<String>>,
    /// Allow these host channels (all without a value).
    #[arg(long, value_name = "CHANNELS", num_args = 0..=1, require_equals = true, value_delimiter = ',')]
    allow_host: Option<Vec<String>>,
    /// The script to run.
    file: PathBuf,
    /// Arguments passed to the script (`sys.args`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
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
        Command::Run(args) => run(args),
    }
}

fn build_policy(args: &RunArgs) -> Result<Policy, String> {
    let mut policy = match &args.policy {
        Some(path) => Policy::from_file(path).map_err(|e| e.to_string())?,
        None => Policy::deny_all(),
    };
    let flags = Flags {
        read: args.allow_read.clone(),
        write: args.allow_write.clone(),
        net: args.allow_net.clone(),
        env: args.allow_env.clone(),
        host: args.allow_host.clone(),
    };
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    policy.add_flags(&flags, &cwd).map_err(|e| e.to_string())?;
    if let Some(ms) = args.timeout {
        policy.limits.timeout_ms = Some(ms);
    }
    if let Some(mb) = args.max_heap {
        policy.limits.max_heap_mb = Some(mb);
    }
    Ok(policy)
}

fn run(args: RunArgs) -> ExitCode {
    let policy = match build_policy(&args) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    let source = match std::fs::read_to_string(&args.file) {
        Ok(s) => s,
        Err(e) => return usage_error(format!("cannot read {}: {e}", args.file.display())),
    };
    let audit = match &args.audit {
        Some(path) => match AuditLog::open(path, "main") {
            Ok(a) => a,
            Err(e) => return usage_error(format!("cannot open audit log {}: {e}", path.display())),
        },
        None => AuditLog::disabled(),
    };
    let name = args.file.to_string_lossy().into_owned();
    let main = if args.script {
        Main::Script { name, source }
    } else {
        Main::Module {
            name,
            source,
            resolve: Box::new(loader::file_resolver),
        }
    };
    let mut options = RunOptions::new(policy);
    options.args = args.args;
    options.audit = audit;
    let exit = v8box::run(main, options);
    report(&exit, &args.file);
    ExitCode::from(exit.code().clamp(0, 255) as u8)
}

fn report(exit: &Exit, file: &Path) {
    match exit {
        Exit::Ok | Exit::Code(_) => {}
        Exit::Error(e) => eprintln!("error: {e}"),
        Exit::Timeout => eprintln!("error: {}: timed out (the --timeout / [limits] timeout_ms limit ran out)", file.display()),
        Exit::HeapLimit => eprintln!(
            "error: {}: stopped at the heap limit (--max-heap / [limits] max_heap_mb): the script allocated too much memory",
            file.display()
        ),
        Exit::Terminated => eprintln!("error: {}: terminated", file.display()),
    }
}
