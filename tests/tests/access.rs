//! One rule on every route (SPEC §9): whatever way a wave or command reaches a particle — the
//! CLI's `exec` and `send`, the HTTP gateway through a bind's forward or call, a mechtron's own
//! `ctx.ping` — the decision is the one the SPEC gives. Data is read with `r` and changed with
//! `w`; every wave needs `x` to reach its target; a command goes to the executor, so it needs
//! only `r` (`read`, `get`) or `w` (`set`).
//!
//! The expected decisions below are written from the SPEC, not from the implementation: each
//! cell of routes × target kinds × agents is run against the real binary and compared.

use std::path::Path;

use tests::{Server, http, stderr, stdout};

/// The page's bytes; no refused route may print them.
const PAGE: &str = "the page nobody without r may read";

/// The Space's bind: a forward and a call (`Cmd<Read>`) to each target.
const BIND: &str = "Bind(version=1.0.0) {
  Route<Http<Get>>/fwd/artifact -> localhost:repo:page:1.0.0:/html/index.html => &;
  Route<Http<Get>>/fwd/plain -> localhost:plain => &;
  Route<Http<Get>>/fwd/mechtron -> localhost:mech => &;
  Route<Http<Get>>/call/artifact -> localhost:repo:page:1.0.0:/html/index.html^Cmd<Read> => &;
  Route<Http<Get>>/call/plain -> localhost:plain^Cmd<Read> => &;
  Route<Http<Get>>/call/mechtron -> localhost:mech^Cmd<Read> => &;
}
";

/// The three kinds of target: data (an artifact), a plain particle with properties, a
/// mechtron.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Artifact,
    Plain,
    Mechtron,
}

impl Target {
    const ALL: [Target; 3] = [Target::Artifact, Target::Plain, Target::Mechtron];

    fn point(self) -> &'static str {
        match self {
            Target::Artifact => "localhost:repo:page:1.0.0:/html/index.html",
            Target::Plain => "localhost:plain",
            Target::Mechtron => "localhost:mech",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Target::Artifact => "artifact",
            Target::Plain => "plain",
            Target::Mechtron => "mechtron",
        }
    }

    /// The permission a wave with `method` needs besides `x` (SPEC §9): on data, reads need
    /// `r` and changes `w`; elsewhere `Cmd<Read>` (details) needs `r`, and the rest is the
    /// particle's own business.
    fn wave_needs(self, method: &str) -> &'static str {
        match (self, method) {
            (Target::Artifact, "Cmd<Read>" | "Http<Get>") => "r",
            (Target::Artifact, _) => "w",
            (_, "Cmd<Read>") => "r",
            _ => "",
        }
    }
}

/// Who acts, and the permission letters its grants give it on everything under `localhost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Owner,
    X,
    Rx,
    Wx,
    R,
    /// `x` and the privilege `property:email:read` on the plain particle.
    Privileged,
    Anonymous,
}

impl Role {
    const ALL: [Role; 7] = [
        Role::Owner,
        Role::X,
        Role::Rx,
        Role::Wx,
        Role::R,
        Role::Privileged,
        Role::Anonymous,
    ];

    fn name(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::X => "x",
            Role::Rx => "rx",
            Role::Wx => "wx",
            Role::R => "r",
            Role::Privileged => "privileged",
            Role::Anonymous => "anonymous",
        }
    }

    fn letters(self) -> &'static str {
        match self {
            Role::Owner => "rwx",
            Role::X | Role::Privileged => "x",
            Role::Rx => "rx",
            Role::Wx => "wx",
            Role::R => "r",
            Role::Anonymous => "",
        }
    }

    /// The mask granted on `localhost` (the owner owns it; Anonymous gets nothing).
    fn mask(self) -> Option<&'static str> {
        match self {
            Role::Owner | Role::Anonymous => None,
            Role::X | Role::Privileged => Some("+csd-rwX"),
            Role::Rx => Some("+csd-RwX"),
            Role::Wx => Some("+csd-rWX"),
            Role::R => Some("+csd-Rwx"),
        }
    }

    /// The agent as a point: the user the CLI and the gateway act as.
    fn user(self) -> String {
        match self {
            Role::Anonymous => "hyperspace:users:anonymous".to_string(),
            role => format!("localhost:users:{}", role.name()),
        }
    }

    /// The mechtron that acts as this role when a guest sends the wave.
    fn pinger(self) -> String {
        format!("localhost:pingers:{}", self.name())
    }
}

/// The ways in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    ExecRead,
    ExecGet,
    ExecSet,
    Send(&'static str),
    GatewayForward,
    GatewayCall,
    Guest(&'static str),
}

impl Route {
    const ALL: [Route; 11] = [
        Route::ExecRead,
        Route::ExecGet,
        Route::ExecSet,
        Route::Send("Cmd<Read>"),
        Route::Send("Http<Get>"),
        Route::Send("Http<Put>"),
        Route::GatewayForward,
        Route::GatewayCall,
        Route::Guest("Cmd<Read>"),
        Route::Guest("Http<Get>"),
        Route::Guest("Http<Put>"),
    ];

    /// The permission letters the route needs on `target` (SPEC §9).
    fn needs(self, target: Target) -> String {
        match self {
            Route::ExecRead | Route::ExecGet => "r".to_string(),
            Route::ExecSet => "w".to_string(),
            Route::Send(method) | Route::Guest(method) => format!("x{}", target.wave_needs(method)),
            Route::GatewayForward => format!("x{}", target.wave_needs("Http<Get>")),
            Route::GatewayCall => format!("x{}", target.wave_needs("Cmd<Read>")),
        }
    }
}

/// What happened in one cell: refused or not, and everything it printed or answered.
struct Outcome {
    refused: bool,
    said: String,
}

struct Cosmos {
    server: Server,
    dir: std::path::PathBuf,
    tokens: Vec<(Role, String)>,
}

impl Cosmos {
    fn token(&self, role: Role) -> &str {
        self.tokens
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, token)| token.as_str())
            .unwrap_or_else(|| panic!("no token for {role:?}"))
    }

    fn cli(&self, role: Role, args: &[&str]) -> Outcome {
        // `starlane SUBCOMMAND --token T …`
        let mut all = args.to_vec();
        all.splice(1..1, ["--token", self.token(role)]);
        let out = self.server.run(&self.dir, &all);
        let (out, err) = (stdout(&out), stderr(&out));
        Outcome {
            refused: err.contains("403"),
            said: format!("{out}{err}"),
        }
    }

    fn gateway(&self, role: Role, path: &str) -> Outcome {
        let bearer = format!("Authorization: Bearer {}", self.token(role));
        let headers: Vec<&str> = match role {
            Role::Anonymous => vec![],
            _ => vec![bearer.as_str()],
        };
        let reply = http(&self.server.http_addr(), "GET", path, &headers, b"");
        Outcome {
            refused: reply.status == 403,
            said: format!("{} {}", reply.status, reply.text()),
        }
    }

    fn run(&self, route: Route, target: Target, role: Role) -> Outcome {
        let point = target.point();
        match route {
            Route::ExecRead => self.cli(role, &["exec", &format!("read {point}")]),
            Route::ExecGet => self.cli(role, &["exec", &format!("get {point}")]),
            Route::ExecSet => self.cli(role, &["exec", &format!("set {point}{{ +note=changed }}")]),
            Route::Send(method) => self.cli(role, &["send", point, method]),
            Route::GatewayForward => self.gateway(role, &format!("/fwd/{}", target.path())),
            Route::GatewayCall => self.gateway(role, &format!("/call/{}", target.path())),
            Route::Guest(method) => {
                // HyperUser asks the role's pinger to send the wave as itself.
                let out = self.server.run(
                    &self.dir,
                    &[
                        "send",
                        &role.pinger(),
                        "Ext<Relay>",
                        &format!("{method} {point}"),
                    ],
                );
                assert!(out.status.success(), "the pinger failed: {}", stderr(&out));
                let answer = stdout(&out);
                let inner = answer.lines().nth(1).unwrap_or_default().to_string();
                Outcome {
                    refused: inner.starts_with("403"),
                    said: answer,
                }
            }
        }
    }
}

fn setup(dir: &Path) -> Cosmos {
    tests::write_fixtures_bundle(dir);
    let page = tests::zip(&[
        ("html/index.html", PAGE.as_bytes()),
        ("bind/space.bind", BIND.as_bytes()),
    ]);
    std::fs::write(dir.join("page.zip"), page).unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start(&dir.join("home"));
    let pinger = "localhost:repo:fixtures:1.0.0:/config/pinger.mechtron";
    let mut script = vec![
        "create localhost<Space>".to_string(),
        "create localhost:repo<Repo>".to_string(),
        "publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0".to_string(),
        "publish ^[ page.zip ]-> localhost:repo:page:1.0.0".to_string(),
        "create localhost:plain<Base>{ +note=plain-note, +email=plain-email }".to_string(),
        "create localhost:mech<Mechtron>{ +config=localhost:repo:fixtures:1.0.0:/config/hello.mechtron, +note=mech-note }".to_string(),
        "set localhost{ +bind=localhost:repo:page:1.0.0:/bind/space.bind }".to_string(),
        "create localhost:users<UserBase>".to_string(),
        "create localhost:pingers<Base>".to_string(),
    ];
    for role in Role::ALL {
        if role != Role::Anonymous {
            script.push(format!("create {}<User>", role.user()));
        }
        script.push(format!(
            "create {}<Mechtron>{{ +config={pinger} }}",
            role.pinger()
        ));
        if let Some(mask) = role.mask() {
            for agent in [role.user(), role.pinger()] {
                script.push(format!("grant {mask} on localhost to {agent}"));
            }
        }
    }
    for agent in [Role::Privileged.user(), Role::Privileged.pinger()] {
        script.push(format!(
            "grant property:email:read on localhost:plain to {agent}"
        ));
    }
    // The owner owns everything here; its pinger, a mechtron, holds Super (full access, the
    // same decision).
    script.push(format!("chown localhost+:** to {}", Role::Owner.user()));
    script.push(format!(
        "grant Super on localhost+:** to {}",
        Role::Owner.pinger()
    ));
    server.exec(dir, &script.join("; "));
    let tokens = Role::ALL
        .iter()
        .map(|role| (*role, server.token(dir, &role.user())))
        .collect();
    Cosmos {
        server,
        dir: dir.to_path_buf(),
        tokens,
    }
}

#[test]
fn every_route_gives_the_decision_of_spec_9() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cosmos = setup(dir.path());
    let mut cells = 0;
    let mut refused = 0;
    let mut wrong = Vec::new();
    for route in Route::ALL {
        for target in Target::ALL {
            for role in Role::ALL {
                let needs = route.needs(target);
                let allowed = needs.chars().all(|letter| role.letters().contains(letter));
                let outcome = cosmos.run(route, target, role);
                cells += 1;
                refused += usize::from(outcome.refused);
                if outcome.refused == allowed {
                    wrong.push(format!(
                        "{route:?} on {target:?} as {role:?} (needs '{needs}'): expected {}, got: {}",
                        if allowed { "allowed" } else { "refused" },
                        outcome.said.trim()
                    ));
                }
                if target == Target::Artifact
                    && outcome.said.contains(PAGE)
                    && !(allowed && needs.contains('r'))
                {
                    wrong.push(format!("{route:?} as {role:?} showed the page"));
                }
                // A refusal on the web names nothing of the cosmos: no point, agent or
                // permission (the operator finds them in the server's log).
                let web = matches!(route, Route::GatewayForward | Route::GatewayCall);
                if web && outcome.refused && outcome.said != "403 Forbidden\n" {
                    wrong.push(format!(
                        "{route:?} on {target:?} as {role:?} said more than 'Forbidden': {}",
                        outcome.said.trim()
                    ));
                }
            }
        }
    }
    println!("authorisation matrix: {cells} cells checked, {refused} refused");
    assert!(cells >= 100);
    assert!(
        wrong.is_empty(),
        "{} of {cells} decisions differ from SPEC §9:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    cosmos.server.stop();
}

#[test]
fn reads_show_what_they_should_and_guarded_properties_stay_hidden() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cosmos = setup(dir.path());
    let artifact = Target::Artifact.point();

    // Whoever may read the page gets its bytes, on every route.
    assert!(
        cosmos
            .cli(Role::Rx, &["exec", &format!("read {artifact}")])
            .said
            .contains(PAGE)
    );
    assert!(
        cosmos
            .cli(Role::Rx, &["send", artifact, "Cmd<Read>"])
            .said
            .contains(PAGE)
    );
    assert!(
        cosmos
            .gateway(Role::Rx, "/fwd/artifact")
            .said
            .contains(PAGE)
    );

    // `property:email:read` guards `email`: `r` alone shows the other properties only, on
    // the command, the wave and the web alike.
    for said in [
        cosmos.cli(Role::Rx, &["exec", "get localhost:plain"]).said,
        cosmos
            .cli(Role::Rx, &["send", "localhost:plain", "Cmd<Read>"])
            .said,
        cosmos.gateway(Role::Rx, "/call/plain").said,
    ] {
        assert!(said.contains("plain-note"), "{said}");
        assert!(!said.contains("plain-email"), "{said}");
    }
    assert!(
        cosmos
            .cli(Role::Rx, &["exec", "get localhost:plain{ email }"])
            .refused
    );
    // The privilege reads that property (and only that one) …
    let email = cosmos.cli(Role::Privileged, &["exec", "get localhost:plain{ email }"]);
    assert!(
        !email.refused && email.said.contains("plain-email"),
        "{}",
        email.said
    );
    assert!(
        cosmos
            .cli(Role::Privileged, &["exec", "get localhost:plain{ note }"])
            .refused
    );
    // … and the owner reads everything.
    let all = cosmos.cli(Role::Owner, &["send", "localhost:plain", "Cmd<Read>"]);
    assert!(
        all.said.contains("plain-email") && all.said.contains("plain-note"),
        "{}",
        all.said
    );

    // A mechtron's details are its current ones: Ready, with its properties as set now.
    cosmos
        .server
        .exec(&cosmos.dir, "set localhost:mech{ +note=changed-now }");
    let details = cosmos
        .cli(Role::Rx, &["send", "localhost:mech", "Cmd<Read>"])
        .said;
    assert!(details.contains("Ready"), "{details}");
    assert!(details.contains("+note=changed-now"), "{details}");
    cosmos.server.stop();
}
