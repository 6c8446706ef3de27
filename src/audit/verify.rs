//! `v8box audit verify`: JSON, the hash chain, each record's own hash, and the `seq` order.

use serde_json::Value;

use super::{sha256_hex, unseal, GENESIS};

/// The result of verifying a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every record checks out.
    Ok {
        /// How many records were verified.
        records: u64,
    },
    /// The first bad line (1-based) and why.
    Bad {
        /// The 1-based line number of the first bad record.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Verifies the bytes of an audit log.
pub fn verify(log: &[u8]) -> Verdict {
    let mut lines: Vec<&[u8]> = log.split(|&b| b == b'\n').collect();
    // A complete log ends with a newline, leaving one empty piece after the last record.
    let cut_short = match lines.last() {
        Some(last) if last.is_empty() => {
            lines.pop();
            None
        }
        Some(_) => lines.pop(),
        None => None,
    };
    let mut prev = GENESIS.to_string();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let bad = |reason: String| Verdict::Bad { line: n, reason };
        let value: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => return bad(format!("not a JSON record ({e})")),
        };
        let Some((body, stored)) = unseal(line) else {
            return bad("the record does not end with its \"hash\" field".into());
        };
        if sha256_hex(&body) != stored {
            return bad("the record was changed: its text does not match its hash".into());
        }
        match value.get("prev").and_then(Value::as_str) {
            Some(p) if p == prev => {}
            Some(_) if n == 1 => {
                return bad("the first record does not start the chain (a record before it was removed)".into())
            }
            Some(_) => {
                return bad(format!(
                    "the chain is broken: \"prev\" does not match line {}'s hash (a record was removed, inserted or moved)",
                    n - 1
                ))
            }
            None => return bad("the record has no \"prev\" field".into()),
        }
        match value.get("seq").and_then(Value::as_u64) {
            Some(s) if s == n as u64 => {}
            Some(s) => return bad(format!("seq is {s}, expected {n}")),
            None => return bad("the record has no \"seq\" field".into()),
        }
        prev = stored.to_string();
    }
    if let Some(partial) = cut_short {
        let n = lines.len() + 1;
        return Verdict::Bad {
            line: n,
            reason: format!(
                "the last line is cut short ({} bytes, no end of line): the log was interrupted while \
                 writing it (e.g. the process was killed); the {} records before it verify",
                partial.len(),
                lines.len()
            ),
        };
    }
    Verdict::Ok {
        records: lines.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn sample() -> Vec<u8> {
        let buf = Buf::default();
        let log = AuditLog::to_writer(buf.clone(), "w");
        for i in 0..4 {
            log.lifecycle(
                "run.start",
                &format!("s{i}"),
                "ok",
                0,
                serde_json::json!({}),
            );
        }
        let bytes = buf.0.lock().unwrap().clone();
        bytes
    }

    fn lines(log: &[u8]) -> Vec<Vec<u8>> {
        log.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn join(lines: &[Vec<u8>]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect()
    }

    #[test]
    fn a_clean_log_verifies() {
        assert_eq!(verify(&sample()), Verdict::Ok { records: 4 });
    }

    #[test]
    fn an_edited_byte_is_found_on_its_line() {
        let mut l = lines(&sample());
        let pos = l[3].iter().position(|&b| b == b's').unwrap();
        l[3][pos + 5] ^= 1;
        assert!(
            matches!(verify(&join(&l)), Verdict::Bad { line: 4, .. }),
            "{:?}",
            verify(&join(&l))
        );
    }

    #[test]
    fn deleted_inserted_swapped_and_cut_lines_are_found() {
        let l = lines(&sample());
        let deleted: Vec<_> = [&l[0], &l[2], &l[3]].into_iter().cloned().collect();
        assert!(matches!(
            verify(&join(&deleted)),
            Verdict::Bad { line: 2, .. }
        ));
        let swapped: Vec<_> = [&l[0], &l[2], &l[1], &l[3]].into_iter().cloned().collect();
        assert!(matches!(
            verify(&join(&swapped)),
            Verdict::Bad { line: 2, .. }
        ));
        let first_gone: Vec<_> = l[1..].to_vec();
        assert!(matches!(
            verify(&join(&first_gone)),
            Verdict::Bad { line: 1, .. }
        ));
        let mut cut = join(&l);
        cut.truncate(cut.len() - 20);
        match verify(&cut) {
            Verdict::Bad { line: 4, reason } => assert!(reason.contains("cut short"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
