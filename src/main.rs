//! The `v8box` command line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use v8box::audit::{escaped, AuditLog};
use v8box::policy::{Flags, Limits, NotReplayed, Policy};
use v8box::{Exit, Imports, Isolation, Main, RunOptions};

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
    /// Read audit logs: verify their hash chain, show them as a table.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check, explain and test policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the log's JSON, hash chain and seq order, and that it is whole (every run has its
    /// run_end, every intent its outcome): `ok: N records` (exit 0), or the first bad line and
    /// why, or each missing end (exit 1).
    Verify {
        /// The audit log.
        file: PathBuf,
        /// The verification key (audit.pub from `audit keygen`): also check every checkpoint's
        /// signature, and fail on records that no checkpoint seals.
        #[arg(long, value_name = "PUBLIC")]
        key: Option<PathBuf>,
    },
    /// Make a key pair to seal a log with: DIR/audit.key (the secret, for `run --audit-key`)
    /// and DIR/audit.pub (for `audit verify --key`). One key pair seals one log.
    Keygen {
        /// The folder to write the two files in (made if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Print the log as a table (after verifying it: a log that does not verify is said so).
    Show {
        /// The audit log.
        file: PathBuf,
        /// Verify the seal with this verification key (audit.pub) first.
        #[arg(long, value_name = "PUBLIC")]
        key: Option<PathBuf>,
        /// Only denied calls.
        #[arg(long)]
        denied: bool,
        /// Only this operation (e.g. fs.readFile).
        #[arg(long, value_name = "OP")]
        op: Option<String>,
        /// Show resources, rules and outcomes in full.
        #[arg(long)]
        wide: bool,
        /// Print the (filtered) records as JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file and print it normalized (exit 1 with line and column if invalid).
    Check {
        /// The policy file.
        policy: PathBuf,
    },
    /// Replay every call of an audit log against POLICY and print each decision that would
    /// change (exit 1 if any does). The log is verified first (exit 1 if it does not hold).
    Test {
        /// The policy file to test.
        policy: PathBuf,
        /// The recorded run (an audit log).
        #[arg(long, value_name = "FILE")]
        audit: PathBuf,
        /// Verify the log's seal with this verification key (audit.pub) first.
        #[arg(long, value_name = "PUBLIC")]
        key: Option<PathBuf>,
    },
    /// Print a TOML policy that allows exactly what the recorded runs asked for (allowed and
    /// denied calls alike), a comment per grant naming its records, quotas a margin above
    /// what a run used. The log is verified first.
    Suggest {
        /// The recorded runs (an audit log).
        #[arg(long, value_name = "FILE")]
        audit: PathBuf,
        /// Only the run whose run_start record has this seq.
        #[arg(long, value_name = "N")]
        run: Option<u64>,
        /// Verify the log's seal with this verification key (audit.pub) first.
        #[arg(long, value_name = "PUBLIC")]
        key: Option<PathBuf>,
    },
    /// Print the decision on OP RESOURCE and the rule that makes it.
    Explain {
        /// The policy file.
        policy: PathBuf,
        /// An operation (fs.readFile, net.fetch, env.get, stdin.read, ...) or read, write, net,
        /// env, host, module, stdin.
        op: String,
        /// A path, URL or HOST[:PORT], variable name or channel (`stdin` for stdin).
        resource: String,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Run FILE as a classic script instead of an ES module.
    #[arg(long)]
    script: bool,
    /// Stop the script after this many milliseconds (exit code 3).
    #[arg(long, value_name = "MS", value_parser = |v: &str| parse_limit(v, Limits::check_timeout_ms))]
    timeout: Option<u64>,
    /// Stop the script when the memory it caused (heap, buffers, WebAssembly memories) reaches
    /// this many MiB, 1 to 4096 (exit code 4).
    #[arg(long, value_name = "MB", value_parser = |v: &str| parse_limit(v, Limits::check_max_heap_mb))]
    max_heap: Option<u64>,
    /// A TOML policy file (see docs/POLICY.md); the --allow-* flags add to it.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Write the audit log (JSON lines) to FILE, continuing its hash chain if it exists.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Seal the audit log with this secret key (audit.key from `audit keygen`): signed
    /// checkpoints, the key evolving after each (docs/AUDIT.md, "Sealed logs"). Needs --audit.
    #[arg(long, value_name = "SECRET")]
    audit_key: Option<PathBuf>,
    /// Also send every audit record as an OpenTelemetry log record over OTLP/HTTP (protobuf) to
    /// the collector at URL: http(s)://HOST:PORT (its receiver's /v1/logs is added) or the full
    /// logs URL. Batched on a thread of its own; a collector that is down or slow holds up
    /// neither the script nor the file log (docs/AUDIT.md, "Records to OpenTelemetry"). Needs
    /// --audit.
    #[arg(long, value_name = "URL")]
    audit_otlp: Option<String>,
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
    /// Load imported modules from beneath these folders without a read grant (default: the
    /// script's folder; imports elsewhere need --allow-read).
    #[arg(
        long,
        value_name = "DIRS",
        num_args = 1,
        require_equals = true,
        value_delimiter = ','
    )]
    module_root: Option<Vec<String>>,
    /// Resolve imports through this import map first (a JSON file with "imports" and
    /// "scopes", as browsers and Deno read it; see docs/MODULES.md).
    #[arg(long, value_name = "FILE")]
    import_map: Option<PathBuf>,
    /// Let the script read this process's stdin (`sys.stdin`). Not with `run -`, whose
    /// stdin is the script.
    #[arg(long)]
    allow_stdin: bool,
    /// Where the script's isolate runs: `process`, a jailed worker process that holds no rights
    /// (the default); `thread`, a thread of this process, which is confined with Landlock to
    /// what the policy grants.
    #[arg(long, value_enum, value_name = "MODE", default_value = "process")]
    isolation: IsolationMode,
    /// The script to run. Everything after it is the script's (`sys.args`), unchanged: a
    /// v8box flag there is not v8box's (`split_run_argv`).
    file: PathBuf,
    /// Arguments passed to the script (`sys.args`), as they are.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum IsolationMode {
    Process,
    Thread,
}

/// Splits `v8box run ...`'s arguments at FILE: returns (the arguments up to and including
/// FILE, for clap to parse; the ones after it, for the script, untouched), or `None` when
/// `argv` is not a `run` with a FILE (then clap parses it all, and says what is wrong).
///
/// clap alone is not enough: with `trailing_var_arg`, options it knows are still taken as its
/// own when they come right after FILE (`run tool.js --allow-read` granted the read, `-h`
/// printed help), so a wrapper that runs `v8box run --allow-read=./data tool.js "$@"` would
/// let its caller widen the policy. Which options take a separate value is read from clap's
/// own definition of `run`, so that a new option cannot be missed here.
fn split_run_argv(argv: &[OsString]) -> Option<(Vec<OsString>, Vec<OsString>)> {
    let argv_text: Vec<std::borrow::Cow<str>> = argv.iter().map(|a| a.to_string_lossy()).collect();
    if argv_text.get(1).map(|a| a.as_ref()) != Some("run") {
        return None;
    }
    let cli = Cli::command();
    let run = cli.find_subcommand("run")?;
    let takes_value = |arg: &clap::Arg| {
        arg.get_action().takes_values()
            && !arg.is_require_equals_set()
            && arg.get_num_args().is_none_or(|n| n.min_values() > 0)
    };
    let mut i = 2;
    while i < argv.len() {
        let a = argv_text[i].as_ref();
        if a == "--" {
            // FILE follows; clap sees the `--` too, and takes what follows it as positional.
            i += 1;
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            if !long.contains('=') {
                let known = run.get_arguments().find(|x| x.get_long() == Some(long));
                if known.is_some_and(takes_value) {
                    i += 1; // its value
                }
            }
        } else if let Some(shorts) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            // `-X` or `-Xvalue`: only a value-taking short with nothing after it takes the next.
            let mut chars = shorts.chars();
            let first = chars.next();
            let known = run.get_arguments().find(|x| x.get_short() == first);
            if chars.next().is_none() && known.is_some_and(takes_value) {
                i += 1;
            }
        } else {
            break; // FILE
        }
        i += 1;
    }
    if i >= argv.len() {
        return None;
    }
    Some((argv[..=i].to_vec(), argv[i + 1..].to_vec()))
}

/// The long and short flags of `v8box run` found among the script's arguments (`--allow-read`
/// from `--allow-read=/etc`), each once, in order: they are the script's, not v8box's, and a
/// warning says so.
fn run_flags_among(script_args: &[String]) -> Vec<String> {
    let cli = Cli::command();
    let Some(run) = cli.find_subcommand("run") else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    for a in script_args {
        let name = if let Some(long) = a.strip_prefix("--") {
            let long = long.split('=').next().unwrap_or("");
            let known = run.get_arguments().any(|x| x.get_long() == Some(long));
            (known && !long.is_empty()).then(|| format!("--{long}"))
        } else if let Some(short) = a.strip_prefix('-').and_then(|s| s.chars().next()) {
            let known = run.get_arguments().any(|x| x.get_short() == Some(short));
            known.then(|| format!("-{short}"))
        } else {
            None
        };
        if let Some(name) = name.filter(|n| !found.contains(n)) {
            found.push(name);
        }
    }
    found
}

/// A limit flag's value: a number that `check` accepts.
fn parse_limit(value: &str, check: fn(u64) -> Result<u64, String>) -> Result<u64, String> {
    let n = value
        .parse::<u64>()
        .map_err(|_| format!("{value:?} is not a whole number"))?;
    check(n)
}

/// Writes a line to stderr; a closed or broken stderr loses the line, never the run's result.
fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    say(format_args!("error: {message}"));
    ExitCode::from(2)
}

/// `v8box --version`: v8box's version, V8's, and the state of V8's heap sandbox.
fn print_version() -> ExitCode {
    println!("v8box {}", env!("CARGO_PKG_VERSION"));
    let sandbox = if !v8box::worker::heap_sandbox_enabled() {
        "off (this build of V8 has none)".to_string()
    } else {
        match v8box::worker::check_platform() {
            Ok(()) => "on".to_string(),
            Err(why) => format!("on, but not secure here: {why}"),
        }
    };
    println!("V8 {}, heap sandbox: {sandbox}", v8box::version());
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    // A jailed worker process (a re-exec of this binary) serves its broker and never returns.
    v8box::isolation::worker_entry();
    // Only as the first argument: after the subcommand it belongs to it, after FILE to the script.
    if matches!(
        std::env::args_os()
            .nth(1)
            .and_then(|a| a.into_string().ok())
            .as_deref(),
        Some("--version" | "-V")
    ) {
        return print_version();
    }
    let argv: Vec<OsString> = std::env::args_os().collect();
    let split = split_run_argv(&argv);
    let parsed = match &split {
        Some((head, _)) => Cli::command()
            .try_get_matches_from(head)
            .and_then(|m| Cli::from_arg_matches(&m)),
        None => Cli::try_parse_from(&argv),
    };
    let cli = match parsed {
        Ok(mut cli) => {
            if let (Command::Run(run), Some((_, rest))) = (&mut cli.command, split) {
                let shown: Vec<String> = rest
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                for flag in run_flags_among(&shown) {
                    say(format_args!(
                        "warning: \"{flag}\" after the script {} is passed to the script, not to \
                         v8box; put v8box flags before the script",
                        run.file.display()
                    ));
                }
                run.args = match rest
                    .into_iter()
                    .map(OsString::into_string)
                    .collect::<Result<_, _>>()
                {
                    Ok(args) => args,
                    Err(bad) => {
                        return usage_error(format!(
                            "an argument after the script is not valid UTF-8: {bad:?}"
                        ))
                    }
                };
            }
            cli
        }
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
        Command::Audit(AuditCommand::Verify { file, key }) => audit_verify(&file, key.as_deref()),
        Command::Audit(AuditCommand::Keygen { out }) => audit_keygen(&out),
        Command::Audit(AuditCommand::Show {
            file,
            key,
            denied,
            op,
            wide,
            json,
        }) => audit_show(&file, key.as_deref(), denied, op, wide, json),
        Command::Policy(PolicyCommand::Check { policy }) => policy_check(&policy),
        Command::Policy(PolicyCommand::Test { policy, audit, key }) => {
            policy_test(&policy, &audit, key.as_deref())
        }
        Command::Policy(PolicyCommand::Suggest { audit, run, key }) => {
            policy_suggest(&audit, run, key.as_deref())
        }
        Command::Policy(PolicyCommand::Explain {
            policy,
            op,
            resource,
        }) => policy_explain(&policy, &op, &resource),
    }
}

fn read_log(file: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(file).map_err(|e| usage_error(format!("cannot read {}: {e}", file.display())))
}

fn load_public_key(key: Option<&Path>) -> Result<Option<v8box::audit::PublicKey>, ExitCode> {
    let Some(path) = key else { return Ok(None) };
    v8box::audit::PublicKey::load(path).map(Some).map_err(|e| {
        let e = e.to_string();
        let shown = path.display().to_string();
        // An error from reading the file does not name it; one from parsing it does.
        if e.contains(&shown) {
            usage_error(format!("--key {}", escaped(&e)))
        } else {
            usage_error(format!("--key {}: {}", escaped(&shown), escaped(&e)))
        }
    })
}

/// Whether a regular file is held by a writer (`AuditLog::open` locks it).
fn is_live(file: &Path) -> bool {
    std::fs::File::open(file)
        .ok()
        .is_some_and(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
}

fn audit_keygen(out: &Path) -> ExitCode {
    match v8box::audit::keygen(out) {
        Ok(pair) => {
            println!(
                "secret key (for run --audit-key): {}",
                escaped(&pair.secret.display().to_string())
            );
            println!(
                "public key (for audit verify --key): {}",
                escaped(&pair.public.display().to_string())
            );
            println!("verification key: {}", pair.key.to_hex());
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(format_args!(
                "error: audit keygen --out {}: {}",
                escaped(&out.display().to_string()),
                escaped(&e.to_string())
            ));
            ExitCode::from(1)
        }
    }
}

fn audit_verify(file: &Path, key: Option<&Path>) -> ExitCode {
    let key = match load_public_key(key) {
        Ok(k) => k,
        Err(code) => return code,
    };
    // A log that its writer still holds (`AuditLog::open` locks it) is not over yet: its last
    // run has no `run_end` because it is still running, not because records were lost.
    let live = is_live(file);
    let log = match read_log(file) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let shown = escaped(&file.display().to_string()).into_owned();
    let report = v8box::audit::verify_report(&log, key.as_ref());
    let seal_line = |records: u64| -> Option<String> {
        if !report.keyed {
            return None;
        }
        Some(match report.unsealed {
            None => format!(
                "sealed: all {records} records, by {} checkpoint(s) (the last at seq {})",
                report.checkpoints, report.sealed_through
            ),
            Some((a, b)) => format!(
                "unsealed: records {a}..{b} come after the last checkpoint ({}): nothing proves \
                 they are as written",
                if report.sealed_through == 0 {
                    "there is none".to_string()
                } else {
                    format!("seq {}", report.sealed_through)
                }
            ),
        })
    };
    match report.verdict {
        v8box::audit::Verdict::Ok { records } => {
            let seal = seal_line(records);
            match (&seal, report.unsealed) {
                (Some(_), Some(_)) if !live => {
                    println!("{shown}: {}", seal.as_deref().unwrap_or(""));
                    eprintln!("error: {shown}: the chain holds ({records} records) but its tail is not sealed: a run without --audit-key, a process that died, or a checkpoint removed");
                    return ExitCode::from(1);
                }
                _ => {}
            }
            match seal {
                Some(seal) => println!("ok: {records} records; {seal}"),
                None => println!("ok: {records} records"),
            }
            if live {
                eprintln!("note: {shown} is still being written (a process holds its lock): more records may follow");
            } else if !report.keyed && report.checkpoints > 0 {
                eprintln!(
                    "note: {shown} has {} checkpoint(s); their signatures are checked only with --key",
                    report.checkpoints
                );
            }
            ExitCode::SUCCESS
        }
        v8box::audit::Verdict::Incomplete { records, missing } if live => {
            println!(
                "{shown}: still being written (a process holds its lock): the {records} records so \
                 far verify; {} run(s) or intent(s) still open are not over yet",
                missing.len()
            );
            eprintln!("error: {shown}: still being written; verify it once its writer has ended");
            ExitCode::from(1)
        }
        v8box::audit::Verdict::Incomplete { records, missing } => {
            for m in &missing {
                println!("{shown}: {m}");
            }
            if let Some(seal) = seal_line(records) {
                println!("{shown}: {seal}");
            }
            eprintln!(
                "error: {shown}: the log is incomplete ({} missing end(s)): its tail was lost, \
                 or a process died while writing it; the {records} records verify",
                missing.len()
            );
            ExitCode::from(1)
        }
        v8box::audit::Verdict::Bad { line, reason } => {
            let reason = escaped(&reason);
            // The verdict goes to stdout like the `ok` one; stderr carries it too, as an error.
            println!("{shown}:{line}: line {line}: {reason}");
            eprintln!("error: {shown}: line {line}: {reason}");
            ExitCode::from(1)
        }
    }
}

/// Reads a log for a tool that reads it as records (`audit show`, `policy test`, `policy
/// suggest`), verified first (with the seal's key, if given): the log, and whether it holds.
fn read_checked_log(file: &Path, key: Option<&Path>) -> Result<(Vec<u8>, bool), ExitCode> {
    let key = load_public_key(key)?;
    let log = read_log(file)?;
    let holds = check_before_reading(file, &log, key.as_ref());
    Ok((log, holds))
}

/// Verifies a log before a tool reads it: prints on stderr whether it holds, and returns
/// whether it does (`audit show` and `policy test` go on either way, and exit 1 when not).
fn check_before_reading(file: &Path, log: &[u8], key: Option<&v8box::audit::PublicKey>) -> bool {
    let shown = escaped(&file.display().to_string()).into_owned();
    let report = v8box::audit::verify_report(log, key);
    match &report.verdict {
        v8box::audit::Verdict::Bad { line, reason } => {
            say(format_args!(
                "warning: {shown} does not verify: line {line}: {}; what follows is read from a \
                 log that was changed or damaged",
                escaped(reason)
            ));
            false
        }
        v8box::audit::Verdict::Incomplete { missing, .. } if !is_live(file) => {
            say(format_args!(
                "note: {shown}: the chain holds but the log is incomplete ({} missing end(s); \
                 `v8box audit verify` lists them)",
                missing.len()
            ));
            true
        }
        _ => match report.unsealed {
            Some((a, b)) if report.keyed && !is_live(file) => {
                say(format_args!(
                    "warning: {shown}: records {a}..{b} are not sealed: nothing proves they are \
                     as written"
                ));
                false
            }
            _ => true,
        },
    }
}

fn audit_show(
    file: &Path,
    key: Option<&Path>,
    denied: bool,
    op: Option<String>,
    wide: bool,
    json: bool,
) -> ExitCode {
    if let Some(op) = op.as_deref().filter(|op| !v8box::audit::known_op(op)) {
        eprintln!(
            "warning: --op {}: no operation has that name (e.g. fs.readFile, net.fetch, env.get), so no record matches",
            escaped(op)
        );
    }
    let (log, holds) = match read_checked_log(file, key) {
        Ok(read) => read,
        Err(code) => return code,
    };
    let filter = v8box::audit::ShowFilter {
        denied,
        op,
        wide,
        json,
    };
    print!(
        "{}",
        v8box::audit::show(&String::from_utf8_lossy(&log), &filter)
    );
    if holds {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn load_policy(path: &Path) -> Result<Policy, ExitCode> {
    Policy::from_file(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })
}

fn policy_check(path: &Path) -> ExitCode {
    match load_policy(path) {
        Ok(p) => {
            print!("{}", p.normalized());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
}

fn policy_explain(path: &Path, op: &str, resource: &str) -> ExitCode {
    let policy = match load_policy(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // What the resource names is printed escaped: `\x1b`, `\r`, `\u{202e}` (docs/AUDIT.md).
    let (shown_op, shown) = (escaped(op), escaped(resource));
    match policy.decide(op, resource, &cwd()) {
        Ok(d) if d.allowed => {
            println!("allow {shown_op} \"{shown}\" (rule: {})", escaped(&d.rule));
            ExitCode::SUCCESS
        }
        Ok(d) => {
            let hint = v8box::policy::permission_of(op)
                .ok()
                .flatten()
                .map(|p| format!("; {}", Policy::hint(p, resource)))
                .unwrap_or_default();
            println!(
                "deny {shown_op} \"{shown}\" (rule: {}{})",
                escaped(&d.rule),
                escaped(&hint)
            );
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(escaped(&e)),
    }
}

fn policy_test(path: &Path, audit: &Path, key: Option<&Path>) -> ExitCode {
    let policy = match load_policy(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (log, holds) = match read_checked_log(audit, key) {
        Ok(read) => read,
        Err(code) => return code,
    };
    let cwd = cwd();
    let (mut replayed, mut changed) = (0, 0);
    for line in String::from_utf8_lossy(&log).lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let kind = record["kind"].as_str().unwrap_or("");
        if kind != "call" && kind != "intent" {
            continue;
        }
        let (op, resource) = (
            record["op"].as_str().unwrap_or(""),
            record["resource"].as_str().unwrap_or(""),
        );
        // What a person reads: the resource as recorded (a rename's `from -> to`), escaped.
        let shown = escaped(resource);
        let was_allowed = record["decision"].as_str() == Some("allow");
        let decision = match policy.replay(&record, &cwd) {
            Ok(d) => d,
            // Not decided by the policy, so not to be decided again: refused as invalid before
            // it was asked, or recorded with what identifies it cut (not what was decided).
            Err(NotReplayed::NotDecided) => continue,
            Err(NotReplayed::Cannot(e)) => {
                eprintln!(
                    "seq {}: {} \"{shown}\": cannot replay: {}",
                    escaped(&record["seq"].to_string()),
                    escaped(op),
                    escaped(&e)
                );
                continue;
            }
        };
        replayed += 1;
        if decision.allowed != was_allowed {
            changed += 1;
            let word = |allowed: bool| if allowed { "allow" } else { "deny" };
            println!(
                "seq {}: {} \"{shown}\": {} → {} (now by: {}; was by: {})",
                escaped(&record["seq"].to_string()),
                escaped(op),
                word(was_allowed),
                word(decision.allowed),
                escaped(&decision.rule),
                escaped(record["rule"].as_str().unwrap_or("?")),
            );
        }
    }
    if changed == 0 {
        println!("no decision changes ({replayed} calls replayed)");
        if holds {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    } else {
        println!("{changed} of {replayed} decisions would change");
        ExitCode::from(1)
    }
}

fn policy_suggest(audit: &Path, run: Option<u64>, key: Option<&Path>) -> ExitCode {
    let (log, holds) = match read_checked_log(audit, key) {
        Ok(read) => read,
        Err(code) => return code,
    };
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&log)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let source = audit.display().to_string();
    match v8box::policy::suggest(&records, run, &source, &cwd()) {
        Ok(policy) => {
            print!("{policy}");
            if holds {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => usage_error(escaped(&e)),
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
        module: args.module_root.clone(),
    };
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    policy.add_flags(&flags, &cwd).map_err(|e| e.to_string())?;
    if !args.script {
        policy.add_main_module_root(&args.file, &cwd);
    }
    if let Some(path) = &args.import_map {
        policy.import_map = Some(v8box::loader::ImportMap::from_file(path)?);
    }
    if args.allow_stdin {
        if args.file.as_os_str() == "-" {
            return Err(
                "--allow-stdin cannot be used with `run -`: stdin is the script itself (write the script to a file)"
                    .into(),
            );
        }
        policy.allow_stdin = true;
    }
    if policy.allow_stdin && args.file.as_os_str() == "-" {
        return Err("the policy allows stdin ([stdin] allow), but `run -` reads the script from stdin: write the script to a file".into());
    }
    if let Some(ms) = args.timeout {
        policy.limits.timeout_ms = Some(ms);
    }
    if let Some(mb) = args.max_heap {
        policy.limits.max_heap_mb = Some(mb);
    }
    Ok(policy)
}

fn run(args: RunArgs) -> ExitCode {
    // A worker process inherits the limit: refuse here, before anything starts.
    if let Err(why) = v8box::worker::check_address_space() {
        return usage_error(why);
    }
    let policy = match build_policy(&args) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    // `v8box run -`: the script is read from stdin (its imports resolve from the working
    // directory, as a script there would).
    let from_stdin = args.file.as_os_str() == "-";
    let read = if from_stdin {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
    } else {
        std::fs::read_to_string(&args.file)
    };
    let source = match read {
        Ok(s) => s,
        Err(e) => return usage_error(format!("cannot read {}: {e}", args.file.display())),
    };
    if let Some(key) = &args.audit_key {
        if let Some(grant) = v8box::audit::key_within_reach(&policy, key) {
            return usage_error(format!(
                "--audit-key {}: the script could reach the sealing key through {grant}; keep \
                 the key outside every read and write grant and module root (by default the \
                 script's folder)",
                key.display()
            ));
        }
    }
    if let Some(url) = &args.audit_otlp {
        if let Err(e) = v8box::audit::logs_endpoint(url) {
            return usage_error(format!("--audit-otlp {e}"));
        }
        if args.audit.is_none() {
            return usage_error(format!(
                "--audit-otlp {url} sends the audit log's records: give the log with --audit FILE"
            ));
        }
    }
    let isolation = match args.isolation {
        IsolationMode::Process => match Isolation::process() {
            Ok(i) => i,
            Err(e) => return usage_error(format!("cannot find v8box's own executable: {e}")),
        },
        IsolationMode::Thread => {
            // The jail's test (debug builds): what this process can do before and after it
            // is confined.
            #[cfg(debug_assertions)]
            let probe = std::env::var(v8box::isolation::PROBE_ENV).ok();
            #[cfg(debug_assertions)]
            if let Some(spec) = &probe {
                // One at a time: an exec that succeeds ends this process.
                for attempt in spec.split(';') {
                    for line in v8box::isolation::run_probe(attempt) {
                        say(format_args!("jail probe (unconfined): {line}"));
                    }
                }
            }
            // Landlock will hide /etc/localtime: V8's ICU takes the zone's name instead.
            if std::env::var_os("TZ").is_none() {
                if let Some(zone) = v8box::isolation::local_time_zone() {
                    // No thread has started yet (nothing else reads the environment now).
                    std::env::set_var("TZ", zone);
                }
            }
            // Before any thread starts (V8's, the audit writer's): Landlock holds for the
            // threads started after it.
            if let Err(e) = confine(&policy, &args) {
                return usage_error(e);
            }
            #[cfg(debug_assertions)]
            if let Some(spec) = &probe {
                for line in v8box::isolation::run_probe(spec) {
                    say(format_args!("jail probe: {line}"));
                }
            }
            if let Err(why) = v8box::worker::check_platform() {
                return usage_error(why);
            }
            Isolation::Thread
        }
    };
    let audit = match (&args.audit, &args.audit_key) {
        (Some(path), None) => match AuditLog::open(path, "main") {
            Ok(a) => a,
            Err(e) => return usage_error(format!("cannot open audit log {}: {e}", path.display())),
        },
        (Some(path), Some(key)) => match AuditLog::open_sealed(path, "main", key) {
            Ok(a) => a,
            Err(e) => {
                return usage_error(format!(
                    "cannot open audit log {} sealed with --audit-key {}: {e}",
                    path.display(),
                    key.display()
                ))
            }
        },
        (None, Some(key)) => {
            return usage_error(format!(
                "--audit-key {} seals an audit log: give the log with --audit FILE",
                key.display()
            ))
        }
        (None, None) => AuditLog::disabled(),
    };
    let audit = match &args.audit_otlp {
        Some(url) => match audit.with_otlp(url) {
            Ok(a) => a,
            Err(e) => return usage_error(format!("--audit-otlp {e}")),
        },
        None => audit,
    };
    let name = if from_stdin {
        "stdin".to_string()
    } else {
        args.file.to_string_lossy().into_owned()
    };
    let main = if args.script {
        Main::Script { name, source }
    } else {
        Main::Module {
            name,
            source,
            resolve: Imports::Files,
        }
    };
    let mut options = RunOptions::new(policy);
    // Start from the snapshot made at build time. A cross-compiled v8box has none, and for one
    // script per process, building it would cost more than it saves.
    options.use_snapshot = v8box::runtime::has_built_in_snapshot();
    // One run per process: its limits hold for the whole process (memory, a stuck run).
    options.owns_process = true;
    options.args = args.args;
    options.audit = audit;
    options.isolation = isolation;
    let exit = v8box::run(main, options);
    report(&exit, &args.file);
    // As a shell sees it: the low 8 bits (sys.exit(-1) is 255, sys.exit(256) is 0).
    ExitCode::from((exit.code() & 0xff) as u8)
}

/// `--isolation=thread`: this process keeps only what the policy grants (Landlock), and the
/// audit log, its sealing key (rewritten beside itself at each checkpoint) and its OTLP
/// collector's port.
fn confine(policy: &Policy, args: &RunArgs) -> Result<(), String> {
    let audit = args.audit.as_deref();
    if let Some(log) = audit {
        // The rule names the log's file, which must exist for that.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open audit log {}: {e}", log.display()))?;
    }
    let mut confinement = v8box::isolation::Confinement::for_policy(policy, audit);
    if let Some(key) = &args.audit_key {
        confinement
            .write
            .push(std::path::absolute(key).unwrap_or_else(|_| key.clone()));
    }
    if let Some(url) = &args.audit_otlp {
        confinement.allow_name_lookups();
        if let Some(ports) = confinement.connect.as_mut() {
            if let Some(port) = url::Url::parse(url)
                .ok()
                .and_then(|u| u.port_or_known_default())
            {
                ports.push(port);
            }
        }
    }
    let warnings = v8box::isolation::confine_process(&confinement)
        .map_err(|e| format!("cannot confine the process (--isolation=thread): {e}"))?;
    for w in warnings {
        say(format_args!("warning: {w}"));
    }
    Ok(())
}

fn report(exit: &Exit, file: &Path) {
    match exit {
        Exit::Ok | Exit::Code(_) => {}
        Exit::Error(e) => say(format_args!("error: {e}")),
        Exit::Timeout => say(format_args!("error: {}: timed out (the --timeout / [limits] timeout_ms limit ran out)", file.display())),
        Exit::HeapLimit => say(format_args!(
            "error: {}: stopped at the heap limit (--max-heap / [limits] max_heap_mb): the script allocated too much memory",
            file.display()
        )),
        Exit::Terminated => say(format_args!("error: {}: terminated", file.display())),
        Exit::Crashed(why) => say(format_args!(
            "error: {}: {} (the run's audit record says so; exit code 5)",
            file.display(),
            escaped(why)
        )),
    }
}
