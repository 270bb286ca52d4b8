//! The text rules shared by names, addresses and descriptions, and the forms in which names
//! are compared for uniqueness.
//!
//! Names are what portals show and operators pick from, so two names must not look alike:
//! names refuse format and bidi control characters (Unicode category Cf: zero width space,
//! right-to-left override, byte order mark, isolates...), and uniqueness compares a normalized
//! form, while the name is stored and looked up exactly as given.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::error::{Error, Result};

/// 1..=max characters, no control characters. With `trimmed`, no space at either end either.
pub fn check(field: &str, value: &str, max: usize, trimmed: bool) -> Result<()> {
    let count = value.chars().count();
    if count == 0 {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    if count > max {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {max} characters (got {count})"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    if trimmed && value.trim() != value {
        return Err(Error::invalid(
            field,
            format!("{field} must not begin or end with white space"),
        ));
    }
    Ok(())
}

/// A name: the rules of [`check`] with no space at either end, and no format or bidi control
/// characters.
pub fn check_name(field: &str, value: &str, max: usize) -> Result<()> {
    check(field, value, max, true)?;
    if let Some(c) = value
        .chars()
        .find(|c| c.general_category() == GeneralCategory::Format)
    {
        return Err(Error::invalid(
            field,
            format!(
                "{field} must not contain invisible format characters (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// The form in which platform names are compared: NFC, so that the same text typed with
/// precomposed or combining accents is one name.
pub fn canonical_key(name: &str) -> String {
    name.nfc().collect()
}

/// The form in which user names are compared: Unicode compatibility caseless matching (NFKD
/// and default case folding), so that `admin`, `Admin` and `ａｄｍｉｎ` are one name.
pub fn caseless_key(name: &str) -> String {
    name.chars()
        .nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkd()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_not_bytes() {
        assert!(check("name", &"é".repeat(80), 80, true).is_ok());
        assert!(check("name", &"é".repeat(81), 80, true).is_err());
        assert!(check("name", "", 80, true).is_err());
    }

    #[test]
    fn refuses_control_characters_and_outer_space() {
        assert_eq!(
            check("name", "a\u{7}b", 80, true).unwrap_err().field(),
            Some("name")
        );
        assert!(check("name", " a", 80, true).is_err());
        assert!(check("description", " a ", 80, false).is_ok());
    }

    #[test]
    fn names_refuse_format_characters() {
        for bad in [
            "a\u{200B}b",
            "\u{202E}cer",
            "\u{FEFF}a",
            "a\u{2066}b\u{2069}",
            "a\u{AD}b",
        ] {
            assert_eq!(
                check_name("name", bad, 80).unwrap_err().field(),
                Some("name"),
                "{bad:?}"
            );
        }
        assert!(check_name("name", "Ωmega é 🎙️", 80).is_ok());
    }

    #[test]
    fn keys_join_what_looks_the_same() {
        assert_eq!(canonical_key("Cafe\u{301} Rec"), canonical_key("Café Rec"));
        assert_ne!(canonical_key("Café Rec"), canonical_key("cafe rec"));
        let admin = caseless_key("admin");
        for same in ["Admin", "ADMIN", "ａｄｍｉｎ"] {
            assert_eq!(caseless_key(same), admin, "{same}");
        }
        assert_ne!(caseless_key("admin2"), admin);
        assert_eq!(caseless_key("Straße"), caseless_key("STRASSE"));
    }
}
