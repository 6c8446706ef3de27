//! A FIFO met by a read's quick path inside `$send`: it opens the FIFO without waiting, sees it
//! is no small regular file and hands it to the I/O pool. A writer waiting in its `open` until
//! then is woken by that quick open and may write and close at once, before the pool gets
//! there: what it wrote must be read, as `cat` would.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::*;

const ROUNDS: usize = 20;

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Opens `fifo` both ways without waiting, and closes it again: wakes an `open` of either end
/// waiting on it.
fn knock(fifo: &Path) {
    drop(
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo),
    );
}

/// Waits for `other_end` (a thread that opens `fifos` in turn and checks `stop` after each
/// `open`) to end: a run that hung or ended early leaves it waiting in an `open` for a partner
/// that never comes, which each turn wakes.
fn end<T>(fifos: &[PathBuf], stop: &AtomicBool, other_end: JoinHandle<T>) -> T {
    stop.store(true, Ordering::SeqCst);
    while !other_end.is_finished() {
        fifos.iter().for_each(|f| knock(f));
        std::thread::yield_now();
    }
    other_end.join().unwrap()
}

/// A writer waiting in `open` is woken by the quick path's open, writes its line and closes
/// at once, while the quick path may still hold the FIFO (the data would be dropped with the
/// FIFO's last reader) or just after it let go (the write would find no reader: `EPIPE`). In
/// every round the script's read gets the line, ending at the writer's close, and no write
/// fails. (One FIFO per round: a writer of the next round must not join this round's.)
#[test]
fn a_fifo_read_gets_what_a_writer_wrote_as_the_quick_path_opened_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifos: Vec<PathBuf> = (0..ROUNDS)
        .map(|i| dir.path().join(format!("pipe{i}")))
        .collect();
    fifos.iter().for_each(|f| mkfifo(f));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (fifos, stop) = (fifos.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut outcomes = Vec::new();
            for (i, fifo) in fifos.iter().enumerate() {
                // Waits until a reader opens the FIFO: the script's quick path.
                let mut file = File::options().write(true).open(fifo).unwrap();
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let line = format!("line {i}");
                outcomes.push(file.write_all(line.as_bytes()).map_err(|e| e.to_string()));
            }
            outcomes
        })
    };
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=.", "--timeout=10000", "--audit=audit.log"],
        &format!(
            "for (let i = 0; i < {ROUNDS}; i++) $print(await sys.readTextFile(`pipe${{i}}`));"
        ),
    );
    let outcomes = end(&fifos, &stop, writer);
    let lines: String = (0..ROUNDS).map(|i| format!("line {i}\n")).collect();
    assert_eq!((code, out.as_str()), (0, lines.as_str()), "{err}");
    assert_eq!(outcomes, vec![Ok(()); ROUNDS]);
    // Each read is recorded once, as the FIFO it was allowed on, with what it read.
    let calls: Vec<(String, String, u64)> = records(&dir.path().join("audit.log"))
        .iter()
        .filter(|r| r["op"] == "fs.readFile")
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (
                field("kind"),
                field("resource"),
                r["bytes_out"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String, u64)> = fifos
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let n = format!("line {i}").len() as u64;
            ("call".to_string(), f.display().to_string(), n)
        })
        .collect();
    assert_eq!(calls, expected);
}

/// A device is handed to the I/O pool opened too, and read there as a blocking read would:
/// `/dev/null` ends at once, `/dev/zero` runs past the message limit.
#[test]
fn a_device_read_is_finished_on_the_io_pool() {
    let dir = tempfile::tempdir().unwrap();
    let policy = small_message_policy(dir.path());
    let (code, out, err) = run_js(
        dir.path(),
        &[
            policy,
            "--allow-read=/dev/null",
            "--allow-read=/dev/zero",
            "--timeout=10000",
        ],
        "$print((await sys.readFile('/dev/null')).length);\n\
         try { await sys.readFile('/dev/zero'); } catch (e) { $print(e.code, e.message); }",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "0\nTOO_LARGE readFile \"/dev/zero\": the file is larger than the 960 bytes a reply may carry (raise [limits] max_message_bytes)\n"
    );
}
