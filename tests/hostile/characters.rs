//! Characters: control and look-alike characters in codes, control and bidirectional
//! characters in free text, and Vietnamese as clerks type it (accepted verbatim).

use super::*;

/// A Cyrillic letter that looks like `c`, if there is one (digits: a letter that looks like it).
fn look_alike(c: char) -> Option<char> {
    Some(match c {
        'A' => 'А',
        'B' => 'В',
        'C' => 'С',
        'E' => 'Е',
        'H' => 'Н',
        'K' => 'К',
        'M' => 'М',
        'O' | '0' => 'О',
        'P' => 'Р',
        'T' => 'Т',
        'X' => 'Х',
        'a' => 'а',
        'c' => 'с',
        'e' => 'е',
        'o' => 'о',
        'p' => 'р',
        'x' => 'х',
        'y' => 'у',
        '3' => 'З',
        _ => return None,
    })
}

/// Ways of making a valid code look the same (or nearly) while not being it.
fn disguises(legit: &str) -> Vec<(&'static str, String)> {
    let mut first = legit.chars();
    let head = first.next().expect("a code is not empty");
    let tail: String = first.collect();
    let mut swapped = false;
    let cyrillic: String = legit
        .chars()
        .map(|c| match look_alike(c) {
            Some(twin) if !swapped => {
                swapped = true;
                twin
            }
            _ => c,
        })
        .collect();
    assert!(swapped, "{legit} has a letter with a Cyrillic twin");
    let full_width: String = legit
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                char::from_u32(u32::from(c) + 0xFEE0).expect("full-width form")
            } else {
                c
            }
        })
        .collect();
    vec![
        ("NUL at the end", format!("{legit}\u{0}")),
        ("escape sequence", format!("{legit}\u{1b}[2J")),
        ("right-to-left override", format!("\u{202e}{legit}")),
        ("zero-width space", format!("{head}\u{200b}{tail}")),
        ("Cyrillic look-alike", cyrillic),
        ("full-width letters and digits", full_width),
        ("combining acute accent", format!("{legit}\u{0301}")),
        ("decomposed circumflex", format!("{head}\u{0302}{tail}")),
    ]
}

#[tokio::test]
async fn control_and_look_alike_characters_in_codes_are_refused() {
    let mut target = Target::start().await;
    let mut n = 0;
    for slot in CODE_SLOTS {
        for (how, value) in disguises(slot.legit()) {
            n += 1;
            let case = format!("{} with {how}: {value:?}", slot.field());
            let mentions: &[&str] = match slot {
                Slot::Period => &["is not a period identifier"],
                _ => &["contains", "only letters A-Z"],
            };
            let draft = slot.draft(n, value);
            target
                .refused(&case, &draft, slot.field(), slot.malformed_rule(), mentions)
                .await;
        }
    }
    target.finish().await;
}

#[tokio::test]
async fn control_characters_in_free_text_are_refused() {
    let mut target = Target::start().await;
    let mut n = 0;
    for slot in TEXT_SLOTS {
        for (c, name) in [
            ('\u{0}', "U+0000"),
            ('\u{1b}', "U+001B"),
            ('\u{7f}', "U+007F"),
        ] {
            n += 1;
            let case = format!("{} with {name}", slot.field());
            let value = format!("{}{c}", slot.legit());
            let draft = slot.draft(n, value);
            target
                .refused(&case, &draft, slot.field(), "control_character", &[name])
                .await;
        }
    }
    target.finish().await;
}

/// Bidirectional controls (U+202A-U+202E, U+2066-U+2069) reorder what a reader sees: a
/// narrative or a name carrying one prints differently from what is stored ("Trojan Source"),
/// and a log line carrying one is forged as surely as with an escape sequence. (They are
/// Unicode format characters, not control characters, and used to be accepted: found by this
/// suite.)
#[tokio::test]
async fn bidirectional_controls_in_free_text_are_refused() {
    let mut target = Target::start().await;
    let mut n = 0;
    for slot in TEXT_SLOTS {
        for (c, name) in [('\u{202e}', "U+202E"), ('\u{2066}', "U+2066")] {
            n += 1;
            let case = format!("{} with {name}", slot.field());
            let draft = slot.draft(n, format!("{}{c}", slot.legit()));
            target
                .refused(&case, &draft, slot.field(), "control_character", &[name])
                .await;
        }
    }
    target.finish().await;
}

/// Positive control: Vietnamese as clerks type it is accepted and stored byte for byte, in
/// precomposed (NFC) and decomposed (NFD, combining marks) form alike, and so is a zero-width
/// space pasted from a web page (an invisible format character, not a control character).
#[tokio::test]
async fn vietnamese_text_is_stored_verbatim_precomposed_or_decomposed() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client().await;
    let mut draft = valid_report("viet:BS06:201909", "BS06", PERIOD);
    draft.narrative.results = "Tiếp nhận 2.634 hồ sơ; giải quyết đúng hạn 97,1%.".into();
    // "Nguyễn" and "Đề nghị" with their marks as separate combining characters.
    draft.narrative.shortcomings =
        "Nguye\u{0302}\u{0303}n Thi\u{0323} Ánh Tuye\u{0302}\u{0301}t".into();
    draft.narrative.proposals = "Đe\u{0302}\u{0300} nghi\u{0323}\u{200b} tăng cường.".into();
    draft.prepared_by = "Trương Thị Ngọc Ánh — Phó Trưởng phòng".into();
    draft.values[0].comment = "Số liệu 6 tháng: ước tính; «tạm»".into();
    let receipt = client
        .submit(&draft)
        .await
        .expect("Vietnamese text is valid");
    assert_eq!(receipt.status, ReceiptStatus::New);
    let stored = app.stored("BS06", "DVCQ_THANG", PERIOD).await;
    assert_eq!(stored.report.narrative, draft.narrative, "byte for byte");
    assert_eq!(stored.report.prepared_by, draft.prepared_by);
    let comment = stored
        .report
        .values
        .iter()
        .find(|v| v.indicator.as_str() == draft.values[0].indicator)
        .and_then(|v| v.comment.clone());
    assert_eq!(comment.as_deref(), Some(draft.values[0].comment.as_str()));
    app.stop().await;
}
