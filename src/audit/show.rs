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
    let mut out = format!(
        "{:>5}  {:<15}  {:<12}  {:<36}  {:<8}  {:<28}  {:<17}  {:>9}  {:>9}\n",
        "SEQ", "TIME", "OP", "RESOURCE", "DECISION", "RULE", "OUTCOME", "BYTES", "DUR_US"
    );
    for (i, line) in log.lines().enumerate() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
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
        let ts = field(&v, "ts");
        let time = ts.get(11..26).unwrap_or(&ts).to_string();
        let bytes = format!("{}/{}", field(&v, "bytes_in"), field(&v, "bytes_out"));
        out.push_str(&format!(
            "{:>5}  {:<15}  {:<12}  {:<36}  {:<8}  {:<28}  {:<17}  {:>9}  {:>9}\n",
            field(&v, "seq"),
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
