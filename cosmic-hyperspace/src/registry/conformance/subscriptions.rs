//! The checks of channel subscriptions (SPEC §18): listed in order, replaced by subscribing
//! again, undone one by one or all of a point's at once, and deleted with their subscriber —
//! but not with a particle their selector names.

use std::sync::Arc;

use cosmic_space::{Agent, Point, Subscription, Surface};

use super::{Outcome, cosmos, ok, point, refused, register_each, scott, selector};
use crate::registry::{Registry, RegistryError};

fn surface(text: &str) -> Result<Surface, String> {
    text.parse()
        .map_err(|e| format!("fixture surface '{text}': {e}"))
}

/// `subscriber` listening to `selector` as `agent`.
pub(super) fn subscription(
    subscriber: &str,
    selector_text: &str,
    agent: Agent,
) -> Result<Subscription, String> {
    Ok(Subscription {
        subscriber: surface(subscriber)?,
        selector: selector(selector_text)?,
        agent,
    })
}

/// Keeps each subscription, in the order given.
async fn subscribe_each<R: Registry>(registry: &R, subscriptions: &[Subscription]) -> Outcome {
    for subscription in subscriptions {
        ok(
            registry.subscribe(subscription).await,
            format!(
                "subscribing {} to {}",
                subscription.subscriber, subscription.selector
            ),
        )?;
    }
    Ok(())
}

/// One subscription as a line (`subscriber -> selector as agent`): failures read as a list.
fn line(subscription: &Subscription) -> String {
    format!(
        "{} -> {} as {:?}",
        subscription.subscriber, subscription.selector, subscription.agent
    )
}

/// Every subscription the registry lists, as lines, in its order.
pub(super) async fn listed<R: Registry>(registry: &R) -> Result<Vec<String>, String> {
    let subscriptions = ok(registry.subscriptions().await, "subscriptions")?;
    Ok(subscriptions.iter().map(line).collect())
}

/// `subscriptions` as lines.
pub(super) fn lines(subscriptions: &[&Subscription]) -> Vec<String> {
    subscriptions.iter().map(|s| line(s)).collect()
}

/// `subscriptions` lists every subscription, ordered by the subscriber's text and then the
/// selector's (byte by byte: `a:b:c@…` before `a:b@…`, and every row of `a@Core` before
/// `a@Core+Topic…`), each with its surface, selector and agent as given (HyperUser and
/// Anonymous included).
pub async fn subscriptions_are_listed_by_subscriber_then_selector<R: Registry>(
    registry: Arc<R>,
) -> Outcome {
    check_eq!(
        listed(&*registry).await?,
        Vec::<String>::new(),
        "the subscriptions of an empty registry"
    );
    cosmos(&*registry).await?;
    let scott = Agent::Point(scott()?);
    let all = [
        subscription("localhost:app@Core", "localhost:chat:a", Agent::Anonymous)?,
        subscription(
            "localhost:app@Shell+Topic<Cli>",
            "localhost:**",
            scott.clone(),
        )?,
        subscription(
            "localhost:app@Core+Topic<Path>(room:one)",
            "localhost:chat:a",
            scott.clone(),
        )?,
        subscription(
            "localhost:app@Core",
            "localhost:chat:**<Channel>",
            Agent::HyperUser,
        )?,
        subscription("localhost:app:echo@Core", "localhost:chat:b", scott.clone())?,
    ];
    subscribe_each(&*registry, &all).await?;
    let [anonymous, shell, topic, hyper, echo] = &all;
    check_eq!(
        listed(&*registry).await?,
        lines(&[echo, hyper, anonymous, topic, shell]),
        "the subscriptions, by subscriber text then selector text"
    );
    Ok(())
}

/// Subscribing again with the same subscriber and selector replaces the agent, and leaves
/// the subscriptions of another selector or another surface of the same point alone.
pub async fn subscribing_again_replaces_the_agent<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(&*registry).await?;
    let first = subscription(
        "localhost:app@Core",
        "localhost:chat:**",
        Agent::Point(scott()?),
    )?;
    let other_selector = subscription("localhost:app@Core", "localhost:news", Agent::Anonymous)?;
    let other_layer = subscription(
        "localhost:app@Shell",
        "localhost:chat:**",
        Agent::Point(scott()?),
    )?;
    subscribe_each(
        &*registry,
        &[first.clone(), other_selector.clone(), other_layer.clone()],
    )
    .await?;
    let again = Subscription {
        agent: Agent::HyperUser,
        ..first.clone()
    };
    subscribe_each(&*registry, std::slice::from_ref(&again)).await?;
    check_eq!(
        listed(&*registry).await?,
        lines(&[&again, &other_selector, &other_layer]),
        "the subscriptions after subscribing again as another agent"
    );
    // The same subscription again changes nothing.
    subscribe_each(&*registry, std::slice::from_ref(&again)).await?;
    check_eq!(
        listed(&*registry).await?,
        lines(&[&again, &other_selector, &other_layer]),
        "the subscriptions after subscribing again as the same agent"
    );
    Ok(())
}

/// `unsubscribe` removes exactly the subscription of that surface to that selector and says
/// whether there was one: `true` once, then `false`.
pub async fn unsubscribe_says_whether_there_was_one<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(&*registry).await?;
    let core_a = subscription("localhost:app@Core", "localhost:chat:a", Agent::HyperUser)?;
    let core_b = subscription("localhost:app@Core", "localhost:chat:b", Agent::HyperUser)?;
    let shell_a = subscription("localhost:app@Shell", "localhost:chat:a", Agent::HyperUser)?;
    subscribe_each(
        &*registry,
        &[core_a.clone(), core_b.clone(), shell_a.clone()],
    )
    .await?;
    check_eq!(
        ok(
            registry
                .unsubscribe(&core_a.subscriber, &core_a.selector)
                .await,
            "unsubscribe"
        )?,
        true,
        "unsubscribing a subscription there is"
    );
    check_eq!(
        listed(&*registry).await?,
        lines(&[&core_b, &shell_a]),
        "the subscriptions left after one is undone"
    );
    check_eq!(
        ok(
            registry
                .unsubscribe(&core_a.subscriber, &core_a.selector)
                .await,
            "unsubscribe"
        )?,
        false,
        "unsubscribing the same subscription again"
    );
    for (subscriber, selector_text) in [
        ("localhost:app@Core", "localhost:chat:c"),
        ("localhost:app:echo@Core", "localhost:chat:a"),
        ("localhost:app@Core+Topic<Cli>", "localhost:chat:b"),
    ] {
        check_eq!(
            ok(
                registry
                    .unsubscribe(&surface(subscriber)?, &selector(selector_text)?)
                    .await,
                "unsubscribe"
            )?,
            false,
            "unsubscribing {subscriber} from {selector_text}, never subscribed"
        );
    }
    check_eq!(
        listed(&*registry).await?,
        lines(&[&core_b, &shell_a]),
        "the subscriptions after unsubscribing what was not there"
    );
    Ok(())
}

/// `unsubscribe_all` removes the subscriptions of every surface of a point (any layer or
/// topic) and counts them; those of its children, its parent and of a point whose text
/// merely starts with it stay.
pub async fn unsubscribe_all_takes_every_surface_of_a_point<R: Registry>(
    registry: Arc<R>,
) -> Outcome {
    cosmos(&*registry).await?;
    register_each(&*registry, &[("localhost:apple", "App")]).await?;
    let agent = Agent::Point(scott()?);
    let mine = [
        subscription("localhost:app@Core", "localhost:chat:a", agent.clone())?,
        subscription("localhost:app@Core", "localhost:chat:b", agent.clone())?,
        subscription(
            "localhost:app@Shell+Topic<Cli>",
            "localhost:chat:a",
            agent.clone(),
        )?,
    ];
    let child = subscription("localhost:app:echo@Core", "localhost:chat:a", agent.clone())?;
    let lookalike = subscription("localhost:apple@Core", "localhost:chat:a", agent.clone())?;
    let parent = subscription("localhost@Core", "localhost:chat:a", agent.clone())?;
    subscribe_each(&*registry, &mine).await?;
    subscribe_each(
        &*registry,
        &[child.clone(), lookalike.clone(), parent.clone()],
    )
    .await?;
    let app = point("localhost:app")?;
    check_eq!(
        ok(registry.unsubscribe_all(&app).await, "unsubscribe_all")?,
        3,
        "how many subscriptions unsubscribe_all of localhost:app undid"
    );
    check_eq!(
        listed(&*registry).await?,
        lines(&[&child, &lookalike, &parent]),
        "the subscriptions left after unsubscribe_all of localhost:app"
    );
    check_eq!(
        ok(registry.unsubscribe_all(&app).await, "unsubscribe_all")?,
        0,
        "unsubscribe_all of localhost:app again"
    );
    check_eq!(
        ok(
            registry.unsubscribe_all(&point("nowhere:at:all")?).await,
            "unsubscribe_all"
        )?,
        0,
        "unsubscribe_all of a point with no subscriptions"
    );
    check_eq!(
        listed(&*registry).await?,
        lines(&[&child, &lookalike, &parent]),
        "the subscriptions after unsubscribe_all of points without any"
    );
    Ok(())
}

/// `delete` removes the subscriptions of every surface of the points it deletes (a leaf's, and
/// with `delete!` its whole subtree's); a refused delete removes none; a subscription whose
/// selector names a deleted point stays, and so do those of its parent and of a point whose
/// text merely starts with it. A point registered again has none of its old subscriptions.
pub async fn delete_takes_the_subscriptions_of_what_it_deletes<R: Registry>(
    registry: Arc<R>,
) -> Outcome {
    cosmos(&*registry).await?;
    register_each(&*registry, &[("localhost:apple", "App")]).await?;
    let agent = Agent::Point(scott()?);
    let echo_core = subscription(
        "localhost:app:echo@Core",
        "localhost:chat:**",
        agent.clone(),
    )?;
    let echo_cli = subscription(
        "localhost:app:echo@Shell+Topic<Cli>",
        "localhost:chat:a",
        agent.clone(),
    )?;
    let names_echo = subscription("localhost:worker@Core", "localhost:app:echo", agent.clone())?;
    let app = subscription("localhost:app@Core", "localhost:chat:a", agent.clone())?;
    let descendant = subscription(
        "localhost:app:users:scott@Core",
        "localhost:chat:a",
        agent.clone(),
    )?;
    let lookalike = subscription("localhost:apple@Core", "localhost:app:**", agent.clone())?;
    let parent = subscription("localhost@Core", "localhost:app", agent.clone())?;
    let all = [
        &echo_core,
        &echo_cli,
        &names_echo,
        &app,
        &descendant,
        &lookalike,
        &parent,
    ];
    for each in all {
        subscribe_each(&*registry, std::slice::from_ref(each)).await?;
    }
    let before = listed(&*registry).await?;
    let app_point = point("localhost:app")?;
    refused(
        registry.delete(&app_point, false).await,
        RegistryError::HasChildren {
            point: app_point.clone(),
            children: 2,
        },
        "deleting localhost:app without force",
    )?;
    check_eq!(
        listed(&*registry).await?,
        before,
        "the subscriptions after a refused delete"
    );
    ok(
        registry.delete(&point("localhost:app:echo")?, false).await,
        "deleting localhost:app:echo",
    )?;
    check_eq!(
        listed(&*registry).await?,
        lines(&[&descendant, &app, &lookalike, &names_echo, &parent]),
        "the subscriptions after deleting localhost:app:echo"
    );
    ok(
        registry.delete(&app_point, true).await,
        "delete! localhost:app",
    )?;
    check_eq!(
        listed(&*registry).await?,
        lines(&[&lookalike, &names_echo, &parent]),
        "the subscriptions after delete! of localhost:app"
    );
    register_each(
        &*registry,
        &[("localhost:app", "App"), ("localhost:app:echo", "Mechtron")],
    )
    .await?;
    check_eq!(
        listed(&*registry).await?,
        lines(&[&lookalike, &names_echo, &parent]),
        "the subscriptions after registering the deleted points again"
    );
    Ok(())
}

/// Subscriptions made, undone and undone by point all at once each get their own answer,
/// and together leave exactly what they say.
pub async fn subscriptions_made_together_are_each_kept<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(&*registry).await?;
    let old: Vec<Subscription> = (0..16)
        .map(|n| {
            subscription(
                "localhost:app@Core",
                &format!("localhost:chat:old-{n}"),
                Agent::HyperUser,
            )
        })
        .collect::<Result<_, _>>()?;
    let worker: Vec<Subscription> = (0..8)
        .map(|n| {
            subscription(
                &format!("localhost:worker@Shell+Topic<Path>(t-{n})"),
                "localhost:chat:**",
                Agent::Anonymous,
            )
        })
        .collect::<Result<_, _>>()?;
    subscribe_each(&*registry, &old).await?;
    subscribe_each(&*registry, &worker).await?;
    let new: Vec<Subscription> = (0..32)
        .map(|n| {
            subscription(
                "localhost:app@Core",
                &format!("localhost:chat:new-{n:02}"),
                Agent::Point(Point::root()),
            )
        })
        .collect::<Result<_, _>>()?;
    let mut subscribes = Vec::new();
    for each in new.clone() {
        let registry = Arc::clone(&registry);
        subscribes.push(tokio::spawn(async move { registry.subscribe(&each).await }));
    }
    let mut unsubscribes = Vec::new();
    for each in old {
        let registry = Arc::clone(&registry);
        unsubscribes.push(tokio::spawn(async move {
            registry.unsubscribe(&each.subscriber, &each.selector).await
        }));
    }
    let all_of_worker = {
        let registry = Arc::clone(&registry);
        let worker = point("localhost:worker")?;
        tokio::spawn(async move { registry.unsubscribe_all(&worker).await })
    };
    for task in subscribes {
        let answer = task
            .await
            .map_err(|e| format!("a subscribe panicked: {e}"))?;
        ok(answer, "a concurrent subscribe")?;
    }
    for task in unsubscribes {
        let answer = task
            .await
            .map_err(|e| format!("an unsubscribe panicked: {e}"))?;
        check_eq!(
            ok(answer, "a concurrent unsubscribe")?,
            true,
            "a concurrent unsubscribe of a subscription there was"
        );
    }
    let undone = all_of_worker
        .await
        .map_err(|e| format!("unsubscribe_all panicked: {e}"))?;
    check_eq!(
        ok(undone, "a concurrent unsubscribe_all")?,
        8,
        "how many a concurrent unsubscribe_all undid"
    );
    check_eq!(
        listed(&*registry).await?,
        lines(&new.iter().collect::<Vec<_>>()),
        "the subscriptions after concurrent subscribes and unsubscribes"
    );
    Ok(())
}
