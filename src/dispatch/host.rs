//! Host channels: the channels a script sends on and listens to, and the host's requests
//! waiting for the script's answer.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::ops::OpError;
use crate::proto::{reply, Empty, ErrorCode};

/// Host requests waiting for the script's answer, by request id.
pub type PendingRequests = Arc<Mutex<HashMap<u64, Sender<Result<bytes::Bytes, String>>>>>;

/// The host application's side of a run.
pub struct HostChannels {
    out: HashMap<String, Sender<bytes::Bytes>>,
    requests: Option<PendingRequests>,
    listening: RefCell<HashSet<String>>,
}

impl HostChannels {
    /// Channels to the host `out`, and the host's pending `requests`.
    pub fn new(
        out: HashMap<String, Sender<bytes::Bytes>>,
        requests: Option<PendingRequests>,
    ) -> HostChannels {
        HostChannels {
            out,
            requests,
            listening: RefCell::default(),
        }
    }

    /// The script listens on `channel`.
    pub fn listen(&self, channel: String) {
        self.listening.borrow_mut().insert(channel);
    }

    /// Whether the script listens on any channel.
    pub fn any_listener(&self) -> bool {
        !self.listening.borrow().is_empty()
    }

    /// Hands a message to the host application; blocks while its queue is full (backpressure),
    /// but gives up once `stopping` says the script is being stopped.
    pub fn send(
        &self,
        channel: &str,
        mut data: bytes::Bytes,
        stopping: impl Fn() -> bool,
    ) -> Result<reply::Result, OpError> {
        let Some(tx) = self.out.get(channel) else {
            return Err(OpError::new(
                ErrorCode::Unsupported,
                format!("host.send: no host application receives channel \"{channel}\""),
            ));
        };
        loop {
            match tx.send_timeout(data, Duration::from_millis(50)) {
                Ok(()) => return Ok(reply::Result::Ok(Empty {})),
                Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
                    if stopping() {
                        return Err(OpError::new(
                            ErrorCode::Io,
                            format!("host.send: the script was stopped while channel \"{channel}\" was full"),
                        ));
                    }
                    data = back;
                }
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => {
                    return Err(OpError::new(
                        ErrorCode::Unsupported,
                        format!("host.send: the host stopped receiving channel \"{channel}\""),
                    ))
                }
            }
        }
    }

    /// Fails every host request still waiting for an answer (the run has ended), so that no
    /// host waits for its timeout.
    pub fn fail_waiting(&self, why: &str) {
        let Some(requests) = &self.requests else {
            return;
        };
        let waiting: Vec<_> = requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (_, tx) in waiting {
            let _ = tx.send(Err(why.to_string()));
        }
    }

    /// Answers a host request (`request_id`, 0 for none) with an error: it was not delivered.
    pub fn fail(&self, request_id: u64, why: String) {
        if request_id == 0 {
            return;
        }
        if let Some(tx) = self.take(request_id) {
            let _ = tx.send(Err(why));
        }
    }

    /// Removes and returns the waiter of the host's request `request_id`.
    fn take(&self, request_id: u64) -> Option<Sender<Result<bytes::Bytes, String>>> {
        let requests = self.requests.as_ref()?;
        requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request_id)
    }

    /// Completes the host's request `request_id` with `data`.
    pub fn answer(&self, request_id: u64, data: Vec<u8>) -> Result<reply::Result, OpError> {
        match self.take(request_id) {
            Some(tx) => {
                let _ = tx.send(Ok(bytes::Bytes::from(data)));
                Ok(reply::Result::Ok(Empty {}))
            }
            None => Err(OpError::new(
                ErrorCode::NotFound,
                format!("host.send: no host request {request_id} is waiting (it timed out or was answered)"),
            )),
        }
    }
}
