//! Cookieless visitors: a browser that sends no id of its own is known by a
//! keyed hash of a secret salt, the project, its address and its user
//! agent. The salt changes every UTC day and is deleted two days later, so
//! a visitor cannot be followed from one day to the next, and neither the
//! address nor the user agent can be read back from the id.

use std::net::IpAddr;

use chrono::NaiveDate;

/// A day's secret salt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Salt(pub [u8; 16]);

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(..)")
    }
}

impl Salt {
    /// The salt written as hex, as it is stored.
    pub fn to_hex(self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Reads a stored salt; `None` when the text is not 32 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 32 {
            return None;
        }
        let mut bytes = [0_u8; 16];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
        }
        Some(Salt(bytes))
    }
}

/// The name under which the salt of `day` is stored.
pub fn salt_setting(day: NaiveDate) -> String {
    format!("visitor_salt:{day}")
}

/// A visitor's id under `salt`: 32 hex digits of SipHash-2-4 (128 bits)
/// keyed by the salt, over the project, the address and the user agent.
pub fn visitor_id(salt: Salt, project: &str, ip: Option<IpAddr>, user_agent: &str) -> String {
    use std::hash::Hasher;
    let mut hasher = siphasher::sip128::SipHasher24::new_with_key(&salt.0);
    for part in [project.as_bytes(), &[0], user_agent.as_bytes(), &[0]] {
        hasher.write(part);
    }
    match ip {
        Some(IpAddr::V4(ip)) => hasher.write(&ip.octets()),
        Some(IpAddr::V6(ip)) => hasher.write(&ip.octets()),
        None => {}
    }
    let hash = siphasher::sip128::Hasher128::finish128(&hasher);
    format!("{:016x}{:016x}", hash.h1, hash.h2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_by_salt_project_address_and_agent_and_repeat_otherwise() {
        let salt = Salt([7; 16]);
        let ip = Some("203.0.113.5".parse().unwrap());
        let id = visitor_id(salt, "shop", ip, "UA");
        assert_eq!(id.len(), 32);
        assert_eq!(id, visitor_id(salt, "shop", ip, "UA"));
        assert_ne!(id, visitor_id(Salt([8; 16]), "shop", ip, "UA"));
        assert_ne!(id, visitor_id(salt, "blog", ip, "UA"));
        assert_ne!(
            id,
            visitor_id(salt, "shop", Some("203.0.113.6".parse().unwrap()), "UA")
        );
        assert_ne!(id, visitor_id(salt, "shop", ip, "UA2"));
    }

    #[test]
    fn salts_round_trip_through_their_stored_text() {
        let salt = Salt([0xab; 16]);
        assert_eq!(Salt::from_hex(&salt.to_hex()), Some(salt));
        assert_eq!(Salt::from_hex("xyz"), None);
        assert_eq!(
            salt_setting(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()),
            "visitor_salt:2026-12-01"
        );
    }
}
