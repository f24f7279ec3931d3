//! Any text: the parser returns a query or an error, never panics; a query it accepts
//! prints (one-line and `format_query` forms) to text that parses back to the same query.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    kiroku_logql::printer::check_round_trip(q);
});
