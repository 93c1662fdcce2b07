//! Cookieless visitor ids ([`crate::domain::visitor`]) with their salts:
//! one per UTC day, created by whichever instance needs it first and stored
//! as a setting (so every instance and every restart of a day agrees),
//! deleted two days later. A visit that crosses midnight keeps the id the
//! previous day's salt gave it, while its visitor stays within the session
//! timeout (remembered in memory, so a restart at midnight splits it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::error::AppError;
use crate::domain::visitor::{salt_setting, visitor_id, Salt};
use crate::domain::Project;
use crate::storage::Repository;

/// Salts older than this many days are deleted at each rotation (the
/// service may have been down on some of the days between).
const DELETE_BACK_DAYS: u64 = 9;

/// Ids remembered for continuity across midnight; beyond it, those older
/// than an hour are forgotten.
const REMEMBERED_IDS: usize = 200_000;

#[derive(Clone, Copy)]
struct DaySalts {
    day: NaiveDate,
    today: Salt,
    yesterday: Salt,
}

/// Hands out visitor ids.
pub struct VisitorIds {
    repository: Arc<dyn Repository>,
    salts: tokio::sync::Mutex<Option<DaySalts>>,
    /// Id -> when it was last handed out, in microseconds.
    last_seen: Mutex<HashMap<String, i64>>,
}

impl VisitorIds {
    /// Ids whose salts live in `repository`'s settings.
    pub fn new(repository: Arc<dyn Repository>) -> Self {
        Self {
            repository,
            salts: tokio::sync::Mutex::new(None),
            last_seen: Mutex::new(HashMap::new()),
        }
    }

    /// The id of the visitor at `ip` with `user_agent` in `project`, at `now`.
    pub async fn id(
        &self,
        project: &Project,
        ip: Option<IpAddr>,
        user_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<String, AppError> {
        let salts = self.salts_of(now.date_naive()).await?;
        let today = visitor_id(salts.today, &project.id, ip, user_agent);
        let yesterday = visitor_id(salts.yesterday, &project.id, ip, user_agent);
        let now_us = now.timestamp_micros();
        let timeout_us = project
            .session_timeout
            .num_microseconds()
            .unwrap_or(i64::MAX);
        let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        let continues = |id: &str| {
            seen.get(id)
                .is_some_and(|last| now_us.saturating_sub(*last) <= timeout_us)
        };
        let chosen = if !continues(&today) && continues(&yesterday) {
            yesterday
        } else {
            today
        };
        if seen.len() >= REMEMBERED_IDS {
            let hour_us = 3_600_000_000;
            seen.retain(|_, last| now_us.saturating_sub(*last) <= hour_us);
        }
        seen.insert(chosen.clone(), now_us);
        Ok(chosen)
    }

    /// The salts of `day` and the day before, loaded (or created) when the
    /// day changes, deleting those older than two days then.
    async fn salts_of(&self, day: NaiveDate) -> Result<DaySalts, AppError> {
        let mut current = self.salts.lock().await;
        if let Some(salts) = *current {
            if salts.day == day {
                return Ok(salts);
            }
        }
        let before = |days: u64| day.checked_sub_days(Days::new(days)).unwrap_or(day);
        let salts = DaySalts {
            day,
            today: self.salt(day).await?,
            yesterday: self.salt(before(1)).await?,
        };
        for days in 2..=DELETE_BACK_DAYS {
            self.repository
                .delete_setting(&salt_setting(before(days)))
                .await?;
        }
        *current = Some(salts);
        Ok(salts)
    }

    async fn salt(&self, day: NaiveDate) -> Result<Salt, AppError> {
        let fresh = Salt(rand::random());
        let stored = self
            .repository
            .setting_or_init(&salt_setting(day), &fresh.to_hex())
            .await?;
        Salt::from_hex(&stored).ok_or_else(|| {
            AppError::Internal(format!("the stored salt of {day} is not 32 hex digits"))
        })
    }
}
