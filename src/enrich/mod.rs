//! Enrichment at ingest: what an event's user agent, address, page and
//! referrer say of its visit ([`VisitFields`]), and whether it comes from
//! a bot. The HTTP routes and the Kafka consumer call the same
//! [`Enricher`] on every event before it is stored.

mod geo;
mod referrers;
mod user_agent;

use std::path::Path;

use crate::config::EnrichConfig;
use crate::domain::visit::{self, ChannelInputs, VisitFields};
use crate::domain::{Event, Project};

pub use geo::{Geo, GeoError, Location};
pub use referrers::{KnownSource, Referrers, ReferrersError};
pub use user_agent::{Agent, BotReason, UserAgents, UserAgentsError};

/// A data file that is present but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// The user-agent regexes.
    #[error(transparent)]
    UserAgents(#[from] UserAgentsError),
    /// The referrer list.
    #[error(transparent)]
    Referrers(#[from] ReferrersError),
    /// The GeoIP database.
    #[error(transparent)]
    Geo(#[from] GeoError),
}

/// What enrichment found about its data files, for the start-up log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Files that are configured but absent, each with what is lost.
    pub missing: Vec<String>,
}

/// Derives visit attributes; shared by every ingest path.
pub struct Enricher {
    agents: UserAgents,
    referrers: Referrers,
    geo: Option<Geo>,
    drop_bots: bool,
}

impl Enricher {
    /// Loads the configured data files. An absent file leaves its
    /// attributes unknown (listed in the [`Coverage`]); a file that does
    /// not load is an error.
    pub fn load(config: &EnrichConfig, drop_bots: bool) -> Result<(Self, Coverage), EnrichError> {
        let mut coverage = Coverage::default();
        let mut absent = |path: &Path, lost: &str| {
            let missing = !path.exists();
            if missing {
                coverage
                    .missing
                    .push(format!("{} is absent: {lost}", path.display()));
            }
            missing
        };
        let agents = if absent(
            &config.user_agent_regexes,
            "no browser, OS or device (bots are still recognised); `npm ci --prefix reference-data` installs it",
        ) {
            UserAgents::bots_only()
        } else {
            UserAgents::load(&config.user_agent_regexes)?
        };
        let referrers = if absent(
            &config.referrers,
            "sources are referrer domains, search and social channels unknown; `npm ci --prefix reference-data` installs it",
        ) {
            Referrers::default()
        } else {
            Referrers::load(&config.referrers)?
        };
        let geo = match &config.geoip_database {
            Some(path) if absent(path, "no location") => None,
            Some(path) => Some(Geo::open(path)?),
            None => None,
        };
        let enricher = Self {
            agents,
            referrers,
            geo,
            drop_bots,
        };
        Ok((enricher, coverage))
    }

    /// No data files: bots recognised by the built-in list, sources by
    /// domain only, no location.
    pub fn minimal(drop_bots: bool) -> Self {
        Self {
            agents: UserAgents::bots_only(),
            referrers: Referrers::default(),
            geo: None,
            drop_bots,
        }
    }

    /// Fills `event.visit`; answers why the event is to be dropped, when
    /// it comes from a bot and bots are dropped.
    pub fn enrich(&self, project: &Project, event: &mut Event) -> Option<BotReason> {
        let fields = &event.context_fields;
        let mut visit = VisitFields::default();
        let mut bot = None;
        if let Some(user_agent) = fields.user_agent.as_deref() {
            let agent = self.agents.parse(user_agent);
            visit.browser = agent.browser.clone();
            visit.browser_version = agent.browser_version.clone();
            visit.os = agent.os.clone();
            visit.os_version = agent.os_version.clone();
            visit.device = agent.device.map(|d| d.as_str().to_owned());
            bot = agent.bot;
        }
        if let (Some(geo), Some(ip)) = (&self.geo, fields.ip) {
            let location = geo.locate(ip);
            visit.country = location.country;
            visit.region = location.region;
            visit.city = location.city;
        }
        self.attribute_source(project, event, &mut visit);
        event.visit = visit;
        bot.filter(|_| self.drop_bots)
    }

    /// Referrer domain, source and channel.
    fn attribute_source(&self, project: &Project, event: &Event, visit: &mut VisitFields) {
        let fields = &event.context_fields;
        // Parsed once: the host, the source it names and its click ids.
        let page_url = fields
            .page_url
            .as_deref()
            .and_then(|url| url::Url::parse(url).ok());
        let page_host = page_url
            .as_ref()
            .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
        let referrer_host = fields
            .page_referrer
            .as_deref()
            .and_then(visit::referrer_host)
            .filter(|host| !visit::is_self_referral(host, page_host.as_deref(), &project.domains));
        let known = referrer_host
            .as_deref()
            .and_then(|h| self.referrers.lookup(h));
        let named = fields
            .campaign_source
            .clone()
            .or_else(|| page_url.as_ref().and_then(visit::url_source));
        let source = named
            .clone()
            .or_else(|| known.map(|k| k.name.clone()))
            .or_else(|| referrer_host.clone());
        // A source named in the URL is looked up too (utm_source=google).
        let category = known.and_then(|k| k.category).or_else(|| {
            let name = named.as_deref()?.to_ascii_lowercase();
            self.referrers
                .lookup(&name)
                .or_else(|| self.referrers.lookup(&format!("{name}.com")))?
                .category
        });
        visit.referrer_domain = referrer_host.clone();
        visit.source = source.clone();
        if fields.page_url.is_none() && referrer_host.is_none() && source.is_none() {
            // Not sent from a page (a server's or an app's event): no channel.
            return;
        }
        let channel = visit::channel(&ChannelInputs {
            source: source.as_deref(),
            category,
            medium: fields.campaign_medium.as_deref(),
            campaign: fields.campaign_name.as_deref(),
            has_referrer: referrer_host.is_some(),
            has_click_id: page_url.as_ref().is_some_and(visit::has_click_id),
        });
        visit.channel = Some(channel.as_str().to_owned());
    }
}
