//! Random text through the policy parser (and its normalized form back through it).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| v8box::fuzzing::policy_text(data));
