//! Random bytes through the message decoder and dispatcher.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| v8box::fuzzing::dispatch_bytes(data));
