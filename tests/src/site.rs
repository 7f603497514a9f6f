//! A web site in a cosmos, as the gateway's tests browse it: the guest fixtures and a site
//! bundle published, mechtrons behind the Space's bind, the user scott, and the grants that
//! make the site public but for one vault.

use std::path::Path;

use crate::Server;

/// The Space's bind: the site's files, a mechtron by forward and by call with a captured
/// variable, a slow and a failing mechtron, a route only a user may take, and a channel.
pub const BIND: &str = "Bind(version=1.0.0) {
  Route<Http<Get>>/app/(?P<rest>.*) -> localhost:hello => &;
  Route<Http<Get>>/greet/(?P<who>[^/]*) -> localhost:hello^Http<Get>/app/${who} => &;
  Route<Http<Get>>/slow/(?P<ms>[0-9]+) -> localhost:slowpoke => &;
  Route<Http<Get>>/boom -> localhost:trouble^Ext<Panic> => &;
  Route<Http<Get>>/private/(?P<who>[^/]*) -> localhost:vault^Http<Get>/app/${who} => &;
  Route<Http<Get>>/news -> localhost:news => &;
  Route<Http<Get>>/(?P<path>.*) -> localhost:repo:site:1.0.0:/html/${path} => &;
}
";

/// Builds the site in `server`'s cosmos, with `dir` as the working directory:
/// - the fixtures bundle published as `localhost:repo:fixtures:1.0.0`;
/// - `files` (paths under `html/`, served at `/PATH`) and [`BIND`] published as
///   `localhost:repo:site:1.0.0`, the bind set on the `localhost` Space;
/// - the mechtrons `localhost:hello` and `localhost:vault` (hello), `localhost:slowpoke` and
///   `localhost:trouble`, and the channel `localhost:news` (at `/news`);
/// - the user `localhost:users:scott`;
/// - grants: Anonymous may reach (`x`) everything in `localhost` and read (`r`) the site's
///   files and the channel, but is masked from the vault, which scott may reach.
///
/// # Panics
/// If a file cannot be written or a command fails.
pub fn build(server: &Server, dir: &Path, files: &[(&str, &[u8])]) {
    crate::write_fixtures_bundle(dir);
    let mut entries: Vec<(&str, &[u8])> = files.to_vec();
    entries.push(("bind/space.bind", BIND.as_bytes()));
    std::fs::write(dir.join("site.zip"), crate::zip(&entries))
        .unwrap_or_else(|e| panic!("cannot write site.zip: {e}"));
    let config = "localhost:repo:fixtures:1.0.0:/config";
    server.exec(
        dir,
        &format!(
            "create localhost<Space>; create localhost:repo<Repo>; \
             publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0; \
             publish ^[ site.zip ]-> localhost:repo:site:1.0.0; \
             create localhost:hello<Mechtron>{{ +config={config}/hello.mechtron }}; \
             create localhost:vault<Mechtron>{{ +config={config}/hello.mechtron }}; \
             create localhost:slowpoke<Mechtron>{{ +config={config}/slowpoke.mechtron }}; \
             create localhost:trouble<Mechtron>{{ +config={config}/troublemaker.mechtron }}; \
             create localhost:news<Channel>; \
             set localhost{{ +bind=localhost:repo:site:1.0.0:/bind/space.bind }}; \
             create localhost:users<UserBase>; create localhost:users:scott<User>"
        ),
    );
    for grant in [
        // A public site is the owner's choice (a grant on the Space covers its subtree), and
        // reading its files (`r`) a second one…
        "grant +csd-rwX on localhost to hyperspace:users:anonymous",
        "grant +csd-Rwx on localhost:repo:site+:** to hyperspace:users:anonymous",
        // …and reading the channel `/news` streams…
        "grant +csd-Rwx on localhost:news to hyperspace:users:anonymous",
        // …except the vault, masked for Anonymous, and opened for scott.
        "grant &csd-rwx on localhost:vault to hyperspace:users:anonymous",
        "grant +csd-rwX on localhost to localhost:users:scott",
    ] {
        server.exec(dir, grant);
    }
}
