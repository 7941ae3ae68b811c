//! Configuration files that would make the server fail on every report of a data set.

/// A catalog whose `grace_days` puts a deadline past the end of chrono's calendar (year
/// 262142: from about 95 million days on, 96 million for every period tonghop accepts) must be
/// refused when it is loaded. It used to load, and then every report of that data set panicked
/// in `period::deadline` (`NaiveDate + Days` out of range): the stream was reset, and the
/// client got CANCELLED "h2 protocol error", which it is told to retry. (Found reading the
/// code the `catalog_toml` fuzz target covers; its invariants turn such an input into a
/// crash.)
#[test]
fn a_catalog_whose_deadlines_overflow_the_calendar_is_refused() {
    use tonghop::domain::Catalog;
    use tonghop::domain::catalog::DEFAULT_CATALOG_TOML;
    for grace_days in [96_000_000_u32, 4_000_000_000, u32::MAX] {
        let text = DEFAULT_CATALOG_TOML.replacen(
            "grace_days = 5",
            &format!("grace_days = {grace_days}"),
            1,
        );
        assert!(
            text.contains(&grace_days.to_string()),
            "the catalog was changed"
        );
        let loaded = Catalog::from_toml(&text);
        let err = loaded
            .err()
            .unwrap_or_else(|| panic!("grace_days = {grace_days} is accepted"));
        assert!(err.to_string().contains("grace_days"), "{err}");
    }
}
