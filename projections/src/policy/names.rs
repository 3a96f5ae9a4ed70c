//! Names people can't confuse: principal, CAB member and application names are NFC-normalised,
//! visible text, and a new principal or member name may not look like one already in use.

use super::{invalid, Rejection};
use unicode_normalization::is_nfc;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Checks a name: at most `max` bytes, NFC, at least one visible character, and no control,
/// format (bidi overrides, zero-width), separator other than a space, private-use, surrogate or
/// unassigned code point.
///
/// # Errors
/// [`Rejection::Invalid`] naming what is wrong.
pub(super) fn check_name(field: &'static str, value: &str, max: usize) -> Result<(), Rejection> {
    if value.len() > max {
        return Err(invalid(
            field,
            format!("is {} bytes, over the limit of {max}", value.len()),
        ));
    }
    if !is_nfc(value) {
        return Err(invalid(
            field,
            "must be in Unicode normalisation form C (NFC)",
        ));
    }
    if let Some(c) = value.chars().find(|c| hidden(*c)) {
        return Err(invalid(
            field,
            format!(
                "must be visible text; U+{:04X} ({:?}) is not",
                u32::from(c),
                c.general_category()
            ),
        ));
    }
    if !value.chars().any(visible) {
        return Err(invalid(field, "must contain a visible character"));
    }
    Ok(())
}

/// A code point that does not show, or shows something else than it is.
fn hidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || (c.general_category() == GeneralCategory::SpaceSeparator && c != ' ')
}

/// A code point that leaves a mark on its own (not a space, not a combining mark).
fn visible(c: char) -> bool {
    !matches!(
        c.general_category(),
        GeneralCategory::SpaceSeparator
            | GeneralCategory::NonspacingMark
            | GeneralCategory::EnclosingMark
            | GeneralCategory::SpacingMark
    ) && !hidden(c)
}

/// What a name looks like: its UTS #39 confusable skeleton, case-folded.
fn looks(name: &str) -> String {
    unicode_security::skeleton(&name.to_lowercase()).collect()
}

/// The key an application name is looked up by in the registry: its whitespace collapsed, then
/// what it looks like, so that a confusable or differently cased spelling finds the entry.
pub fn app_key(name: &str) -> String {
    looks(&name.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A name among `existing` that differs from `name` but looks like it (same skeleton).
pub(super) fn confusable_with<'a>(
    name: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted = looks(name);
    existing
        .into_iter()
        .find(|other| *other != name && looks(other) == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_visible_nfc_text() {
        assert!(check_name("n", "carol", 64).is_ok());
        assert!(check_name("n", "José Müller", 64).is_ok());
        for bad in [
            "",
            "   ",
            "car\u{200B}ol", // zero-width space
            "carol\u{202E}", // right-to-left override
            "Jose\u{301}",   // decomposed: not NFC
            "\u{0301}",      // a lone combining mark
            "ca\u{0007}rol", // a control character
            "car\u{00A0}ol", // a no-break space
            "\u{E000}",      // private use
        ] {
            assert!(check_name("n", bad, 64).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn confusable_names_are_found() {
        let existing = ["carol", "chen"];
        // Cyrillic "а" for Latin "a"; "rn" for "m" does not apply here, "1" for "l" does.
        assert_eq!(confusable_with("c\u{0430}rol", existing), Some("carol"));
        assert_eq!(confusable_with("caro1", existing), Some("carol"));
        assert_eq!(confusable_with("CAROL", existing), Some("carol"));
        assert_eq!(confusable_with("carol", existing), None, "the same name");
        assert_eq!(confusable_with("cyril", existing), None);
    }
}
