//! The one rule for reading the process environment.

/// The value of the environment variable `name`, trimmed, or `None` when it is unset, empty,
/// only white space, or not UTF-8.
///
/// Every fnkit setting is read through this one rule, on every platform: a variable set to an
/// empty value (`PORT=` in a manifest, an empty `K_SERVICE`) counts as unset, so it never selects
/// a platform nor fails to parse.
///
/// ```
/// assert_eq!(fnkit_core::adapter::env_var("FNKIT_SURELY_UNSET_VARIABLE"), None);
/// ```
pub fn env_var(name: &str) -> Option<String> {
    from_value(std::env::var(name).ok())
}

/// [`env_var`]'s rule, applied to a value already looked up.
pub(crate) fn from_value(value: Option<String>) -> Option<String> {
    let value = value?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == value.len() {
        Some(value)
    } else {
        Some(trimmed.to_owned())
    }
}

/// A variable lookup over fixed pairs, for tests of code that takes `impl Fn(&str) ->
/// Option<String>`. It applies [`env_var`]'s rule, as the real environment would.
///
/// ```
/// let env = fnkit_core::adapter::env_from(&[("PORT", "9000"), ("K_SERVICE", " ")]);
/// assert_eq!(env("PORT").as_deref(), Some("9000"));
/// assert_eq!(env("K_SERVICE"), None);
/// assert_eq!(env("HOME"), None);
/// ```
pub fn env_from<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        let value = pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned());
        from_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_blank_values_are_unset_and_values_are_trimmed() {
        assert_eq!(from_value(None), None);
        assert_eq!(from_value(Some(String::new())), None);
        assert_eq!(from_value(Some(" \t\n".into())), None);
        assert_eq!(from_value(Some(" 8080 ".into())).as_deref(), Some("8080"));
        assert_eq!(from_value(Some("lambda".into())).as_deref(), Some("lambda"));
    }
}
