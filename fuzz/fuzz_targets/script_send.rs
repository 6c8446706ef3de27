//! Random bytes handed to `$send` by a script, inside a real isolate with the `sys` prelude.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| v8box::fuzzing::script_send(data));
