//! What an event tells of its visit: the visitor's device, location and
//! traffic source, derived at ingest and stored with the event so that
//! reports group and filter on them as on any column.
//!
//! The derivations that need no data file live here: the referrer's domain,
//! self-referrals, the source named by the page's URL, and the acquisition
//! channel (Plausible's grouping, itself after Google Analytics' default
//! channel grouping).

use crate::query::VisitAttribute;

/// The visit attributes stored with an event; `None` where unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct VisitFields {
    /// Browser family (`Chrome`, `Firefox`, `Mobile Safari`, ...).
    pub browser: Option<String>,
    /// Browser version, major and minor (`124.0`).
    pub browser_version: Option<String>,
    /// Operating system family (`Windows`, `Mac OS X`, `iOS`, `Android`, ...).
    pub os: Option<String>,
    /// Operating system version (`10`, `14.4`).
    pub os_version: Option<String>,
    /// `desktop`, `mobile`, `tablet` or `bot`.
    pub device: Option<String>,
    /// ISO 3166-1 alpha-2 country code (`DE`).
    pub country: Option<String>,
    /// First subdivision, as ISO 3166-2 (`DE-BE`).
    pub region: Option<String>,
    /// City name, in English.
    pub city: Option<String>,
    /// The referrer's host without `www.`, unless it is the site itself.
    pub referrer_domain: Option<String>,
    /// The traffic source: named by the URL (`utm_source`, `ref`,
    /// `source`), else by the referrer list, else the referrer's domain.
    pub source: Option<String>,
    /// The acquisition channel ([`Channel`]).
    pub channel: Option<String>,
}

/// The stored columns of the visit attributes, in [`VisitFields::columns`] order.
pub const COLUMNS: [&str; 11] = [
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "country",
    "region",
    "city",
    "referrer_domain",
    "source",
    "channel",
];

impl VisitFields {
    /// Each attribute under its column's name.
    pub fn columns(&self) -> [(&'static str, Option<&str>); 11] {
        let values = [
            &self.browser,
            &self.browser_version,
            &self.os,
            &self.os_version,
            &self.device,
            &self.country,
            &self.region,
            &self.city,
            &self.referrer_domain,
            &self.source,
            &self.channel,
        ];
        std::array::from_fn(|i| (COLUMNS[i], values[i].as_deref()))
    }

    /// The value of a device or location attribute.
    pub fn attribute(&self, attribute: VisitAttribute) -> Option<&str> {
        match attribute {
            VisitAttribute::Browser => self.browser.as_deref(),
            VisitAttribute::BrowserVersion => self.browser_version.as_deref(),
            VisitAttribute::Os => self.os.as_deref(),
            VisitAttribute::OsVersion => self.os_version.as_deref(),
            VisitAttribute::Device => self.device.as_deref(),
            VisitAttribute::Country => self.country.as_deref(),
            VisitAttribute::Region => self.region.as_deref(),
            VisitAttribute::City => self.city.as_deref(),
        }
    }

    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.columns().iter().all(|(_, value)| value.is_none())
    }
}

/// The kinds of device a visit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// A computer.
    Desktop,
    /// A phone.
    Mobile,
    /// A tablet.
    Tablet,
    /// A crawler or other automated client.
    Bot,
}

impl Device {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Bot => "bot",
        }
    }
}

/// The host of a referrer URL, lowercase and without a leading `www.`;
/// `None` for no referrer, one that does not parse, or a non-web scheme.
/// RudderStack's `$direct` marker counts as no referrer.
pub fn referrer_host(referrer: &str) -> Option<String> {
    let referrer = referrer.trim();
    if referrer.is_empty() || referrer == "$direct" {
        return None;
    }
    let url = url::Url::parse(referrer).ok()?;
    if !matches!(url.scheme(), "http" | "https" | "android-app") {
        return None;
    }
    Some(bare_host(url.host_str()?))
}

/// A host as sites are compared: lower case, without `www.`.
pub fn bare_host(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    match host.strip_prefix("www.") {
        Some(rest) => rest.to_owned(),
        None => host,
    }
}

/// Whether a referrer host is the site itself: the page's own host, or one
/// of the project's domains or their subdomains.
pub fn is_self_referral(host: &str, page_host: Option<&str>, site_domains: &[String]) -> bool {
    if page_host.is_some_and(|page| bare_host(page) == host) {
        return true;
    }
    site_domains.iter().any(|domain| {
        let domain = bare_host(domain);
        host == domain
            || host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.ends_with('.'))
    })
}

/// The source a page's URL names: `utm_source`, else `ref`, else `source`
/// (Plausible reads the same three).
pub fn url_source(url: &url::Url) -> Option<String> {
    let mut found: [Option<String>; 3] = [None, None, None];
    for (key, value) in url.query_pairs() {
        let slot = match key.as_ref() {
            "utm_source" => 0,
            "ref" => 1,
            "source" => 2,
            _ => continue,
        };
        let value = value.trim();
        if !value.is_empty() && found[slot].is_none() {
            found[slot] = Some(value.to_owned());
        }
    }
    found.into_iter().flatten().next()
}

/// What a referrer list says of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCategory {
    /// A search engine.
    Search,
    /// A social network (forums and link aggregators included).
    Social,
    /// A webmail or newsletter service.
    Email,
    /// An advertising network.
    Paid,
    /// A video platform.
    Video,
    /// A shopping site.
    Shopping,
}

/// The acquisition channels, in Plausible's grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A campaign across networks (`cross-network` in its name).
    CrossNetwork,
    /// Paid shopping campaigns.
    PaidShopping,
    /// Paid search ads (a search source with a paid medium, or a click id).
    PaidSearch,
    /// Paid social ads.
    PaidSocial,
    /// Paid video ads.
    PaidVideo,
    /// Display advertising (`display`, `banner`, `cpm`, ...).
    Display,
    /// Other paid traffic.
    PaidOther,
    /// Shopping sites without payment.
    OrganicShopping,
    /// Social networks without payment.
    OrganicSocial,
    /// Video platforms without payment.
    OrganicVideo,
    /// Search engines without payment.
    OrganicSearch,
    /// Email.
    Email,
    /// Affiliate links (`utm_medium=affiliate`).
    Affiliates,
    /// Audio ads and podcasts (`utm_medium=audio`).
    Audio,
    /// Text messages.
    Sms,
    /// Mobile push notifications.
    MobilePushNotifications,
    /// Any other site linking here.
    Referral,
    /// No referrer and no campaign.
    Direct,
}

impl Channel {
    /// The stored name, as Plausible shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::CrossNetwork => "Cross-network",
            Channel::PaidShopping => "Paid Shopping",
            Channel::PaidSearch => "Paid Search",
            Channel::PaidSocial => "Paid Social",
            Channel::PaidVideo => "Paid Video",
            Channel::Display => "Display",
            Channel::PaidOther => "Paid Other",
            Channel::OrganicShopping => "Organic Shopping",
            Channel::OrganicSocial => "Organic Social",
            Channel::OrganicVideo => "Organic Video",
            Channel::OrganicSearch => "Organic Search",
            Channel::Email => "Email",
            Channel::Affiliates => "Affiliates",
            Channel::Audio => "Audio",
            Channel::Sms => "SMS",
            Channel::MobilePushNotifications => "Mobile Push Notifications",
            Channel::Referral => "Referral",
            Channel::Direct => "Direct",
        }
    }
}

/// What the channel of a visit is decided from.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChannelInputs<'a> {
    /// The source, as stored ([`VisitFields::source`]).
    pub source: Option<&'a str>,
    /// What the referrer list says of the source.
    pub category: Option<SourceCategory>,
    /// `utm_medium`.
    pub medium: Option<&'a str>,
    /// `utm_campaign`.
    pub campaign: Option<&'a str>,
    /// Whether a referrer from another site was sent.
    pub has_referrer: bool,
    /// Whether the URL carries an ad click id (`gclid`, `msclkid`, ...).
    pub has_click_id: bool,
}

/// The acquisition channel of a visit, by the first rule that applies, in
/// Plausible's order: campaigns and paid media first, then what the
/// source is, then mediums, then any referrer, else direct.
pub fn channel(inputs: &ChannelInputs<'_>) -> Channel {
    let medium = inputs.medium.unwrap_or("").to_ascii_lowercase();
    let campaign = inputs.campaign.unwrap_or("").to_ascii_lowercase();
    let source = inputs.source.unwrap_or("").to_ascii_lowercase();
    let category = inputs.category;
    let paid_medium = medium.contains("cp")
        || medium == "ppc"
        || medium == "retargeting"
        || medium.starts_with("paid");
    let shopping = category == Some(SourceCategory::Shopping) || is_shopping_campaign(&campaign);
    let search = category == Some(SourceCategory::Search);
    let social = category == Some(SourceCategory::Social);
    let video = category == Some(SourceCategory::Video);
    let email_word = |text: &str| {
        matches!(text, "email" | "e-mail" | "e_mail" | "e mail") || text.contains("newsletter")
    };

    if campaign.contains("cross-network") {
        Channel::CrossNetwork
    } else if shopping && paid_medium {
        Channel::PaidShopping
    } else if search && (paid_medium || inputs.has_click_id) {
        Channel::PaidSearch
    } else if social && paid_medium {
        Channel::PaidSocial
    } else if video && paid_medium {
        Channel::PaidVideo
    } else if matches!(
        medium.as_str(),
        "display" | "banner" | "expandable" | "interstitial" | "cpm"
    ) {
        Channel::Display
    } else if paid_medium || category == Some(SourceCategory::Paid) || inputs.has_click_id {
        Channel::PaidOther
    } else if shopping {
        Channel::OrganicShopping
    } else if social
        || matches!(
            medium.as_str(),
            "social" | "social-network" | "social-media" | "sm" | "social network" | "social media"
        )
    {
        Channel::OrganicSocial
    } else if video || medium.contains("video") {
        Channel::OrganicVideo
    } else if search || medium == "organic" {
        Channel::OrganicSearch
    } else if category == Some(SourceCategory::Email) || email_word(&source) || email_word(&medium)
    {
        Channel::Email
    } else if medium == "affiliate" {
        Channel::Affiliates
    } else if medium == "audio" {
        Channel::Audio
    } else if source == "sms" || medium == "sms" {
        Channel::Sms
    } else if medium.ends_with("push")
        || medium.contains("mobile")
        || medium.contains("notification")
    {
        Channel::MobilePushNotifications
    } else if inputs.has_referrer
        || matches!(medium.as_str(), "referral" | "app" | "link")
        || !source.is_empty()
    {
        Channel::Referral
    } else {
        Channel::Direct
    }
}

/// Google's rule for shopping campaigns: `shop` or `shopping` as a word start.
fn is_shopping_campaign(campaign: &str) -> bool {
    campaign.contains("shopping")
        || campaign.match_indices("shop").any(|(at, _)| {
            at == 0
                || !campaign[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_lowercase() && c != 'e')
        })
}

/// Whether a page URL carries a search ad network's click id (Google's or
/// Microsoft's; Facebook's `fbclid` marks organic clicks as well).
pub fn has_click_id(url: &url::Url) -> bool {
    url.query_pairs().any(|(key, _)| {
        matches!(
            key.as_ref(),
            "gclid" | "gbraid" | "wbraid" | "dclid" | "msclkid"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).unwrap()
    }

    #[test]
    fn referrer_hosts_drop_www_and_ignore_what_is_no_referrer() {
        assert_eq!(
            referrer_host("https://www.Google.com/search?q=x").as_deref(),
            Some("google.com")
        );
        assert_eq!(
            referrer_host("https://news.ycombinator.com/item?id=1").as_deref(),
            Some("news.ycombinator.com")
        );
        for none in [
            "",
            "$direct",
            "not a url",
            "chrome://newtab",
            "file:///tmp/a",
        ] {
            assert_eq!(referrer_host(none), None, "{none}");
        }
    }

    #[test]
    fn the_sites_own_hosts_are_self_referrals() {
        let domains = vec!["shop.example".to_owned()];
        assert!(is_self_referral("shop.example", None, &domains));
        assert!(is_self_referral("blog.shop.example", None, &domains));
        assert!(is_self_referral(
            "other.test",
            Some("www.other.test"),
            &domains
        ));
        assert!(!is_self_referral("notshop.example", None, &domains));
        assert!(!is_self_referral(
            "google.com",
            Some("shop.example"),
            &domains
        ));
    }

    #[test]
    fn the_url_names_its_source_by_utm_source_then_ref_then_source() {
        assert_eq!(
            url_source(&url("https://s.example/?ref=hn&utm_source=newsletter")).as_deref(),
            Some("newsletter")
        );
        assert_eq!(
            url_source(&url("https://s.example/?source=x&ref=producthunt")).as_deref(),
            Some("producthunt")
        );
        assert_eq!(url_source(&url("https://s.example/?utm_source=&q=1")), None);
    }

    fn of(inputs: ChannelInputs<'_>) -> &'static str {
        channel(&inputs).as_str()
    }

    #[test]
    fn channels_follow_plausibles_grouping() {
        let search = Some(SourceCategory::Search);
        let social = Some(SourceCategory::Social);
        let referred = |category| ChannelInputs {
            category,
            has_referrer: true,
            ..ChannelInputs::default()
        };
        assert_eq!(of(ChannelInputs::default()), "Direct");
        assert_eq!(of(referred(None)), "Referral");
        assert_eq!(of(referred(search)), "Organic Search");
        assert_eq!(of(referred(social)), "Organic Social");
        assert_eq!(of(referred(Some(SourceCategory::Email))), "Email");
        assert_eq!(
            of(ChannelInputs {
                medium: Some("cpc"),
                ..referred(search)
            }),
            "Paid Search"
        );
        assert_eq!(
            of(ChannelInputs {
                has_click_id: true,
                ..referred(search)
            }),
            "Paid Search"
        );
        assert_eq!(
            of(ChannelInputs {
                medium: Some("paid_social"),
                ..referred(social)
            }),
            "Paid Social"
        );
        let tagged = |medium, source| ChannelInputs {
            medium: Some(medium),
            source: Some(source),
            ..ChannelInputs::default()
        };
        assert_eq!(of(tagged("banner", "ads")), "Display");
        assert_eq!(of(tagged("cpc", "somewhere")), "Paid Other");
        assert_eq!(of(tagged("email", "weekly")), "Email");
        assert_eq!(of(tagged("affiliate", "partner")), "Affiliates");
        assert_eq!(of(tagged("sms", "twilio")), "SMS");
        assert_eq!(of(tagged("push", "app")), "Mobile Push Notifications");
        assert_eq!(of(tagged("social", "mastodon")), "Organic Social");
        assert_eq!(of(tagged("", "partner")), "Referral");
        assert_eq!(
            of(ChannelInputs {
                campaign: Some("spring-cross-network"),
                ..tagged("cpc", "google")
            }),
            "Cross-network"
        );
        assert_eq!(
            of(ChannelInputs {
                campaign: Some("summer shopping"),
                ..tagged("cpc", "google")
            }),
            "Paid Shopping"
        );
    }

    #[test]
    fn ad_click_ids_are_recognised() {
        assert!(has_click_id(&url("https://s.example/?gclid=abc")));
        assert!(has_click_id(&url("https://s.example/?x=1&msclkid=abc")));
        assert!(!has_click_id(&url("https://s.example/?q=1")));
    }
}
