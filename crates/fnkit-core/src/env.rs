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
    #[cfg(target_os = "linux")]
    return from_value(environ::get(name));
    #[cfg(not(target_os = "linux"))]
    from_value(std::env::var(name).ok())
}

/// A lookup in the process environment without `std::env::var`'s costs: no copy of the name
/// into a C string, and no C `getenv`, whose `strncmp` loop over every variable was a quarter of
/// `hello`'s instructions from exec to its first answer (23 lookups, 33,129 instructions of
/// 143,657; callgrind, BENCHMARKS.md). This compares the name with each `NAME=value` entry byte by
/// byte, most of them stopping at the first byte.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod environ {
    use std::ffi::{c_char, CStr};

    extern "C" {
        /// The C library's environment: a null-terminated array of `NAME=value` C strings
        /// (POSIX; glibc and musl both export it).
        static environ: *const *const c_char;
    }

    /// The value of `name`, copied, when set and UTF-8.
    pub(super) fn get(name: &str) -> Option<String> {
        let name = name.as_bytes();
        // One pass over the (short) name: `contains` twice was two `memchr` calls per lookup.
        if name.is_empty() || name.iter().any(|&b| b == b'=' || b == 0) {
            return None;
        }
        // SAFETY: `environ` and the strings it points to are read as C's `getenv` reads them.
        // They change only through `setenv`/`putenv` (std's `set_var`, `remove_var`), which
        // std documents as unsound while another thread reads the environment other than
        // through std::env; a caller of those functions already guarantees that no such read
        // runs concurrently. Each entry is NUL-terminated, and a comparison stops at the
        // first byte that differs, so no read goes past an entry's NUL. The value is copied
        // before the entry can change.
        unsafe {
            let mut entry = environ;
            if entry.is_null() {
                return None;
            }
            while !(*entry).is_null() {
                let bytes = (*entry).cast::<u8>();
                // Most entries differ in their first byte: one compare each.
                let same = *bytes == name[0]
                    && name[1..]
                        .iter()
                        .enumerate()
                        .all(|(i, &b)| *bytes.add(i + 1) == b);
                if same && *bytes.add(name.len()) == b'=' {
                    let value = CStr::from_ptr((*entry).add(name.len() + 1));
                    return value.to_str().ok().map(str::to_owned);
                }
                entry = entry.add(1);
            }
        }
        None
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn it_agrees_with_std_on_this_process_s_environment() {
            let mut compared = 0;
            for (name, value) in std::env::vars_os() {
                let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
                    continue;
                };
                assert_eq!(super::get(name).as_deref(), Some(value), "{name}");
                compared += 1;
            }
            assert!(compared > 0, "no UTF-8 variable to compare");
            assert_eq!(super::get("FNKIT_SURELY_UNSET_VARIABLE"), None);
            assert_eq!(super::get(""), None);
            assert_eq!(super::get("PATH=x"), None);
        }

        #[test]
        fn a_name_that_is_a_prefix_of_another_is_not_confused_with_it() {
            // PATH is set in any test environment; PAT and PATHX are not (or differ).
            let path = std::env::var("PATH").expect("PATH");
            assert_eq!(super::get("PATH"), Some(path));
            assert_eq!(super::get("PAT"), std::env::var("PAT").ok());
            assert_eq!(super::get("PATHX"), std::env::var("PATHX").ok());
        }
    }
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
