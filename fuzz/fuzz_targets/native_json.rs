#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| baton_fuzz::server::native_json(data));
