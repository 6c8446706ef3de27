//! `v8box audit show`: the log as a table a person can read.

use serde_json::Value;

use super::escaped;

/// Which records to show.
#[derive(Debug, Clone, Default)]
pub struct ShowFilter {
    /// Only denied calls.
    pub denied: bool,
    /// Only this operation (e.g. `fs.readFile`).
    pub op: Option<String>,
    /// Resources, rules and outcomes in full (not clipped to their column).
    pub wide: bool,
    /// The records themselves, one JSON object a line, instead of a table.
    pub json: bool,
}

/// Operations a log may name besides the calls (`ops::table`): the runs', the loader's own
/// records and refused messages.
const RECORD_OPS: &[&str] = &[
    "run.start",
    "run.end",
    "module.load",
    "module.resolve",
    "message",
];

/// Whether `op` is one that an audit log can hold (`--op` warns about any other).
pub fn known_op(op: &str) -> bool {
    crate::ops::table::recorded_names().any(|n| n == op) || RECORD_OPS.contains(&op)
}

/// A field as the table shows it: escaped (a script chose the names in it; see `escaped`).
fn field(v: &Value, key: &str) -> String {
    let text = match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    escaped(&text).into_owned()
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let kept: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// Renders the records of `log` that pass `filter`; lines that are not JSON are shown as such.
pub fn show(log: &str, filter: &ShowFilter) -> String {
    let mut out = if filter.json {
        String::new()
    } else {
        format!(
            "{:>5}  {:<10}  {:<15}  {:<12}  {:<36}  {:<8}  {:<28}  {:<17}  {:>9}  {:>9}\n",
            "SEQ",
            "DATE",
            "TIME",
            "OP",
            "RESOURCE",
            "DECISION",
            "RULE",
            "OUTCOME",
            "BYTES",
            "DUR_US"
        )
    };
    let clip = |s: &str, width: usize| {
        if filter.wide {
            s.to_string()
        } else {
            clip(s, width)
        }
    };
    let mut shown_any = false;
    for (i, line) in log.lines().enumerate() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            if filter.json {
                continue;
            }
            out.push_str(&format!(
                "{:>5}  (line {} is not a JSON record)\n",
                "?",
                i + 1
            ));
            continue;
        };
        let decision = field(&v, "decision");
        if filter.denied && decision != "deny" {
            continue;
        }
        if let Some(op) = &filter.op {
            if &field(&v, "op") != op {
                continue;
            }
        }
        if filter.json {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        // A line between one run's records and the next's.
        if field(&v, "op") == "run.start" && shown_any {
            out.push_str(&format!("{}\n", "-".repeat(160)));
        }
        shown_any = true;
        let ts = field(&v, "ts");
        let date = ts.get(0..10).unwrap_or("").to_string();
        let time = ts.get(11..26).unwrap_or(&ts).to_string();
        let bytes = format!("{}/{}", field(&v, "bytes_in"), field(&v, "bytes_out"));
        out.push_str(&format!(
            "{:>5}  {:<10}  {:<15}  {:<12}  {:<36}  {:<8}  {:<28}  {:<17}  {:>9}  {:>9}\n",
            field(&v, "seq"),
            date,
            time,
            clip(&field(&v, "op"), 12),
            clip(&field(&v, "resource"), 36),
            decision,
            clip(&field(&v, "rule"), 28),
            clip(&field(&v, "outcome"), 17),
            bytes,
            field(&v, "dur_us"),
        ));
    }
    out
}
