//! Kinds: the types of particles, and where each may live (SPEC §3).
//!
//! ```
//! use cosmic_space::Kind;
//!
//! let wasm: Kind = "Artifact<Wasm>".parse()?;
//! let dir: Kind = "Artifact<Dir>".parse()?;
//! assert!(wasm.may_live_under(&dir).is_ok());
//! assert!(Kind::Space.may_live_under(&dir).is_err());
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::point::{PointSeg, parse_domain, parse_version, skewer};
use crate::syntax::{Cursor, ParseError, Span, word_enum};

word_enum!(
    /// The base of a kind: the part before any `<…>`.
    pub enum BaseKind {
        /// The single `ROOT`.
        Root,
        /// A top-level namespace such as `localhost`.
        Space,
        /// A general container below a space.
        Base,
        /// An application.
        App,
        /// A WebAssembly guest.
        Mechtron,
        /// A repository of bundle series.
        Repo,
        /// The versions of one bundle.
        BundleSeries,
        /// One published bundle version.
        Bundle,
        /// A file of a bundle.
        Artifact,
        /// A collection of users.
        UserBase,
        /// A user.
        User,
        /// A mutable file system.
        FileStore,
        /// A file or directory in a file store.
        File,
        /// A database.
        Database,
        /// Internal: the control endpoint of a CLI session.
        Control,
        /// Internal: the host side of a mechtron.
        Host,
        /// Internal: the guest side of a mechtron.
        Guest,
        /// Internal: a star.
        Star,
        /// Internal: the driver of a kind.
        Driver,
        /// Internal: a cosmos-wide service.
        Global,
        /// Internal: a portal to another process.
        Portal,
        /// One write-only value (a password, an API key), stored encrypted.
        Secret,
        /// A pub-sub topic: what is sent to it goes to its subscribers (SPEC §18).
        Channel,
    }
);

impl BaseKind {
    /// Whether particles of this kind hold data that waves read and change (artifacts, file
    /// stores, files, databases, secrets), so reading them needs `r` and changing them `w`
    /// (SPEC §9).
    pub fn holds_data(self) -> bool {
        match self {
            BaseKind::Artifact
            | BaseKind::FileStore
            | BaseKind::File
            | BaseKind::Database
            | BaseKind::Secret => true,
            BaseKind::Root
            | BaseKind::Space
            | BaseKind::Base
            | BaseKind::App
            | BaseKind::Mechtron
            | BaseKind::Repo
            | BaseKind::BundleSeries
            | BaseKind::Bundle
            | BaseKind::UserBase
            | BaseKind::User
            | BaseKind::Control
            | BaseKind::Host
            | BaseKind::Guest
            | BaseKind::Star
            | BaseKind::Driver
            | BaseKind::Global
            | BaseKind::Portal
            | BaseKind::Channel => false,
        }
    }

    /// The sub-kind names this base accepts (empty when it takes none).
    pub fn sub_kind_names(self) -> &'static [&'static str] {
        match self {
            BaseKind::Artifact => ArtifactSubKind::NAMES,
            BaseKind::File => FileSubKind::NAMES,
            BaseKind::Database => &["Relational", "KeyValue"],
            BaseKind::UserBase => &["OAuth"],
            BaseKind::Star => StarSubKind::NAMES,
            _ => &[],
        }
    }

    /// Kinds only the hyperspace creates; commands may not create them.
    pub fn is_internal(self) -> bool {
        matches!(
            self,
            BaseKind::Control
                | BaseKind::Host
                | BaseKind::Guest
                | BaseKind::Star
                | BaseKind::Driver
                | BaseKind::Global
                | BaseKind::Portal
        )
    }
}

word_enum!(
    /// What an artifact holds.
    pub enum ArtifactSubKind {
        /// Bytes with no special meaning to the hyperspace.
        Raw,
        /// A bind document.
        Bind,
        /// A WebAssembly module.
        Wasm,
        /// A configuration document such as a `.mechtron`.
        Config,
        /// A directory.
        Dir,
    }
);

word_enum!(
    /// A file store entry: a file or a directory.
    pub enum FileSubKind {
        /// A file.
        File,
        /// A directory.
        Dir,
    }
);

word_enum!(
    /// The role of a star.
    pub enum StarSubKind {
        /// Holds `ROOT` and the cosmos-wide services.
        Central,
        /// One per machine; represents the machine.
        Machine,
        /// Routes between constellations.
        Nexus,
        /// Hosts particles.
        Fold,
    }
);

/// The kind of a database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DatabaseSubKind {
    /// A relational database from some vendor.
    Relational(Specific),
    /// A key-value store.
    KeyValue,
}

/// The kind of a user base.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum UserBaseSubKind {
    /// Users authenticated by an OAuth provider.
    OAuth(Specific),
}

/// An exact product: `provider:vendor:product:variant:version`, e.g.
/// `starlane.io:postgres.org:postgres:gis:15.0.0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Specific {
    /// Who provides the driver (a domain).
    pub provider: String,
    /// Who makes the product (a domain).
    pub vendor: String,
    /// The product (skewer case).
    pub product: String,
    /// The product's variant (skewer case).
    pub variant: String,
    /// The product's version.
    pub version: Version,
}

impl Specific {
    /// Parses a specific at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Specific, ParseError> {
        let provider = parse_domain(c, "a provider")?;
        c.expect(":", "':' after the provider")?;
        let vendor = parse_domain(c, "a vendor")?;
        c.expect(":", "':' after the vendor")?;
        let product = skewer(c, "a product (skewer case)")?.to_string();
        c.expect(":", "':' after the product")?;
        let variant = skewer(c, "a variant (skewer case)")?.to_string();
        c.expect(":", "':' after the variant")?;
        let version = parse_version(c)?;
        Ok(Specific {
            provider,
            vendor,
            product,
            variant,
            version,
        })
    }
}

impl fmt::Display for Specific {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}:{}",
            self.provider, self.vendor, self.product, self.variant, self.version
        )
    }
}

impl FromStr for Specific {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("specific", s, Specific::parse)
    }
}

/// The type of a particle: `Base`, `Base<Sub>` or `Base<Sub<Specific>>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Kind {
    Root,
    Space,
    Base,
    App,
    Mechtron,
    Repo,
    BundleSeries,
    Bundle,
    Artifact(ArtifactSubKind),
    UserBase(Option<UserBaseSubKind>),
    User,
    FileStore,
    File(FileSubKind),
    Database(DatabaseSubKind),
    Control,
    Host,
    Guest,
    Star(StarSubKind),
    Driver,
    Global,
    Portal,
    // New kinds go last: the registry keeps kinds wire-encoded, by variant index.
    Secret,
    Channel,
}

/// Why a kind was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// The kind may not live under the parent's kind.
    #[error("{kind} may not live under {parent}: {kind} lives under {allowed}")]
    BadParent {
        /// The kind of the particle being placed.
        kind: Box<Kind>,
        /// The kind of the parent it was to live under.
        parent: Box<Kind>,
        /// The parents it may have, for the message.
        allowed: &'static str,
    },
}

impl Kind {
    /// The base of the kind.
    pub fn base(&self) -> BaseKind {
        match self {
            Kind::Root => BaseKind::Root,
            Kind::Space => BaseKind::Space,
            Kind::Base => BaseKind::Base,
            Kind::App => BaseKind::App,
            Kind::Mechtron => BaseKind::Mechtron,
            Kind::Repo => BaseKind::Repo,
            Kind::BundleSeries => BaseKind::BundleSeries,
            Kind::Bundle => BaseKind::Bundle,
            Kind::Artifact(_) => BaseKind::Artifact,
            Kind::UserBase(_) => BaseKind::UserBase,
            Kind::User => BaseKind::User,
            Kind::FileStore => BaseKind::FileStore,
            Kind::File(_) => BaseKind::File,
            Kind::Database(_) => BaseKind::Database,
            Kind::Control => BaseKind::Control,
            Kind::Host => BaseKind::Host,
            Kind::Guest => BaseKind::Guest,
            Kind::Star(_) => BaseKind::Star,
            Kind::Driver => BaseKind::Driver,
            Kind::Global => BaseKind::Global,
            Kind::Portal => BaseKind::Portal,
            Kind::Secret => BaseKind::Secret,
            Kind::Channel => BaseKind::Channel,
        }
    }

    /// The sub-kind's name, if the kind has one (`Wasm` of `Artifact<Wasm>`).
    pub fn sub_name(&self) -> Option<&'static str> {
        match self {
            Kind::Artifact(sub) => Some(sub.name()),
            Kind::File(sub) => Some(sub.name()),
            Kind::Star(sub) => Some(sub.name()),
            Kind::Database(DatabaseSubKind::Relational(_)) => Some("Relational"),
            Kind::Database(DatabaseSubKind::KeyValue) => Some("KeyValue"),
            Kind::UserBase(Some(UserBaseSubKind::OAuth(_))) => Some("OAuth"),
            _ => None,
        }
    }

    /// The specific, if the kind has one.
    pub fn specific(&self) -> Option<&Specific> {
        match self {
            Kind::Database(DatabaseSubKind::Relational(s))
            | Kind::UserBase(Some(UserBaseSubKind::OAuth(s))) => Some(s),
            _ => None,
        }
    }

    /// Kinds only the hyperspace creates.
    pub fn is_internal(&self) -> bool {
        self.base().is_internal()
    }

    /// Whether a particle of this kind may live under a particle of kind `parent` (SPEC §3).
    /// Internal kinds are placed by the hyperspace and have no rule here.
    pub fn may_live_under(&self, parent: &Kind) -> Result<(), KindError> {
        use BaseKind as B;
        let (ok, allowed) = match self {
            Kind::Root => (false, "nothing (it is the root)"),
            Kind::Space => (*parent == Kind::Root, "Root"),
            Kind::Base | Kind::App | Kind::Repo => {
                (matches!(parent, Kind::Space | Kind::Base), "Space or Base")
            }
            Kind::Mechtron | Kind::FileStore | Kind::Database(_) => (
                matches!(parent, Kind::Space | Kind::Base | Kind::App),
                "Space, Base or App",
            ),
            Kind::Secret | Kind::Channel => (
                matches!(
                    parent,
                    Kind::Space | Kind::Base | Kind::App | Kind::Mechtron
                ),
                "Space, Base, App or Mechtron",
            ),
            Kind::BundleSeries => (*parent == Kind::Repo, "Repo"),
            Kind::Bundle => (*parent == Kind::BundleSeries, "BundleSeries"),
            Kind::Artifact(_) => (
                matches!(parent, Kind::Bundle | Kind::Artifact(ArtifactSubKind::Dir)),
                "Bundle or Artifact<Dir>",
            ),
            Kind::UserBase(_) => (*parent == Kind::Space, "Space"),
            Kind::User => (parent.base() == B::UserBase, "UserBase"),
            Kind::File(_) => (
                matches!(parent, Kind::FileStore | Kind::File(FileSubKind::Dir)),
                "FileStore or File<Dir>",
            ),
            Kind::Control
            | Kind::Host
            | Kind::Guest
            | Kind::Star(_)
            | Kind::Driver
            | Kind::Global
            | Kind::Portal => (true, "anything the hyperspace chooses"),
        };
        if ok {
            Ok(())
        } else {
            Err(KindError::BadParent {
                kind: Box::new(self.clone()),
                parent: Box::new(parent.clone()),
                allowed,
            })
        }
    }

    /// Whether `segment` is the right shape for the last segment of a particle of this kind:
    /// a version for a bundle, file-system segments for artifacts and files, a domain for a
    /// space, a skewer-case name otherwise.
    pub fn accepts_segment(&self, segment: &PointSeg) -> bool {
        match self {
            Kind::Space => matches!(segment, PointSeg::Space(_)),
            Kind::Bundle => matches!(segment, PointSeg::Version(_)),
            Kind::Artifact(ArtifactSubKind::Dir) | Kind::File(FileSubKind::Dir) => {
                matches!(segment, PointSeg::FsRoot | PointSeg::Dir(_))
            }
            Kind::Artifact(_) | Kind::File(_) => matches!(segment, PointSeg::File(_)),
            Kind::Root => false,
            _ => matches!(segment, PointSeg::Base(_)),
        }
    }

    /// Parses a kind at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Kind, ParseError> {
        let start = c.pos();
        let name = c.take_while(|ch| ch.is_ascii_alphanumeric());
        let base = BaseKind::from_name(name).ok_or_else(|| {
            let message = if name.is_empty() {
                "expected a kind".to_string()
            } else {
                format!("unknown kind '{name}'")
            };
            c.error_span(Span::new(start, c.pos()), message)
        })?;
        let subs = base.sub_kind_names();
        if !c.eat_char('<') {
            return match base {
                BaseKind::Artifact | BaseKind::File | BaseKind::Database | BaseKind::Star => Err(c
                    .error(format!(
                        "{base} needs a sub-kind: one of {}",
                        subs.join(", ")
                    ))),
                _ => Ok(simple_kind(base)),
            };
        }
        let sub_start = c.pos();
        let sub = c.take_while(|ch| ch.is_ascii_alphanumeric());
        let bad_sub = |c: &Cursor<'_>| {
            let message = if subs.is_empty() {
                format!("{base} takes no sub-kind")
            } else {
                format!(
                    "unknown sub-kind '{sub}' of {base}: expected one of {}",
                    subs.join(", ")
                )
            };
            c.error_span(Span::new(sub_start, c.pos()), message)
        };
        let kind = match base {
            BaseKind::Artifact => {
                Kind::Artifact(ArtifactSubKind::from_name(sub).ok_or_else(|| bad_sub(c))?)
            }
            BaseKind::File => Kind::File(FileSubKind::from_name(sub).ok_or_else(|| bad_sub(c))?),
            BaseKind::Star => Kind::Star(StarSubKind::from_name(sub).ok_or_else(|| bad_sub(c))?),
            BaseKind::Database => match sub {
                "Relational" => Kind::Database(DatabaseSubKind::Relational(specific_arg(c)?)),
                "KeyValue" => Kind::Database(DatabaseSubKind::KeyValue),
                _ => return Err(bad_sub(c)),
            },
            BaseKind::UserBase => match sub {
                "OAuth" => Kind::UserBase(Some(UserBaseSubKind::OAuth(specific_arg(c)?))),
                _ => return Err(bad_sub(c)),
            },
            _ => return Err(bad_sub(c)),
        };
        c.expect(">", "'>' to close the kind")?;
        Ok(kind)
    }
}

fn specific_arg(c: &mut Cursor<'_>) -> Result<Specific, ParseError> {
    c.expect(
        "<",
        "'<' and a specific (provider:vendor:product:variant:version)",
    )?;
    let specific = Specific::parse(c)?;
    c.expect(">", "'>' to close the specific")?;
    Ok(specific)
}

fn simple_kind(base: BaseKind) -> Kind {
    match base {
        BaseKind::Root => Kind::Root,
        BaseKind::Space => Kind::Space,
        BaseKind::Base => Kind::Base,
        BaseKind::App => Kind::App,
        BaseKind::Mechtron => Kind::Mechtron,
        BaseKind::Repo => Kind::Repo,
        BaseKind::BundleSeries => Kind::BundleSeries,
        BaseKind::Bundle => Kind::Bundle,
        BaseKind::UserBase => Kind::UserBase(None),
        BaseKind::User => Kind::User,
        BaseKind::FileStore => Kind::FileStore,
        BaseKind::Control => Kind::Control,
        BaseKind::Host => Kind::Host,
        BaseKind::Guest => Kind::Guest,
        BaseKind::Driver => Kind::Driver,
        BaseKind::Global => Kind::Global,
        BaseKind::Portal => Kind::Portal,
        BaseKind::Secret => Kind::Secret,
        BaseKind::Channel => Kind::Channel,
        // Kinds with a mandatory sub-kind are handled by the caller.
        BaseKind::Artifact => Kind::Artifact(ArtifactSubKind::Raw),
        BaseKind::File => Kind::File(FileSubKind::File),
        BaseKind::Database => Kind::Database(DatabaseSubKind::KeyValue),
        BaseKind::Star => Kind::Star(StarSubKind::Fold),
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base().name())?;
        match (self.sub_name(), self.specific()) {
            (Some(sub), Some(specific)) => write!(f, "<{sub}<{specific}>>"),
            (Some(sub), None) => write!(f, "<{sub}>"),
            _ => Ok(()),
        }
    }
}

impl FromStr for Kind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("kind", s, Kind::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Kind {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn kinds_round_trip() {
        for s in [
            "Root",
            "Space",
            "Mechtron",
            "Artifact<Wasm>",
            "File<Dir>",
            "UserBase",
            "UserBase<OAuth<keycloak.org:keycloak.org:keycloak:core:26.0.0>>",
            "Database<Relational<starlane.io:postgres.org:postgres:gis:15.0.0>>",
            "Database<KeyValue>",
            "Star<Central>",
            "Secret",
        ] {
            assert_eq!(k(s).to_string(), s);
        }
    }

    #[test]
    fn unknown_kinds_and_sub_kinds_are_errors() {
        for s in [
            "Spaceship",
            "Artifact<Jpeg>",
            "Space<Wasm>",
            "Artifact",
            "Database<Relational>",
            "mechtron",
            "Secret<Value>",
            "",
        ] {
            assert!(s.parse::<Kind>().is_err(), "{s}");
        }
    }

    #[test]
    fn parent_rules_follow_the_spec_table() {
        assert!(Kind::Space.may_live_under(&Kind::Root).is_ok());
        assert!(Kind::Base.may_live_under(&Kind::Base).is_ok());
        assert!(Kind::Mechtron.may_live_under(&Kind::App).is_ok());
        assert!(Kind::Bundle.may_live_under(&Kind::BundleSeries).is_ok());
        assert!(
            k("Artifact<Raw>")
                .may_live_under(&k("Artifact<Dir>"))
                .is_ok()
        );
        assert!(k("Artifact<Dir>").may_live_under(&Kind::Bundle).is_ok());
        assert!(Kind::User.may_live_under(&Kind::UserBase(None)).is_ok());
        assert!(k("File<File>").may_live_under(&k("File<Dir>")).is_ok());

        let err = Kind::App.may_live_under(&Kind::Repo).unwrap_err();
        assert_eq!(
            err.to_string(),
            "App may not live under Repo: App lives under Space or Base"
        );
        assert!(Kind::Space.may_live_under(&Kind::Space).is_err());
        assert!(Kind::Root.may_live_under(&Kind::Root).is_err());
        assert!(
            k("Artifact<Raw>")
                .may_live_under(&k("Artifact<Raw>"))
                .is_err()
        );
        assert!(Kind::User.may_live_under(&Kind::Space).is_err());

        for parent in [Kind::Space, Kind::Base, Kind::App, Kind::Mechtron] {
            assert!(Kind::Secret.may_live_under(&parent).is_ok(), "{parent}");
        }
        let err = Kind::Secret.may_live_under(&Kind::Repo).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Secret may not live under Repo: Secret lives under Space, Base, App or Mechtron"
        );
        assert!(Kind::Secret.may_live_under(&Kind::Secret).is_err());
        assert!(Kind::Secret.may_live_under(&Kind::Root).is_err());
        assert!(
            Kind::Secret
                .may_live_under(&k("Database<KeyValue>"))
                .is_err()
        );
    }

    /// The registry keeps kinds wire-encoded, by variant index: a kind added anywhere but last
    /// would make stored particles read back as another kind.
    #[test]
    fn kinds_keep_their_wire_index() {
        for (kind, index) in [
            (Kind::Root, 0u8),
            (Kind::Mechtron, 4),
            (Kind::FileStore, 11),
            (Kind::Database(DatabaseSubKind::KeyValue), 13),
            (Kind::Portal, 20),
            (Kind::Secret, 21),
            (Kind::Channel, 22),
        ] {
            let frame = crate::wire::encode(&kind).unwrap_or_default();
            assert_eq!(frame.first(), Some(&index), "{kind}");
        }
    }

    #[test]
    fn secrets_hold_data_and_are_not_internal() {
        assert!(BaseKind::Secret.holds_data());
        assert!(!Kind::Secret.is_internal());
        assert!(Kind::Secret.accepts_segment(&PointSeg::Base("db-password".into())));
        assert!(!Kind::Secret.accepts_segment(&PointSeg::File("x.txt".into())));
    }

    #[test]
    fn segments_fit_their_kinds() {
        assert!(Kind::Bundle.accepts_segment(&PointSeg::Version(Version::new(1, 0, 0))));
        assert!(!Kind::Bundle.accepts_segment(&PointSeg::Base("x".into())));
        assert!(k("Artifact<Dir>").accepts_segment(&PointSeg::FsRoot));
        assert!(k("Artifact<Wasm>").accepts_segment(&PointSeg::File("a.wasm".into())));
    }
}
