use super::*;
use crate::access::{MaskKind, PermissionsMask};
use crate::point::Point;

fn cmd(s: &str) -> Command {
    let command: Command = s.parse().unwrap_or_else(|e| panic!("{s}:\n{e}"));
    let again: Command = command
        .to_string()
        .parse()
        .unwrap_or_else(|e| panic!("canonical form of {s}:\n{e}"));
    assert_eq!(again, command, "{s}: canonical form reads back the same");
    command
}

fn err(s: &str) -> ParseError {
    match s.parse::<Command>() {
        Ok(command) => panic!("{s}: parsed as {command:?}"),
        Err(err) => err,
    }
}

fn pv(s: &str) -> PointVar {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn sel(s: &str) -> Selector {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn create(s: &str) -> Create {
    match cmd(s) {
        Command::Create(create) => create,
        other => panic!("{s}: not a create: {other:?}"),
    }
}

#[test]
fn create_has_three_strategies() {
    for (s, strategy) in [
        ("create localhost<Space>", CreateStrategy::Commit),
        ("create? localhost<Space>", CreateStrategy::Ensure),
        ("create! localhost<Space>", CreateStrategy::Override),
    ] {
        let parsed = create(s);
        assert_eq!(
            parsed,
            Create {
                strategy,
                template: PointTemplate::Exact(pv("localhost")),
                kind: Kind::Space,
                properties: PropertyChanges::new(),
            }
        );
        assert_eq!(parsed.to_string(), s);
    }
}

#[test]
fn create_takes_kinds_with_sub_kinds_and_specifics() {
    assert_eq!(
        create("create localhost:repo:hello:1.0.0:/wasm/hello.wasm<Artifact<Wasm>>").kind,
        "Artifact<Wasm>".parse().unwrap()
    );
    let db = create(
        "create localhost:db<Database<Relational<starlane.io:postgres.org:postgres:gis:15.0.0>>>",
    );
    assert_eq!(db.kind.base(), crate::kind::BaseKind::Database);
}

#[test]
fn create_with_properties() {
    let parsed = create(
        "create! localhost:app<App>{ +config=localhost:repo:site:1.0.0:/config/app.mechtron, +bind=x:/b.bind }",
    );
    assert_eq!(parsed.strategy, CreateStrategy::Override);
    assert_eq!(
        parsed.properties,
        PropertyChanges::new()
            .with(PropertyChange::set(
                "config",
                "localhost:repo:site:1.0.0:/config/app.mechtron"
            ))
            .with(PropertyChange::set("bind", "x:/b.bind"))
    );
    // `{}` is no properties, and printing leaves it out.
    assert_eq!(
        cmd("create localhost<Space>{}").to_string(),
        "create localhost<Space>"
    );
}

#[test]
fn create_with_a_sequence_number() {
    let parsed = create("create localhost:app:worker-%<Mechtron>{ +config=c }");
    assert_eq!(
        parsed.template,
        PointTemplate::Sequence {
            parent: pv("localhost:app"),
            prefix: "worker-".into(),
            suffix: String::new(),
        }
    );
    assert_eq!(parsed.template.segment(12).as_deref(), Some("worker-12"));
    assert!(parsed.template.is_sequence());
    let mid = create("create ..:job%-run<Mechtron>");
    assert_eq!(
        mid.template,
        PointTemplate::Sequence {
            parent: pv(".."),
            prefix: "job".into(),
            suffix: "-run".into(),
        }
    );
    assert_eq!(mid.template.segment(3).as_deref(), Some("job3-run"));
    assert_eq!(
        create("create ${app}:w%<Mechtron>").to_string(),
        "create ${app}:w%<Mechtron>"
    );
    assert_eq!(
        create("create <<STAR::central:nexus[0]>>::star:w%<Base>").to_string(),
        "create <<STAR::central:nexus[0]>>::star:w%<Base>"
    );
    assert_eq!(
        create("create localhost:app<App>").template.segment(1),
        None
    );
}

#[test]
fn bad_sequences_are_refused_at_the_percent() {
    for (s, col, message) in [
        ("create localhost%<Space>", 17, "a '%' needs a parent point"),
        ("create GLOBAL::%<Base>", 16, "a '%' needs a parent point"),
        ("create localhost:%<Base>", 18, "a numbered segment begins"),
        ("create localhost:9%<Base>", 18, "expected a version"),
        ("create localhost:a:/x%<File<File>>", 22, "'%' cannot stand"),
        ("create localhost:w-%%<Base>", 21, "only one '%'"),
        (
            "create localhost:w-%:x<Base>",
            21,
            "'%' may stand only in the last",
        ),
        (
            "create localhost:w-%X<Base>",
            21,
            "a numbered segment is skewer case",
        ),
        ("create localhost:r:1.0.0:w-%<Base>", 25, "only ':/'"),
        ("create ROOT:w-%<Base>", 12, "'ROOT' stands alone"),
        ("create Localhost:w-%<Base>", 8, "expected a space"),
        (
            "create localhost:Bad:w-%<Base>",
            18,
            "expected a skewer-case base",
        ),
    ] {
        let e = err(s);
        assert!(e.message.starts_with(message), "{s}: got {}", e.message);
        assert_eq!(e.line_col(), (1, col), "{s}:\n{e}");
        assert_eq!(e.input, s, "errors show the whole command");
        assert_eq!(e.what, "command");
    }
}

#[test]
fn publish_names_a_file_to_upload() {
    let parsed = cmd("publish ^[ bundle.zip ]-> localhost:repo:hello:1.0.0");
    assert_eq!(
        parsed,
        Command::Publish {
            file: "bundle.zip".into(),
            point: pv("localhost:repo:hello:1.0.0"),
        }
    );
    assert_eq!(parsed.transfers(), vec!["bundle.zip"]);
    assert_eq!(
        cmd("publish ^[./target/my bundle.zip]->${repo}:1.0.0").to_string(),
        "publish ^[ ./target/my bundle.zip ]-> ${repo}:1.0.0"
    );
    let odd = cmd(r#"publish ^[ "a]b.zip" ]-> localhost:r:b:1.0.0"#);
    assert_eq!(odd.transfers(), vec!["a]b.zip"]);
    assert_eq!(
        odd.to_string(),
        r#"publish ^[ "a]b.zip" ]-> localhost:r:b:1.0.0"#
    );
    assert!(cmd("select localhost").transfers().is_empty());
}

#[test]
fn every_other_command_form() {
    assert_eq!(
        cmd("select localhost:**<Mechtron>"),
        Command::Select {
            selector: sel("localhost:**<Mechtron>")
        }
    );
    assert_eq!(
        cmd("set localhost{ +bind=a:/b.bind, +@locked=x, !old }"),
        Command::Set {
            point: pv("localhost"),
            properties: PropertyChanges::new()
                .with(PropertyChange::set("bind", "a:/b.bind"))
                .with(PropertyChange::lock("locked", "x"))
                .with(PropertyChange::remove("old")),
        }
    );
    assert_eq!(
        cmd("get localhost:app{ config, bind }"),
        Command::Get {
            point: pv("localhost:app"),
            names: vec!["config".into(), "bind".into()],
        }
    );
    assert_eq!(
        cmd("get localhost:app"),
        Command::Get {
            point: pv("localhost:app"),
            names: Vec::new(),
        }
    );
    assert_eq!(
        cmd("read localhost:repo:hello:1.0.0:/html/index.html"),
        Command::Read {
            point: pv("localhost:repo:hello:1.0.0:/html/index.html")
        }
    );
    assert_eq!(
        cmd("delete localhost:app"),
        Command::Delete {
            point: pv("localhost:app"),
            force: false
        }
    );
    assert_eq!(
        cmd("delete! localhost:app"),
        Command::Delete {
            point: pv("localhost:app"),
            force: true
        }
    );
    assert_eq!(
        cmd("grant +cSd-RwX on localhost:app:** to localhost:users:**<User>"),
        Command::Grant {
            kind: GrantKind::Mask(PermissionsMask {
                kind: MaskKind::Or,
                permissions: "cSd-RwX".parse().unwrap(),
            }),
            on: sel("localhost:app:**"),
            to: sel("localhost:users:**<User>"),
        }
    );
    assert_eq!(
        cmd("grant Super on localhost+:** to localhost:users:admin"),
        Command::Grant {
            kind: GrantKind::Super,
            on: sel("localhost+:**"),
            to: sel("localhost:users:admin"),
        }
    );
    assert_eq!(cmd("revoke 42"), Command::Revoke { id: 42 });
    assert_eq!(
        cmd("access localhost:app"),
        Command::Access {
            point: pv("localhost:app")
        }
    );
    assert_eq!(
        cmd("chown localhost:app:** to localhost:users:scott"),
        Command::Chown {
            on: sel("localhost:app:**"),
            owner: pv("localhost:users:scott"),
        }
    );
}

#[test]
fn white_space_between_tokens_is_free_and_printing_is_canonical() {
    for (messy, canonical) in [
        (
            "create?\tlocalhost:app  < App >\n{\n +config = a ,\n !b\n}",
            "create? localhost:app<App>{ +config=a, !b }",
        ),
        (
            "publish ^[bundle.zip]  ->  localhost:r:b:1.0.0",
            "publish ^[ bundle.zip ]-> localhost:r:b:1.0.0",
        ),
        (
            "get  localhost {config,bind,}",
            "get localhost{ config, bind }",
        ),
        (
            "grant\n  Super\n  on localhost:**\n  to localhost:users:*",
            "grant Super on localhost:** to localhost:users:*",
        ),
        ("  select localhost:** ;  # comment", "select localhost:**"),
        ("revoke   007", "revoke 7"),
    ] {
        assert_eq!(cmd(messy).to_string(), canonical, "{messy:?}");
    }
}

#[test]
fn points_may_be_relative_or_hold_variables() {
    let env = Env::new()
        .with_working("localhost:apps".parse().unwrap())
        .with_var("name", "blog");
    let command = cmd("create .:${name}:worker-%<Mechtron>");
    let resolved = command.resolve(&env).unwrap();
    assert_eq!(
        resolved.to_string(),
        "create localhost:apps:blog:worker-%<Mechtron>"
    );
    assert_eq!(
        cmd("chown localhost:** to ..:users:${name}").resolve(&env),
        Ok(cmd("chown localhost:** to localhost:users:blog"))
    );
    assert_eq!(
        cmd("read ..:x").resolve(&env).unwrap().target(),
        CommandTarget::Point(&PointVar::from("localhost:x".parse::<Point>().unwrap()))
    );
    assert_eq!(
        cmd("delete ${missing}").resolve(&env),
        Err(PointError::MissingVariable("missing".into()))
    );
}

#[test]
fn verbs_and_targets() {
    let cases: Vec<(&str, &str)> = vec![
        ("create? a<Space>", "create"),
        ("publish ^[ f ]-> a:r:b:1.0.0", "publish"),
        ("select a:**", "select"),
        ("set a{ !x }", "set"),
        ("get a", "get"),
        ("read a", "read"),
        ("delete! a", "delete"),
        ("grant Super on a to b", "grant"),
        ("revoke 1", "revoke"),
        ("access a", "access"),
        ("chown a:** to b", "chown"),
    ];
    for (s, verb) in cases {
        assert_eq!(cmd(s).verb(), verb);
    }
    assert_eq!(cmd("revoke 9").target(), CommandTarget::Grant(9));
    let grant = cmd("grant Super on a:** to b");
    assert_eq!(grant.target(), CommandTarget::Selector(&sel("a:**")));
    let create = cmd("create a:w-%<Base>");
    assert!(matches!(create.target(), CommandTarget::Template(t) if t.is_sequence()));
}

#[test]
fn a_trailing_semicolon_is_optional_but_one_command_only() {
    assert_eq!(cmd("read a;"), cmd("read a"));
    let e = err("read a; read b");
    assert!(e.message.contains("several commands make a script"));
    assert_eq!(e.line_col(), (1, 9));
    let e = err("read a read b");
    assert_eq!(e.message, "expected ';' or the end of the command");
    assert_eq!(e.line_col(), (1, 8));
}

#[test]
fn errors_point_at_the_column() {
    for (s, col, message) in [
        ("", 1, "expected a command"),
        ("launch localhost", 1, "unknown command 'launch'"),
        (
            "CREATE localhost<Space>",
            1,
            "commands are lower case: write 'create'",
        ),
        ("select? localhost", 7, "there is no 'select?'"),
        ("delete? localhost", 7, "there is no 'delete?'"),
        ("create", 7, "expected the point to create"),
        (
            "createlocalhost<Space>",
            1,
            "unknown command 'createlocalhost'",
        ),
        (
            "create?localhost<Space>",
            8,
            "expected white space and then the point",
        ),
        (
            "create localhost<Spaceship>",
            18,
            "unknown kind 'Spaceship'",
        ),
        ("create localhost", 17, "expected '<' and the kind"),
        (
            "create localhost<Space",
            23,
            "expected '>' to close the kind",
        ),
        (
            "create localhost<Artifact<Jpeg>>",
            27,
            "unknown sub-kind 'Jpeg'",
        ),
        ("create Localhost<Space>", 8, "expected a space"),
        (
            "create localhost:my_app<App>",
            20,
            "expected a skewer-case base",
        ),
        (
            "create localhost<Space>{ +Bad=x }",
            27,
            "expected a property name",
        ),
        (
            "create localhost<Space>{ +a=\"x }",
            29,
            "unterminated string",
        ),
        (
            "publish bundle.zip -> a",
            9,
            "expected '^[' and the local file",
        ),
        ("publish ^[ ]-> a", 12, "expected the name of the file"),
        (
            "publish ^[ a.zip -> a",
            22,
            "expected ']' after the file name",
        ),
        ("publish ^[ a.zip ] a", 20, "expected '->'"),
        ("select localhost:Base", 18, "expected a segment, '*', '**'"),
        ("select **<Spaceship>", 11, "unknown kind 'Spaceship'"),
        ("set localhost", 14, "expected '{' and the properties"),
        ("set localhost{}", 14, "expected at least one property"),
        ("set localhost{ config }", 16, "expected a property change"),
        ("get localhost{}", 14, "name at least one property"),
        ("get localhost{ +a }", 16, "expected a property name"),
        ("get localhost{ a, a }", 19, "property 'a' is named twice"),
        ("grant +cSd-RwZ on a to b", 8, "expected 'x' or 'X'"),
        ("grant cSd-RwX on a to b", 7, "expected what to grant"),
        (
            "grant property:Email on a to b",
            7,
            "expected what to grant",
        ),
        ("grant Super to a", 13, "expected 'on' and the particles"),
        ("grant Super on a", 17, "expected 'to' and the agents"),
        (
            "grant Super on a to",
            20,
            "expected the agents it is granted to",
        ),
        (
            "grant Super on **to b",
            18,
            "expected white space before 'to'",
        ),
        ("revoke x", 8, "expected a grant id"),
        ("revoke 42x", 8, "expected a grant id"),
        ("revoke -1", 8, "expected a grant id"),
        ("revoke 1.5", 8, "expected a grant id"),
        (
            "publish ^[ \"\" ]-> a",
            12,
            "expected the name of the file to upload",
        ),
        ("revoke 99999999999999999999", 8, "grant id is too large"),
        ("revoke", 7, "expected the id of the grant"),
        ("access", 7, "expected the point whose grants"),
        (
            "read localhost:w-%",
            18,
            "'%' (the next sequence number) may only",
        ),
        (
            "set localhost:%{ +a=b }",
            15,
            "'%' (the next sequence number) may only",
        ),
        ("chown a:** b", 12, "expected 'to' and the point"),
        ("chown a:** to B", 15, "expected a space"),
    ] {
        let e = err(s);
        assert!(
            e.message.starts_with(message),
            "{s}: got {:?}, wanted {message:?}",
            e.message
        );
        assert_eq!(e.line_col(), (1, col), "{s}:\n{e}");
    }
}

#[test]
fn unknown_kind_is_underlined() {
    let e = err("create localhost<Spaceship>");
    assert_eq!(
        e.to_string(),
        "error: unknown kind 'Spaceship'\n --> command:1:18\n  |\n1 | create localhost<Spaceship>\n  |                  ^^^^^^^^^ found 'S'"
    );
}

#[test]
fn non_ascii_input_does_not_panic() {
    for s in [
        "créate a<Space>",
        "create lo\u{e9}calhost<Space>",
        "create a:w-%é<Base>",
        "create a<Space>{ +a=\u{2028}é }",
        "publish ^[ ü ]-> é",
        "revoke ４２",
        "get a{ é }",
        "create é%<Base>",
        "create a:é%<Base>",
    ] {
        let _ = s.parse::<Command>();
    }
}
