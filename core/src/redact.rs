//! What a log line or an error may show of a secret-bearing value.

/// `url` with the password of its user-info part (`redis://user:PASSWORD@host`) shown as
/// `***`: what logs and errors may print of a Redis URL.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The user info ends at the last '@' before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split_once(':').map_or(&rest[..at], |(u, _)| u);
            let hidden = if rest[..at].contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{}", &rest[at + 1..])
        }
        None => url.to_string(),
    }
}
