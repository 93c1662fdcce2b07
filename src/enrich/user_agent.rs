//! Browser, operating system and device from a user agent: uap-core's
//! regexes (through the `ua-parser` crate) and the `isbot` crate's list of
//! automated clients, with the answers cached by user-agent string.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use crate::domain::visit::Device;

/// Distinct user agents kept parsed; past it, the cache starts over.
const CACHE_CAPACITY: usize = 20_000;

/// What a user agent says of its client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    /// Browser family; `None` for uap's `Other`.
    pub browser: Option<String>,
    /// `major.minor` of the browser.
    pub browser_version: Option<String>,
    /// Operating system family; `None` for `Other`.
    pub os: Option<String>,
    /// `major[.minor]` of the operating system.
    pub os_version: Option<String>,
    /// The kind of device.
    pub device: Option<Device>,
    /// Why it is taken for an automated client, if it is.
    pub bot: Option<BotReason>,
}

/// Why a user agent is taken for an automated client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotReason {
    /// On the list of crawlers, headless browsers, monitors and HTTP libraries.
    KnownBot,
    /// uap-core recognises a spider.
    Spider,
}

impl BotReason {
    /// The label value of the dropped-events metric.
    pub fn as_str(self) -> &'static str {
        match self {
            BotReason::KnownBot => "bot_user_agent",
            BotReason::Spider => "bot_spider",
        }
    }
}

/// Why the regexes file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UserAgentsError {
    /// Reading the file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not uap-core's format.
    #[error("{path} is not uap-core's regexes.yaml: {message}")]
    Format {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
}

/// Parses user agents; cheap to share.
pub struct UserAgents {
    extractor: Option<Arc<ua_parser::Extractor<'static>>>,
    bots: isbot::Bots,
    cache: RwLock<HashMap<String, Arc<Agent>, foldhash::fast::RandomState>>,
}

impl UserAgents {
    /// Loads uap-core's regexes from `path`. Compiling them takes a
    /// quarter of a second, so a process compiles each file once (per
    /// modification time) and shares the result.
    pub fn load(path: &Path) -> Result<Self, UserAgentsError> {
        type Compiled = HashMap<(PathBuf, Option<SystemTime>), Arc<ua_parser::Extractor<'static>>>;
        static COMPILED: OnceLock<Mutex<Compiled>> = OnceLock::new();
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let key = (path.to_path_buf(), modified);
        let compiled = COMPILED.get_or_init(Mutex::default);
        let mut compiled = compiled.lock().unwrap_or_else(|e| e.into_inner());
        let extractor = match compiled.get(&key) {
            Some(extractor) => extractor.clone(),
            None => {
                let extractor = Arc::new(compile(path)?);
                compiled.insert(key, extractor.clone());
                extractor
            }
        };
        Ok(Self::with(Some(extractor)))
    }

    /// Only the bot list: no browser, OS or device names.
    pub fn bots_only() -> Self {
        Self::with(None)
    }

    fn with(extractor: Option<Arc<ua_parser::Extractor<'static>>>) -> Self {
        Self {
            extractor,
            bots: isbot::Bots::default(),
            cache: RwLock::new(HashMap::default()),
        }
    }

    /// What `user_agent` says, parsed once per distinct string.
    pub fn parse(&self, user_agent: &str) -> Arc<Agent> {
        if let Some(agent) = self
            .cache
            .read()
            .ok()
            .and_then(|c| c.get(user_agent).cloned())
        {
            return agent;
        }
        let agent = Arc::new(self.parse_uncached(user_agent));
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(user_agent.to_owned(), agent.clone());
        }
        agent
    }

    fn parse_uncached(&self, user_agent: &str) -> Agent {
        let mut agent = Agent::default();
        let mut spider = false;
        if let Some(extractor) = &self.extractor {
            let (browser, os, device) = extractor.extract(user_agent);
            if let Some(browser) = browser.filter(|b| b.family != "Other") {
                agent.browser_version = version(browser.major, browser.minor);
                agent.browser = Some(browser.family.into_owned());
            }
            if let Some(os) = os.filter(|o| o.os != "Other") {
                agent.os_version = version(os.major.as_deref(), os.minor.as_deref());
                agent.os = Some(os.os.into_owned());
            }
            let device_family = device.map(|d| d.device.into_owned());
            spider = device_family.as_deref() == Some("Spider");
            agent.device = Some(device_kind(
                user_agent,
                agent.os.as_deref(),
                device_family.as_deref(),
            ));
        }
        agent.bot = if self.bots.is_bot(user_agent) {
            Some(BotReason::KnownBot)
        } else if spider {
            Some(BotReason::Spider)
        } else {
            None
        };
        if agent.bot.is_some() {
            agent.device = Some(Device::Bot);
        }
        agent
    }
}

/// Reads and compiles uap-core's regexes.
fn compile(path: &Path) -> Result<ua_parser::Extractor<'static>, UserAgentsError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| UserAgentsError::Read {
        path: name.clone(),
        source,
    })?;
    let format = |message: String| UserAgentsError::Format {
        path: name.clone(),
        message,
    };
    let regexes: ua_parser::Regexes<'static> =
        serde_norway::from_str(&text).map_err(|e| format(e.to_string()))?;
    ua_parser::Extractor::try_from(regexes).map_err(|e| format(e.to_string()))
}

fn version(major: Option<&str>, minor: Option<&str>) -> Option<String> {
    let major = major.filter(|m| !m.is_empty())?;
    Some(match minor.filter(|m| !m.is_empty()) {
        Some(minor) => format!("{major}.{minor}"),
        None => major.to_owned(),
    })
}

/// Desktop, phone or tablet, from the OS and device uap names and the
/// markers browsers put in their user agents (`Mobile`, `Tablet`).
fn device_kind(user_agent: &str, os: Option<&str>, device: Option<&str>) -> Device {
    let device = device.unwrap_or("");
    let tablet_device = ["iPad", "Tablet", "Kindle", "Nexus 7", "Nexus 9", "Nexus 10"]
        .iter()
        .any(|marker| device.contains(marker));
    if tablet_device || user_agent.contains("Tablet") {
        return Device::Tablet;
    }
    match os {
        Some("Android") if !user_agent.contains("Mobile") => Device::Tablet,
        Some("iOS" | "Android" | "Windows Phone" | "BlackBerry OS" | "KaiOS" | "Firefox OS") => {
            Device::Mobile
        }
        _ if user_agent.contains("Mobi") => Device::Mobile,
        _ => Device::Desktop,
    }
}
