//! The text rules shared by names, addresses and descriptions.

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
}
