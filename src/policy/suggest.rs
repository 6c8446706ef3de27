//! `v8box policy suggest`: the policy a recorded run needed (after SELinux's audit2allow and
//! AppArmor's aa-logprof). Every call the policy decided — allowed or denied — becomes a grant,
//! as narrow as it reasonably can be; quotas are set a margin above what each run used.
//! docs/POLICY.md, "Suggested policies", says what is made of what.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::audit::is_cut_resource;
use crate::loader::normalize;

use super::{Decision, Permission, Policy};
use crate::ops::table;

/// A quota's margin: twice what a run used, and at least this much more.
const CALLS_MARGIN: u64 = 10;
/// See `CALLS_MARGIN`.
const BYTES_MARGIN: u64 = 64 << 10;

/// The most record numbers a grant's comment lists.
const CITED: usize = 8;

/// Where a grant's need was seen: the records, and what they were.
#[derive(Default)]
struct Seen {
    seqs: BTreeSet<u64>,
    what: BTreeSet<String>,
}

impl Seen {
    fn add(&mut self, seq: u64, op: &str, decision: &str) {
        self.seqs.insert(seq);
        self.what.insert(format!("{op} {decision}"));
    }

    fn comment(&self) -> String {
        let mut seqs: Vec<String> = self.seqs.iter().take(CITED).map(u64::to_string).collect();
        if self.seqs.len() > CITED {
            seqs.push(format!("and {} more", self.seqs.len() - CITED));
        }
        let what: Vec<&str> = self.what.iter().map(String::as_str).collect();
        format!("seq {} ({})", seqs.join(", "), what.join(", "))
    }
}

/// What the recorded calls needed.
#[derive(Default)]
struct Needs {
    read: BTreeMap<PathBuf, Seen>,
    write: BTreeMap<PathBuf, Seen>,
    net: BTreeMap<String, Seen>,
    env: BTreeMap<String, Seen>,
    host: BTreeMap<String, Seen>,
    /// The `stdin.read` calls (stdin is granted whole).
    stdin: Seen,
    /// Per run (its `run_start` seq), per operation: calls and bytes.
    used: BTreeMap<u64, BTreeMap<String, (u64, u64)>>,
    /// Records that could not be turned into a grant, and why.
    skipped: Vec<String>,
}

/// The text of a string field.
fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// A policy that allows exactly what the recorded runs asked for (`run`: only the run whose
/// `run_start` has that `seq`), as TOML with a comment per grant naming its records. Relative
/// paths in records (there should be none) resolve against `cwd`. Errors when `run` names no
/// run of the log.
pub fn suggest(
    records: &[Value],
    run: Option<u64>,
    source: &str,
    cwd: &Path,
) -> Result<String, String> {
    let mut needs = Needs::default();
    // Each worker's open run: a record belongs to the last run its worker started.
    let mut open: BTreeMap<String, u64> = BTreeMap::new();
    let mut runs: BTreeSet<u64> = BTreeSet::new();
    for r in records {
        let seq = r.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let worker = text(r, "worker").unwrap_or("").to_string();
        let kind = text(r, "kind").unwrap_or("");
        let of_run = match kind {
            "run_start" => {
                open.insert(worker, seq);
                runs.insert(seq);
                continue;
            }
            "run_end" => {
                open.remove(&worker);
                continue;
            }
            _ => r
                .get("after_run_end")
                .and_then(Value::as_u64)
                .and_then(|end| records.iter().find(|x| x["seq"] == end))
                .and_then(|end| end.get("run").and_then(Value::as_u64))
                .or_else(|| open.get(&worker).copied())
                .unwrap_or(0),
        };
        if run.is_some_and(|want| want != of_run) {
            continue;
        }
        if !matches!(kind, "call" | "intent" | "outcome") {
            continue;
        }
        let op = text(r, "op").unwrap_or("");
        // Quotas count a call once (its intent or its one record) and bytes wherever recorded.
        if table::find(op).is_some_and(|o| o.quota) {
            let entry = needs
                .used
                .entry(of_run)
                .or_default()
                .entry(op.to_string())
                .or_default();
            if kind != "outcome" {
                entry.0 += 1;
            }
            if kind != "intent" {
                let bytes = |k| r.get(k).and_then(Value::as_u64).unwrap_or(0);
                entry.1 += bytes("bytes_in") + bytes("bytes_out");
            }
        }
        if kind == "outcome" {
            continue; // its intent was decided
        }
        needs.add(r, seq, op, cwd);
    }
    if let Some(want) = run {
        if !runs.contains(&want) {
            let known: Vec<String> = runs.iter().map(u64::to_string).collect();
            return Err(format!(
                "--run {want}: no run of the log starts at seq {want} (runs start at seq {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    Ok(needs.render(run, &runs, source))
}

impl Needs {
    fn add(&mut self, r: &Value, seq: u64, op: &str, cwd: &Path) {
        let rule = text(r, "rule").unwrap_or("");
        let decision = text(r, "decision").unwrap_or("");
        if rule == Decision::INVALID {
            return; // refused before the policy was asked: no grant changes it
        }
        let resource = text(r, "resource").unwrap_or("");
        let path = |p: &str| normalize(&cwd.join(p));
        let mut skip = |why: &str| {
            self.skipped.push(format!("seq {seq}: {op}: {why}"));
        };
        // A file operation's paths, each under its field's permission (the op table), or an
        // import's.
        let files: Vec<(&str, Permission)> = match table::find(op) {
            Some(o)
                if o.recorded
                    && !o.resources.is_empty()
                    && o.resources
                        .iter()
                        .all(|(_, p)| matches!(p, Permission::Read | Permission::Write)) =>
            {
                o.resources.iter().map(|(f, p)| (*f, *p)).collect()
            }
            _ if op == "module.load" => vec![("resource", Permission::Read)],
            _ => Vec::new(),
        };
        if !files.is_empty() {
            if op == "module.load"
                && (rule == Policy::MAIN_FOLDER_RULE || rule == crate::loader::HOST_RESOLVER_RULE)
            {
                return; // decided by the run itself, not by a policy file
            }
            let mut paths: Vec<(&str, Permission)> = if files.len() > 1 {
                let mut fields = Vec::new();
                for (field, p) in &files {
                    let Some(path) = text(r, field) else {
                        let names: Vec<String> =
                            files.iter().map(|(f, _)| format!("{f:?}")).collect();
                        skip(&format!(
                            "a {} recorded without {} (an older log)",
                            op.trim_start_matches("fs."),
                            names.join(" and ")
                        ));
                        return;
                    };
                    fields.push((path, *p));
                }
                fields
            } else {
                vec![(resource, files[0].1)]
            };
            // Where a symlink led must be allowed too (docs/POLICY.md).
            if let Some(resolved) = text(r, "resolved") {
                match resolved.split_once(" -> ") {
                    Some((a, b)) if files.len() > 1 => {
                        paths.extend([(a, files[0].1), (b, files[1].1)])
                    }
                    _ => paths.push((resolved, files[0].1)),
                }
            }
            if paths.iter().any(|(p, _)| is_cut_resource(p)) {
                skip("the path was recorded cut (over 4,096 bytes)");
                return;
            }
            for (p, permission) in paths {
                let map = match permission {
                    Permission::Read => &mut self.read,
                    _ => &mut self.write,
                };
                map.entry(path(p)).or_default().add(seq, op, decision);
            }
            return;
        }
        match op {
            "net.fetch" => {
                let Some(host) = text(r, "host") else {
                    skip("a fetch recorded without \"host\" (an older log, or a URL that does not parse)");
                    return;
                };
                let target = match r.get("port").and_then(Value::as_u64) {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_string(),
                };
                self.net.entry(target).or_default().add(seq, op, decision);
            }
            "env.get" => {
                self.env
                    .entry(resource.to_string())
                    .or_default()
                    .add(seq, op, decision);
            }
            "host.send" | "host.listen" | "host.message" => {
                self.host
                    .entry(resource.to_string())
                    .or_default()
                    .add(seq, op, decision);
            }
            "stdin.read" => self.stdin.add(seq, op, decision),
            _ => {} // always allowed (clock, randomness, timers, exit) or not a call of a script
        }
    }

    fn render(self, run: Option<u64>, runs: &BTreeSet<u64>, source: &str) -> String {
        let mut out = String::new();
        let which = match run {
            Some(n) => format!("the run that starts at seq {n}"),
            None => format!("{} run(s)", runs.len()),
        };
        out.push_str(&format!(
            "# Suggested by `v8box policy suggest` from {} ({which}): what the recorded calls\n\
             # asked for, allowed or denied. Review every grant before you use it.\n",
            one_line(source)
        ));
        let read = narrow(self.read);
        let write = narrow(self.write);
        if !read.is_empty() || !write.is_empty() {
            out.push_str("\n[fs]\n");
            list(&mut out, "read", &read);
            list(&mut out, "write", &write);
        }
        let keyed = |m: BTreeMap<String, Seen>| -> Vec<(String, String)> {
            m.into_iter().map(|(k, s)| (k, s.comment())).collect()
        };
        for (section, key, entries) in [
            ("net", "allow", keyed(self.net)),
            ("env", "allow", keyed(self.env)),
            ("host", "channels", keyed(self.host)),
        ] {
            if !entries.is_empty() {
                out.push_str(&format!("\n[{section}]\n"));
                list(&mut out, key, &entries);
            }
        }
        if !self.stdin.seqs.is_empty() {
            out.push_str(&format!(
                "\n[stdin]\n# {}\nallow = true\n",
                one_line(&self.stdin.comment())
            ));
        }
        // The most each operation took in any one run.
        let mut most: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for per_op in self.used.values() {
            for (op, (calls, bytes)) in per_op {
                let m = most.entry(op.clone()).or_default();
                m.0 = m.0.max(*calls);
                m.1 = m.1.max(*bytes);
            }
        }
        for (op, (calls, bytes)) in most {
            out.push_str(&format!(
                "\n# at most {calls} call(s) and {bytes} byte(s) in a run; twice that, and {CALLS_MARGIN} calls and {BYTES_MARGIN} bytes more\n\
                 [quotas.\"{op}\"]\ncalls = {}\nbytes = {}\n",
                calls * 2 + CALLS_MARGIN,
                bytes * 2 + BYTES_MARGIN
            ));
        }
        for s in &self.skipped {
            out.push_str(&format!("\n# not suggested: {}", one_line(s)));
        }
        if !self.skipped.is_empty() {
            out.push('\n');
        }
        out
    }
}

/// A comment's text on one line (a name can hold a line break; escaped as the tools print).
fn one_line(s: &str) -> String {
    crate::audit::escaped(s).into_owned()
}

/// Path grants as narrow as reasonable: each file itself, or its folder when two or more
/// things in that folder were used; then none that another covers. Each with its comment.
fn narrow(paths: BTreeMap<PathBuf, Seen>) -> Vec<(String, String)> {
    let mut by_folder: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for p in paths.keys() {
        if let Some(parent) = p.parent() {
            by_folder
                .entry(parent.to_path_buf())
                .or_default()
                .push(p.clone());
        }
    }
    let mut grants: BTreeMap<PathBuf, Seen> = BTreeMap::new();
    for (p, seen) in paths {
        let siblings = p
            .parent()
            .and_then(|f| by_folder.get(f))
            .map_or(0, Vec::len);
        let grant = match p.parent() {
            Some(folder) if siblings >= 2 && folder.parent().is_some() => folder.to_path_buf(),
            _ => p,
        };
        let g = grants.entry(grant).or_default();
        g.seqs.extend(seen.seqs);
        g.what.extend(seen.what);
    }
    // A grant beneath another is covered by it: fold its records into the outer one.
    let keys: Vec<PathBuf> = grants.keys().cloned().collect();
    for k in &keys {
        if let Some(outer) = keys.iter().find(|o| *o != k && k.starts_with(o)) {
            if let Some(inner) = grants.remove(k) {
                if let Some(o) = grants.get_mut(outer) {
                    o.seqs.extend(inner.seqs);
                    o.what.extend(inner.what);
                }
            }
        }
    }
    grants
        .into_iter()
        .map(|(p, s)| (p.to_string_lossy().into_owned(), s.comment()))
        .collect()
}

/// `key = [ … ]`, one entry a line, each after its comment.
fn list(out: &mut String, key: &str, entries: &[(String, String)]) {
    if entries.is_empty() {
        return;
    }
    out.push_str(&format!("{key} = [\n"));
    for (value, comment) in entries {
        out.push_str(&format!("  # {}\n", one_line(comment)));
        out.push_str(&format!("  {},\n", toml::Value::String(value.clone())));
    }
    out.push_str("]\n");
}
