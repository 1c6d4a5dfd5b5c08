//! Media types of `Content-Type` values: how every adapter reads them, with or without the
//! `cloudevents` feature (the HTTP runtime tells a CloudEvent from plain JSON by them in every
//! build).

use std::borrow::Cow;

/// The media type of a content type: lowercased, parameters dropped. Borrowed when it is
/// lowercase already, as it nearly always is.
pub fn media_type(content_type: &str) -> Option<Cow<'_, str>> {
    // Byte-wise: this runs on every request, and a header value's whitespace is ASCII (RFC 9110
    // §5.6.3, OWS).
    let end = content_type.find(';').unwrap_or(content_type.len());
    let essence = content_type[..end].trim_ascii();
    Some(if essence.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(essence.to_ascii_lowercase())
    } else {
        Cow::Borrowed(essence)
    })
}

/// Whether a media type is JSON: `application/json`, `text/json` or `*/*+json`.
pub fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type == "text/json" || media_type.ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_lowercased_without_parameters() {
        assert_eq!(
            media_type("Application/JSON; charset=utf-8").as_deref(),
            Some("application/json")
        );
        assert!(matches!(media_type("text/plain"), Some(Cow::Borrowed(_))));
        assert!(is_json("application/cloudevents+json"));
        assert!(!is_json("text/plain"));
    }
}
