//! The handlers: for each operation, what its arguments must be, what the policy decides and
//! how it runs (`plan::Handlers`, generated from proto/v8box.proto; the pipeline in `mod.rs`
//! does the rest, in one order for every operation).

use super::plan::{Handlers, Plan, Run, Target};
use super::{Dispatcher, Stream};
use crate::audit::Parts;
use crate::ops::{self, table as t, Done};
use crate::policy::{Permission, Policy};
use crate::proto::{self, reply, Empty, ErrorCode};
use crate::worker::TerminationReason;

fn ok() -> Done {
    Done::ok(reply::Result::Ok(Empty {}), 0)
}

impl Dispatcher {
    /// A call on one path: refused before the policy when no file could have that name.
    fn on_path(&self, op: &str, path: &str, run: Run) -> Plan {
        match self.absolute(op, path) {
            Ok(abs) => Plan::new(
                abs.display().to_string(),
                Ok(smallvec::smallvec![Target::Path(abs)]),
                run,
            ),
            Err(e) => Plan::new(path, Err(e), run),
        }
    }

    /// A call on two paths (`from`, `to`): every record names both, in fields of their own
    /// (`resource` joins them for the eye).
    fn on_paths(&self, op: &str, from: &str, to: &str, run: Run) -> Plan {
        let (f, t) = (self.absolute(op, from), self.absolute(op, to));
        let shown = |p: &Result<std::path::PathBuf, _>, raw: &str| {
            p.as_ref()
                .map_or(raw.to_string(), |p| p.display().to_string())
        };
        let (fs, ts) = (shown(&f, from), shown(&t, to));
        let targets = match (f, t) {
            (Ok(f), Ok(t)) => Ok(smallvec::smallvec![Target::Path(f), Target::Path(t)]),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let mut plan = Plan::new(format!("{fs} -> {ts}"), targets, run);
        plan.parts = Parts::Rename { from: fs, to: ts };
        plan
    }
}

fn pool(job: impl FnOnce(&super::Shared, super::plan::Grants) -> Done + Send + 'static) -> Run {
    Run::Pool(None, Box::new(job))
}

impl Handlers for Dispatcher {
    fn read_file(&self, m: proto::ReadFile) -> Plan {
        // Room for the reply's envelope; a limit smaller than that allows no bytes.
        let max = (self.shared.max_message_bytes as u64).saturating_sub(64);
        let run = Run::Pool(
            Some(Box::new(move |s, g| {
                ops::fs::read_file_quick(&s.fs, &g[0], max)
            })),
            Box::new(move |s, g| ops::fs::read_file(&s.fs, &g[0], max)),
        );
        self.on_path(t::FS_READ_FILE.name, &m.path, run)
    }

    fn write_file(&self, m: proto::WriteFile) -> Plan {
        let n = m.data.len() as u64;
        let sha256 = self
            .shared
            .audit
            .enabled()
            .then(|| crate::audit::sha256_hex(&m.data));
        let append = m.append;
        // Shared by the inline attempt and the pool's job, not copied.
        let data = bytes::Bytes::from(m.data);
        let quick_data = data.clone();
        let run = Run::Pool(
            Some(Box::new(move |s, g| {
                ops::fs::write_file_quick(&s.fs, &g[0], &quick_data, append)
            })),
            Box::new(move |s, g| ops::fs::write_file(&s.fs, &g[0], &data, append)),
        );
        let mut plan = self.on_path(t::FS_WRITE_FILE.name, &m.path, run);
        plan.bytes_in = n;
        plan.charge_in = true;
        plan.charge_out = false;
        plan.sha256 = sha256;
        plan
    }

    fn read_dir(&self, m: proto::ReadDir) -> Plan {
        let run = pool(|s, g| ops::fs::read_dir(&s.fs, &g[0]));
        self.on_path(t::FS_READ_DIR.name, &m.path, run)
    }

    fn stat(&self, m: proto::Stat) -> Plan {
        let run = pool(|s, g| ops::fs::stat(&s.fs, &g[0]));
        self.on_path(t::FS_STAT.name, &m.path, run)
    }

    fn remove(&self, m: proto::Remove) -> Plan {
        let recursive = m.recursive;
        let run = pool(move |s, g| ops::fs::remove(&s.fs, &g[0], recursive));
        self.on_path(t::FS_REMOVE.name, &m.path, run)
    }

    fn mkdir(&self, m: proto::Mkdir) -> Plan {
        let recursive = m.recursive;
        let run = pool(move |s, g| ops::fs::mkdir(&s.fs, &g[0], recursive));
        self.on_path(t::FS_MKDIR.name, &m.path, run)
    }

    fn rename(&self, m: proto::Rename) -> Plan {
        let run = pool(|s, g| ops::fs::rename(&s.fs, &g[0], &g[1]));
        self.on_paths(t::FS_RENAME.name, &m.from, &m.to, run)
    }

    fn copy_file(&self, m: proto::CopyFile) -> Plan {
        // What a read may return: room for a reply's envelope within the message limit.
        let max = (self.shared.max_message_bytes as u64).saturating_sub(64);
        let run = pool(move |s, g| {
            let read = ops::fs::read_file(&s.fs, &g[0], max);
            let data = match read.result {
                Ok(reply::Result::Bytes(b)) => b.data,
                Ok(_) => unreachable!("a read answers bytes"),
                Err(e) => {
                    return Done {
                        resolved: read.resolved,
                        ..Done::err(e)
                    }
                }
            };
            let mut done = ops::fs::write_file(&s.fs, &g[1], &data, false);
            if done.result.is_ok() {
                // The bytes it copied (the audit log's `bytes_out`, a byte quota).
                done.bytes_out = data.len() as u64;
            }
            if read.resolved.is_some() || done.resolved.is_some() {
                let shown = |r: Option<String>, i: usize| {
                    r.unwrap_or_else(|| g[i].abs.display().to_string())
                };
                done.resolved = Some(format!(
                    "{} -> {}",
                    shown(read.resolved, 0),
                    shown(done.resolved.take(), 1)
                ));
            }
            done
        });
        self.on_paths(t::FS_COPY_FILE.name, &m.from, &m.to, run)
    }

    fn env_get(&self, m: proto::EnvGet) -> Plan {
        let targets =
            ops::env::validate_name(&m.name).map(|()| smallvec::smallvec![Target::ResourceName]);
        Plan::new(m.name, targets, Run::OnResource(ops::env::get))
    }

    fn now(&self, _: proto::Now) -> Plan {
        Plan::inline("", |d| ops::clock::now(d.shared.epoch))
    }

    fn random_bytes(&self, m: proto::RandomBytes) -> Plan {
        Plan::inline(m.length.to_string(), move |_| {
            ops::clock::random_bytes(m.length)
        })
    }

    fn sleep(&self, m: proto::Sleep) -> Plan {
        let run = Run::Armed(Box::new(move |d, id| {
            let limit = d.shared.policy.limits.max_timers();
            d.timers.borrow_mut().arm(id, m.ms, m.unref, limit)
        }));
        Plan::free(format!("{}ms", m.ms), run)
    }

    fn cancel(&self, m: proto::Cancel) -> Plan {
        Plan::inline("", move |d| {
            d.timers.borrow_mut().cancel(m.call_id);
            ok()
        })
    }

    fn args(&self, _: proto::Args) -> Plan {
        Plan::inline("", |d| {
            let values = d.args.clone();
            Done::ok(reply::Result::Strings(proto::Strings { values }), 0)
        })
    }

    fn fetch(&self, m: proto::Fetch) -> Plan {
        self.fetch_plan(m)
    }

    fn host_send(&self, m: proto::HostSend) -> Plan {
        let (channel, reply_to) = (m.channel.clone(), m.reply_to);
        let n = m.data.len() as u64;
        let run = Run::Inline(Box::new(move |d, _| {
            if reply_to != 0 {
                d.host.answer(reply_to, m.data).into()
            } else {
                let stopping = || {
                    d.terminate
                        .borrow()
                        .as_ref()
                        .and_then(|t| t.reason())
                        .is_some()
                };
                d.host
                    .send(&m.channel, bytes::Bytes::from(m.data), stopping)
                    .into()
            }
        }));
        let mut plan = Plan::new(
            channel.clone(),
            Ok(smallvec::smallvec![Target::Name(channel)]),
            run,
        );
        plan.bytes_in = n;
        plan.charge_in = true;
        // A host waiting for this answer learns at once why it will not come.
        plan.on_refused = Some(Box::new(move |d, e| {
            d.host.fail(reply_to, e.message.clone())
        }));
        plan
    }

    fn host_listen(&self, m: proto::HostListen) -> Plan {
        let channel = m.channel.clone();
        let run = Run::Inline(Box::new(move |d, _| {
            d.host.listen(channel);
            ok()
        }));
        Plan::new(
            m.channel.clone(),
            Ok(smallvec::smallvec![Target::Name(m.channel)]),
            run,
        )
    }

    fn log(&self, m: proto::Log) -> Plan {
        let stream = match proto::log::Level::try_from(m.level) {
            Ok(proto::log::Level::Warn | proto::log::Level::Error) => Stream::Stderr,
            _ => Stream::Stdout,
        };
        Plan::free(
            "",
            Run::Notify(Box::new(move |d| (d.output)(stream, &m.message))),
        )
    }

    fn exit(&self, m: proto::Exit) -> Plan {
        Plan::inline(m.code.to_string(), move |d| {
            d.exit_code.set(Some(m.code));
            if let Some(t) = d.terminate.borrow().as_ref() {
                t.terminate_for(TerminationReason::Exit);
            }
            ok()
        })
    }

    // Pure: touches nothing outside the isolate, so no policy and no record.
    fn url(&self, m: proto::Url) -> Plan {
        Plan::inline("", move |_| {
            Done::ok(reply::Result::UrlRecord(ops::url::parse(&m)), 0)
        })
    }

    // The process's stdin is one resource, named `stdin` (its permission is the op's own,
    // `Permission::Stdin`); read on the I/O pool, as it may block.
    fn stdin_read(&self, m: proto::StdinRead) -> Plan {
        let max = (m.max_bytes as usize).clamp(1, ops::stdin::MAX_CHUNK);
        let run = pool(move |_, _| ops::stdin::read(max));
        Plan::new(
            "stdin",
            Ok(smallvec::smallvec![Target::Name("stdin".into())]),
            run,
        )
    }

    fn host_message(&self, m: proto::HostMessage) -> Plan {
        let (channel, request_id) = (m.channel.clone(), m.request_id);
        let n = m.data.len() as u64;
        let run = Run::Inline(Box::new(move |_, _| {
            Done::ok(reply::Result::HostMessage(m), 0)
        }));
        let mut plan = Plan::new(
            channel.clone(),
            Ok(smallvec::smallvec![Target::Name(channel.clone())]),
            run,
        );
        plan.bytes_in = n;
        plan.charge_in = true;
        // The host learns at once why its request will not be answered.
        plan.on_refused = Some(Box::new(move |d, e| {
            let why = if e.code == ErrorCode::PermissionDenied {
                format!(
                    "the policy does not allow channel \"{channel}\" ({})",
                    Policy::hint(Permission::Host, &channel)
                )
            } else {
                e.message.clone()
            };
            d.host.fail(request_id, why);
        }));
        plan
    }
}
