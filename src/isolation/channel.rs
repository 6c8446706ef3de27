//! The broker <-> worker channel: protobuf messages (`proto/worker.proto`), each prefixed with
//! its length as 4 little-endian bytes, over the shared-memory rings of `ring.rs`. A length over the channel's limit, a message that does
//! not decode, or a closed socket is an error the caller acts on: the broker ends a worker
//! that sends one (it treats every byte from the worker as hostile), the worker ends itself.

use std::io::{self, BufRead, BufReader, Read, Write};

use super::ring::{RingReader, RingWriter};

use prost::Message;

/// The largest frame buffer kept between sends.
const KEEP_BYTES: usize = 64 << 10;

/// What went wrong on the channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The other side closed its end (it ended, or crashed).
    #[error("the channel was closed")]
    Closed,
    #[error("the channel failed: {0}")]
    Io(#[from] io::Error),
    /// A frame longer than the limit: not read (and the channel is not usable after it).
    #[error("a message of {0} bytes, over the channel's limit")]
    TooLong(u64),
    #[error("a malformed message: {0}")]
    Malformed(String),
}

/// One end of the channel: a buffered reader of one ring, a writer of the other.
pub struct Channel {
    rx: BufReader<RingReader>,
    tx: RingWriter,
    /// The last frame's buffer, kept for the next (up to `KEEP_BYTES`).
    out: Vec<u8>,
    /// The longest message this end accepts.
    max: usize,
}

impl Channel {
    /// Reads from `rx` and writes to `tx`; messages longer than `max` bytes are refused.
    pub fn new((rx, tx): (RingReader, RingWriter), max: usize) -> Channel {
        Channel {
            rx: BufReader::with_capacity(64 << 10, rx),
            tx,
            out: Vec::new(),
            max,
        }
    }

    /// The raw writer, for the jail's tests (`probe::misbehave`).
    #[cfg(debug_assertions)]
    pub fn raw_writer(&mut self) -> &mut dyn Write {
        &mut self.tx
    }

    /// Changes the longest message this end accepts.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Sends `msg` as one frame (one write).
    pub fn send<M: Message>(&mut self, msg: &M) -> Result<(), ChannelError> {
        let len = msg.encoded_len();
        // One buffer for every frame (a call's round trip makes no allocation for it); a big
        // one is not kept.
        let mut frame = std::mem::take(&mut self.out);
        frame.clear();
        frame.reserve(4 + len);
        frame.extend_from_slice(&(len as u32).to_le_bytes());
        msg.encode(&mut frame)
            .map_err(|e| ChannelError::Malformed(e.to_string()))?;
        let sent = self.tx.write_all(&frame).map_err(closed_or_io);
        if frame.capacity() <= KEEP_BYTES {
            self.out = frame;
        }
        sent
    }

    /// Receives the next message.
    pub fn recv<M: Message + Default>(&mut self) -> Result<M, ChannelError> {
        let mut header = [0u8; 4];
        self.rx.read_exact(&mut header).map_err(closed_or_io)?;
        let len = u32::from_le_bytes(header) as usize;
        if len > self.max {
            return Err(ChannelError::TooLong(len as u64));
        }
        // A frame already read whole into the buffer decodes from there (decoding copies what
        // it keeps, so a byte the other side changes later is never read twice).
        if self.rx.buffer().len() >= len {
            let decoded = M::decode(&self.rx.buffer()[..len])
                .map_err(|e| ChannelError::Malformed(e.to_string()));
            self.rx.consume(len);
            return decoded;
        }
        let mut body = Vec::new();
        body.try_reserve_exact(len)
            .map_err(|_| ChannelError::TooLong(len as u64))?;
        body.resize(len, 0);
        self.rx.read_exact(&mut body).map_err(closed_or_io)?;
        M::decode(body.as_slice()).map_err(|e| ChannelError::Malformed(e.to_string()))
    }
}

fn closed_or_io(e: io::Error) -> ChannelError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset => ChannelError::Closed,
        _ => ChannelError::Io(e),
    }
}
