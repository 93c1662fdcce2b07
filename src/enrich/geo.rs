//! Country, region and city of an IP address, from a MaxMind-format city
//! database (GeoLite2 City, DB-IP City Lite, ...).

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{geoip2, Reader};

/// Where an address is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<String>,
    /// ISO 3166-2 code of the first subdivision (`GB-ENG`), else its name.
    pub region: Option<String>,
    /// English name of the city.
    pub city: Option<String>,
}

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
#[error("the GeoIP database {path} does not open: {message}")]
pub struct GeoError {
    path: String,
    message: String,
}

/// An open city database, read into memory.
pub struct Geo {
    reader: Reader<Vec<u8>>,
}

impl Geo {
    /// Opens the database at `path`.
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let reader = Reader::open_readfile(path).map_err(|e| GeoError {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Self { reader })
    }

    /// The database's type (`GeoLite2-City`, ...), from its metadata.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// Where `ip` is; empty for private and unknown addresses.
    pub fn locate(&self, ip: IpAddr) -> Location {
        let Ok(found) = self.reader.lookup(ip) else {
            return Location::default();
        };
        let Ok(Some(record)) = found.decode::<geoip2::City>() else {
            return Location::default();
        };
        let country = record.country.iso_code.map(str::to_owned);
        let region = record.subdivisions.first().and_then(|subdivision| {
            match (country.as_deref(), subdivision.iso_code) {
                (Some(country), Some(code)) => Some(format!("{country}-{code}")),
                _ => subdivision.names.english.map(str::to_owned),
            }
        });
        Location {
            country,
            region,
            city: record.city.names.english.map(str::to_owned),
        }
    }
}
