//! Which web origins may send a project's events from a browser.
//!
//! An origin is what a browser sends in its `Origin` header: a scheme, a
//! host and a port (`https://shop.example`, `http://localhost:3000`). A
//! project either accepts any origin (the default) or lists the ones it
//! accepts; an entry may start its host with `*.` to accept every subdomain.

use std::fmt;

/// One accepted origin, or a family of subdomains (`https://*.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// Any strict subdomain of this domain.
    SubdomainsOf(String),
}

/// Why a string is not an origin pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an origin ({reason}); write it as a browser sends it, e.g. \"https://shop.example\" or \"https://*.example.com\"")]
pub struct InvalidOrigin {
    value: String,
    reason: &'static str,
}

impl OriginPattern {
    /// Parses `scheme://host[:port]`, with an optional leading `*.` on the host.
    pub fn parse(value: &str) -> Result<Self, InvalidOrigin> {
        let invalid = |reason| InvalidOrigin {
            value: value.to_owned(),
            reason,
        };
        let trimmed = value.trim().trim_end_matches('/');
        let (wildcard, url_text) = match trimmed.split_once("://*.") {
            Some((scheme, rest)) => (true, format!("{scheme}://{rest}")),
            None => (false, trimmed.to_owned()),
        };
        let url = url::Url::parse(&url_text).map_err(|_| invalid("it does not parse"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("an origin has no path, query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("an origin has no user or password"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| invalid("it has no host"))?
            .to_ascii_lowercase();
        let host = if wildcard {
            HostPattern::SubdomainsOf(host)
        } else {
            HostPattern::Exact(host)
        };
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host,
            port: url.port(),
        })
    }

    /// Whether a browser's `Origin` header value is accepted by this pattern.
    pub fn matches(&self, origin: &str) -> bool {
        let Some(sent) = SentOrigin::parse(origin) else {
            return false;
        };
        if sent.scheme != self.scheme || sent.port != self.port {
            return false;
        }
        match &self.host {
            HostPattern::Exact(host) => sent.host == *host,
            HostPattern::SubdomainsOf(domain) => sent
                .host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Exact(host) => host.clone(),
            HostPattern::SubdomainsOf(domain) => format!("*.{domain}"),
        };
        write!(f, "{}://{host}", self.scheme)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// The parts of an `Origin` header value, normalised as `url` does.
struct SentOrigin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl SentOrigin {
    fn parse(origin: &str) -> Option<Self> {
        let url = url::Url::parse(origin).ok()?;
        Some(Self {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port(),
        })
    }
}

/// The origins a project accepts browser events from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OriginPolicy {
    /// Any origin (the default: a tracking snippet works wherever it is pasted).
    #[default]
    Any,
    /// Only these.
    Only(Vec<OriginPattern>),
}

impl OriginPolicy {
    /// The policy of a list of patterns: an empty list accepts any origin.
    pub fn from_patterns(patterns: Vec<OriginPattern>) -> Self {
        if patterns.is_empty() {
            Self::Any
        } else {
            Self::Only(patterns)
        }
    }

    /// Whether a browser's `Origin` header value is accepted.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(patterns) => patterns.iter().any(|pattern| pattern.matches(origin)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(patterns: &[&str]) -> OriginPolicy {
        OriginPolicy::from_patterns(
            patterns
                .iter()
                .map(|p| OriginPattern::parse(p).unwrap())
                .collect(),
        )
    }

    #[test]
    fn an_empty_list_accepts_any_origin() {
        assert!(policy(&[]).allows("https://anywhere.example"));
        assert!(policy(&[]).allows("null"));
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let only = policy(&["https://shop.example", "http://localhost:3000/"]);
        assert!(only.allows("https://shop.example"));
        assert!(only.allows("https://SHOP.example"));
        assert!(only.allows("https://shop.example:443"), "default port");
        assert!(only.allows("http://localhost:3000"));
        assert!(!only.allows("http://shop.example"), "other scheme");
        assert!(!only.allows("https://shop.example:8443"), "other port");
        assert!(!only.allows("https://evil-shop.example"));
        assert!(!only.allows("https://shop.example.evil.test"));
        assert!(!only.allows("http://localhost:3001"));
        assert!(!only.allows("null"));
        assert!(!only.allows("not an origin"));
    }

    #[test]
    fn a_wildcard_accepts_subdomains_only() {
        let only = policy(&["https://*.example.com"]);
        assert!(only.allows("https://www.example.com"));
        assert!(only.allows("https://a.b.example.com"));
        assert!(
            !only.allows("https://example.com"),
            "the apex is listed on its own"
        );
        assert!(!only.allows("https://badexample.com"));
        assert!(!only.allows("http://www.example.com"));
    }

    #[test]
    fn patterns_that_are_not_origins_are_refused_with_the_reason() {
        for (value, reason) in [
            ("shop.example", "does not parse"),
            ("ftp://shop.example", "scheme"),
            ("https://shop.example/path", "no path"),
            ("https://user@shop.example", "no user"),
            ("https://shop.example?x=1", "no path, query"),
        ] {
            let error = OriginPattern::parse(value).unwrap_err().to_string();
            assert!(error.contains(reason), "{value}: {error}");
        }
    }

    #[test]
    fn patterns_print_as_they_are_written() {
        for value in [
            "https://*.example.com",
            "http://localhost:3000",
            "https://shop.example",
        ] {
            assert_eq!(OriginPattern::parse(value).unwrap().to_string(), value);
        }
    }
}
