//! The data directory: `<dir>/sled` holds the log (unless the log is in PostgreSQL: `serve
//! --store postgres://…`, or `TRUSTLEDGER_STORE` for the other commands), `<dir>/signing-key`
//! the checkpoint key.

use anyhow::{bail, Context as _};
use events::checkpoint::NoteSigner;
use events::{Log, LogConfig, StoreLocation};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where `serve` keeps its data when no `--data` is given: `$TRUSTLEDGER_DATA`, else
/// `./trustledger-data`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("TRUSTLEDGER_DATA")
        .map_or_else(|| PathBuf::from("trustledger-data"), PathBuf::from)
}

/// The sled directory inside a data directory.
pub fn sled_dir(dir: &Path) -> PathBuf {
    dir.join("sled")
}

/// The environment variable naming the store of the log (a `postgres://` URL) for every command
/// that opens a data directory; unset, the log is the directory's sled store.
pub const STORE_ENV: &str = "TRUSTLEDGER_STORE";

/// Where the log of data directory `dir` is: `store` if given, else `$TRUSTLEDGER_STORE`, else
/// `DIR/sled`.
pub fn log_location(dir: &Path, store: Option<&StoreLocation>) -> StoreLocation {
    store.cloned().unwrap_or_else(|| {
        std::env::var(STORE_ENV)
            .ok()
            .filter(|url| !url.is_empty())
            .map_or_else(
                || StoreLocation::Directory(sled_dir(dir)),
                |url| StoreLocation::parse(&url),
            )
    })
}

/// Whether the log at `location` exists (a PostgreSQL store is asked for its origin).
fn log_exists(location: &StoreLocation) -> anyhow::Result<bool> {
    match location {
        StoreLocation::Directory(dir) => Ok(dir.join("conf").exists()),
        StoreLocation::Postgres(_) => Ok(events::stored_origin(location)?.is_some()),
    }
}

/// The signing key file inside a data directory.
pub fn key_file(dir: &Path) -> PathBuf {
    dir.join("signing-key")
}

/// Writes a secret key (`PRIVATE+KEY+…`) to `path`, created with mode 0600; refuses to replace an
/// existing file unless `force`.
///
/// # Errors
/// If the file exists (without `force`) or cannot be written.
pub fn write_key_file(path: &Path, secret: &str, force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        if path.exists() && !force {
            format!("{} exists; pass --force to replace it", path.display())
        } else {
            format!("cannot create {}", path.display())
        }
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(())
}

/// Reads a signer key file.
///
/// # Errors
/// If it cannot be read or parsed.
pub fn read_key_file(path: &Path) -> anyhow::Result<NoteSigner> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    NoteSigner::parse(text.trim()).with_context(|| format!("key file {}", path.display()))
}

/// Creates the data directory if it is not there, and makes its name durable (the log makes
/// what is inside durable).
fn create_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    std::fs::File::open(parent.unwrap_or(Path::new(".")))?.sync_all()?;
    Ok(())
}

/// Opens the log of an existing data directory (for commands that must not create one).
///
/// # Errors
/// If there is no log there, or it cannot be opened (for example because a server holds it).
pub fn open_existing(dir: &Path) -> anyhow::Result<Log> {
    let location = log_location(dir, None);
    if !log_exists(&location)? {
        bail!(
            "no trustledger log in {} (expected {location})",
            dir.display(),
        );
    }
    // Every such command reads the log once, front to back: a small page cache suffices.
    open_log_with_cache(
        dir,
        &location,
        (read_signer(dir, false, LEGACY_KEY_NAME)?, None),
        Some(events::READ_ONCE_CACHE_BYTES),
    )
}

/// How `serve` opens a data directory.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// A signing key file to use instead of `DIR/signing-key`.
    pub key: Option<PathBuf>,
    /// The log's origin (only for a new log; an existing log must match).
    pub origin: Option<String>,
    /// Where the log is, if not in the directory (`--store postgres://…`).
    pub store: Option<StoreLocation>,
}

/// Opens the data directory for `serve`: the configured key, else `DIR/signing-key`, created on
/// first start.
///
/// # Errors
/// If the key cannot be read, or the log cannot be opened or has another origin.
pub fn open_for_serving(dir: &Path, options: &ServeOptions) -> anyhow::Result<Log> {
    let location = log_location(dir, options.store.as_ref());
    let Some(key) = &options.key else {
        return open_with(dir, &location, true, options.origin.clone());
    };
    create_dir(dir)?;
    let signer = read_key_file(key)?;
    open_log(dir, &location, Some(signer), options.origin.clone())
}

/// Opens (creating if needed) the log of a data directory, with its signing key; a missing key
/// is created when `create_key`.
///
/// # Errors
/// If the directory, key or log cannot be opened.
pub fn open(dir: &Path, create_key: bool) -> anyhow::Result<Log> {
    open_with(dir, &log_location(dir, None), create_key, None)
}

fn open_with(
    dir: &Path,
    location: &StoreLocation,
    create_key: bool,
    origin: Option<String>,
) -> anyhow::Result<Log> {
    create_dir(dir)?;
    // A new log's key is named after its origin, as C2SP tlog-checkpoint recommends (and witness
    // operators expect), so the origin is settled before the key is made.
    let new_log = !log_exists(location)?;
    let origin = if new_log && create_key {
        Some(origin.unwrap_or_else(Log::new_origin))
    } else {
        origin
    };
    let key_name = match &origin {
        Some(origin) if new_log => origin.as_str(),
        _ => LEGACY_KEY_NAME,
    };
    open_log(
        dir,
        location,
        read_signer(dir, create_key, key_name)?,
        origin,
    )
}

/// The name of a key made for a log that already exists (the name every key had before keys
/// were named after their log's origin).
const LEGACY_KEY_NAME: &str = "trustledger";

/// The data directory's signing key, if it has one; created first (named `name`) when
/// `create_key`.
fn read_signer(dir: &Path, create_key: bool, name: &str) -> anyhow::Result<Option<NoteSigner>> {
    let key_path = key_file(dir);
    if key_path.exists() {
        Ok(Some(read_key_file(&key_path)?))
    } else if create_key {
        let signer = NoteSigner::generate(name)?;
        write_key_file(&key_path, &signer.to_private_string(), false)?;
        Ok(Some(signer))
    } else {
        Ok(None)
    }
}

fn open_log(
    dir: &Path,
    location: &StoreLocation,
    signer: Option<NoteSigner>,
    origin: Option<String>,
) -> anyhow::Result<Log> {
    open_log_with_cache(dir, location, (signer, origin), None)
}

fn open_log_with_cache(
    dir: &Path,
    location: &StoreLocation,
    (signer, origin): (Option<NoteSigner>, Option<String>),
    cache_bytes: Option<u64>,
) -> anyhow::Result<Log> {
    let config = LogConfig {
        signer,
        origin,
        cache_bytes,
        ..LogConfig::default()
    };
    Log::open_at(location, config).map_err(|e| match e {
        events::OpenLogError::Storage(sled_error) if sled_error.to_string().contains("lock") => anyhow::anyhow!(
            "the log in {} is in use by another process (is `trustledger serve` running on it?): {sled_error}",
            dir.display()
        ),
        other => anyhow::Error::new(other).context(format!("cannot open the log in {location}")),
    })
}

/// Creates a new data directory for a simulation: a fresh log whose clock is `clock` and whose
/// origin is `origin`, written with the flush-only durability mode (a simulation is disposable).
///
/// # Errors
/// If the directory already holds a log, or it cannot be created.
pub fn create_for_simulation(
    dir: &Path,
    clock: events::ManualClock,
    origin: String,
) -> anyhow::Result<Log> {
    if sled_dir(dir).join("conf").exists() {
        bail!(
            "{} already holds a log; simulate writes a new history into an empty directory",
            dir.display()
        );
    }
    create_dir(dir)?;
    let key_path = key_file(dir);
    let signer = if key_path.exists() {
        read_key_file(&key_path)?
    } else {
        let signer = NoteSigner::generate(&origin)?;
        write_key_file(&key_path, &signer.to_private_string(), false)?;
        signer
    };
    let config = LogConfig {
        origin: Some(origin),
        durability: events::Durability::FlushOnlyMayLoseOnPowerFailure,
        clock: std::sync::Arc::new(clock),
        signer: Some(signer),
        cache_bytes: None,
    };
    Ok(Log::open(sled_dir(dir), config)?)
}
