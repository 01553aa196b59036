#![no_main]
// The logic and its invariants live in keyward-fuzz-checks (fuzz/checks), shared with the
// stable replay in tests/fuzz_replay.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_fuzz_checks::user_operation::check(data));
