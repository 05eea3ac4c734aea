//! `GET /api/messages/wait`: a waiter registered in the inbox's memory, woken
//! by the request that stores the mail. Each test drives the waits and the
//! deliveries as futures joined on one thread, through testkit's namespace,
//! which interleaves requests to one object at their awaits as workerd does.
#![cfg(not(target_arch = "wasm32"))]

use futures_util::future::{Either, select};
use futures_util::join;
use router_worker::MailVerdict;
use serde_json::{Value as Json, json};
use std::cell::Cell;
use testkit::{TestService, object_id, until, yield_now};

fn mail(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Service <no-reply@service.example>\r\nTo: alice@agents.test\r\n\
         Subject: {subject}\r\nMessage-ID: <{}@service.example>\r\n\r\n{body}\r\n",
        subject.replace(' ', ".")
    )
    .into_bytes()
}

fn waiting(service: &TestService) -> usize {
    service.objects().waiting(&object_id("alice"))
}

fn id_of(answer: &Json) -> u64 {
    answer["message"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("a message in {answer}"))
}

/// `request`, noting in `done` when it has answered: the other branch of a
/// join ends with [`settled`], so a waiter that is never woken fails the
/// test instead of hanging it.
async fn noted<T>(request: impl std::future::Future<Output = T>, done: &Cell<bool>) -> T {
    let answer = request.await;
    done.set(true);
    answer
}

async fn settled(done: &Cell<bool>) {
    until("the waits to answer", || done.get()).await;
}

async fn deliver(service: &TestService, subject: &str, body: &str) {
    let verdict = service
        .deliver_async(
            "no-reply@service.example",
            "alice@agents.test",
            &mail(subject, body),
        )
        .await;
    assert!(matches!(verdict, MailVerdict::Accepted(_)), "{verdict:?}");
}

/// A wait by `key`, and the mail "Your code" delivered once it is
/// registered: the wait's answer.
fn wait_through_a_delivery(service: &TestService, key: &str) -> (u16, Json) {
    pollster::block_on(async {
        let done = Cell::new(false);
        let wait = noted(
            service.call_async("GET", "/api/messages/wait?timeout=30", key, None),
            &done,
        );
        let arrival = async {
            until("the wait is registered", || waiting(service) == 1).await;
            deliver(service, "Your code", "Your verification code is 482913.").await;
            settled(&done).await;
        };
        join!(wait, arrival).0
    })
}

#[test]
fn a_waiter_registered_before_the_mail_gets_it_with_its_code() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let (status, answer) = wait_through_a_delivery(&service, &alice);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"]["subject"], "Your code");
    assert_eq!(answer["message"]["direction"], "inbound");
    assert_eq!(answer["message"]["codes"][0]["value"], "482913");
    assert_eq!(
        waiting(&service),
        0,
        "an answered wait leaves nothing behind"
    );
}

#[test]
fn with_no_live_socket_open_a_waiter_is_still_woken_and_nothing_is_published() {
    let service = TestService::new();
    let alice = service.signup("alice");
    service.objects().set_listening(false);
    let (status, answer) = wait_through_a_delivery(&service, &alice);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"]["subject"], "Your code");
    assert_eq!(
        service.objects().published(&object_id("alice")),
        Vec::<String>::new(),
        "no socket, so no event is made"
    );
    // A socket opens: the next mail is told.
    service.objects().set_listening(true);
    pollster::block_on(deliver(&service, "Again", "Hi"));
    let frames = service.objects().published(&object_id("alice"));
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(frames[0].contains("\"Again\""), "{frames:?}");
}

#[test]
fn a_stored_match_answers_at_once_and_after_defaults_to_the_newest_id() {
    let service = TestService::new();
    let alice = service.signup("alice");
    pollster::block_on(deliver(&service, "First", "one"));
    let (status, answer) = service.call("GET", "/api/messages/wait?after=0", &alice, None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"]["subject"], "First");
    // Without `after`, only mail from now on: the stored one is not it.
    pollster::block_on(async {
        let done = Cell::new(false);
        let wait = noted(
            service.call_async("GET", "/api/messages/wait?timeout=5", &alice, None),
            &done,
        );
        let clock = async {
            until("the wait is registered", || waiting(&service) == 1).await;
            service.clock.advance(5_000);
            settled(&done).await;
        };
        let ((status, answer), ()) = join!(wait, clock);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer, json!({ "message": null, "after": 1 }));
    });
}

#[test]
fn many_waiters_each_get_the_message_and_other_requests_run_meanwhile() {
    let service = TestService::new();
    let alice = service.signup("alice");
    pollster::block_on(async {
        let done: Vec<Cell<bool>> = (0..5).map(|_| Cell::new(false)).collect();
        let w = |i: usize| {
            noted(
                service.call_async("GET", "/api/messages/wait?timeout=60", &alice, None),
                &done[i],
            )
        };
        let (a, b, c, d, e) = (w(0), w(1), w(2), w(3), w(4));
        let meanwhile = async {
            until("five waits registered", || waiting(&service) == 5).await;
            // A wait never holds the object: another request is served.
            let (status, me) = service.call_async("GET", "/api/me", &alice, None).await;
            assert_eq!(status, 200, "{me}");
            deliver(&service, "For everyone", "hello").await;
            for done in &done {
                settled(done).await;
            }
        };
        let (a, b, c, d, e, ()) = join!(a, b, c, d, e, meanwhile);
        let ids: Vec<u64> = [a, b, c, d, e]
            .iter()
            .map(|(status, answer)| {
                assert_eq!(*status, 200, "{answer}");
                id_of(answer)
            })
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    });
}

#[test]
fn a_waiter_with_a_query_sleeps_through_mail_that_does_not_match() {
    let service = TestService::new();
    let alice = service.signup("alice");
    pollster::block_on(async {
        let done = Cell::new(false);
        let wait = noted(
            service.call_async(
                "GET",
                "/api/messages/wait?timeout=30&q=subject%3Acode",
                &alice,
                None,
            ),
            &done,
        );
        let arrivals = async {
            until("the wait is registered", || waiting(&service) == 1).await;
            deliver(&service, "Weekly newsletter", "nothing to see").await;
            // Woken, it looked, found nothing of its own and waits again.
            until("the wait is registered again", || waiting(&service) == 1).await;
            deliver(&service, "Your code", "Use 771204 to sign in.").await;
            settled(&done).await;
        };
        let ((status, answer), ()) = join!(wait, arrivals);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["message"]["subject"], "Your code");
    });
}

#[test]
fn the_timeout_answers_null_and_sent_mail_is_not_waited_for() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let _bob = service.signup("bob");
    pollster::block_on(async {
        let done = Cell::new(false);
        let wait = noted(
            service.call_async("GET", "/api/messages/wait?timeout=10", &alice, None),
            &done,
        );
        let meanwhile = async {
            until("the wait is registered", || waiting(&service) == 1).await;
            // Alice's own send to Bob is outbound: not what she waits for.
            let (status, sent) = service
                .call_async(
                    "POST",
                    "/api/messages",
                    &alice,
                    Some(json!({ "to": "bob@agents.test", "subject": "Hi", "text": "t" })),
                )
                .await;
            assert_eq!(status, 201, "{sent}");
            service.clock.advance(9_999);
            yield_now().await;
            assert_eq!(waiting(&service), 1, "still waiting before the timeout");
            service.clock.advance(1);
            settled(&done).await;
        };
        let ((status, answer), ()) = join!(wait, meanwhile);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer, json!({ "message": null, "after": 0 }));
    });
}

#[test]
fn direct_delivery_and_a_send_to_oneself_wake_the_waiter() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    for (sender, subject) in [(&bob, "From Bob"), (&alice, "Note to self")] {
        pollster::block_on(async {
            let done = Cell::new(false);
            let wait = noted(
                service.call_async("GET", "/api/messages/wait?timeout=30", &alice, None),
                &done,
            );
            let send = async {
                until("the wait is registered", || waiting(&service) == 1).await;
                let (status, sent) = service
                    .call_async(
                        "POST",
                        "/api/messages",
                        sender,
                        Some(json!({ "to": "alice@agents.test", "subject": subject, "text": "t" })),
                    )
                    .await;
                assert_eq!(status, 201, "{sent}");
                settled(&done).await;
            };
            let ((status, answer), ()) = join!(wait, send);
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["message"]["subject"], subject);
            assert_eq!(answer["message"]["direction"], "inbound");
        });
    }
}

#[test]
fn a_waiter_whose_client_went_away_is_dropped() {
    let service = TestService::new();
    let alice = service.signup("alice");
    pollster::block_on(async {
        let wait =
            Box::pin(service.call_async("GET", "/api/messages/wait?timeout=60", &alice, None));
        let give_up = Box::pin(until("the wait is registered", || waiting(&service) == 1));
        // The client goes away: its request future is dropped unfinished.
        match select(wait, give_up).await {
            Either::Left(((status, answer), _)) => panic!("answered {status}: {answer}"),
            Either::Right(((), wait)) => drop(wait),
        }
    });
    assert_eq!(waiting(&service), 1, "not yet noticed");
    // The next arrival (or registration) notices and drops it.
    pollster::block_on(deliver(&service, "Later", "x"));
    assert_eq!(waiting(&service), 0);
}

#[test]
fn a_restart_mid_wait_answers_a_retryable_503_and_nothing_is_lost() {
    let service = TestService::new();
    let alice = service.signup("alice");
    pollster::block_on(async {
        let done = Cell::new(false);
        let wait = noted(
            service.call_async("GET", "/api/messages/wait?timeout=60&after=0", &alice, None),
            &done,
        );
        let restart = async {
            until("the wait is registered", || waiting(&service) == 1).await;
            service.objects().restart();
            settled(&done).await;
        };
        let ((status, answer), ()) = join!(wait, restart);
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["code"], "unavailable");
    });
    // Waiting again with the same `after` gets mail that came meanwhile.
    pollster::block_on(deliver(&service, "Meanwhile", "x"));
    let (status, answer) = service.call("GET", "/api/messages/wait?after=0", &alice, None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"]["subject"], "Meanwhile");
}

#[test]
fn bad_parameters_are_refused_with_what_is_wrong() {
    let service = TestService::new();
    let alice = service.signup("alice");
    for (query, says) in [
        ("timeout=0", "timeout"),
        ("timeout=61", "timeout"),
        ("timeout=1.5", "timeout"),
        ("after=x", "after"),
        ("after=-1", "after"),
        ("q=%22open", "not closed"),
        ("q=is%3Astarred", "is:"),
        ("q=a&q=b", "twice"),
        ("wait=1", "Unknown parameter"),
    ] {
        let (status, answer) =
            service.call("GET", &format!("/api/messages/wait?{query}"), &alice, None);
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["code"], "invalid_request", "{query}");
        let error = answer["error"].as_str().expect("an error sentence");
        assert!(error.contains(says), "{query}: {error}");
    }
    let (status, _) = service.call("GET", "/api/messages/wait", "ik_nope", None);
    assert_eq!(status, 401);
}

#[test]
fn one_wait_more_than_the_cap_ends_the_oldest_as_at_its_timeout() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let cap = protocol::limits::MAX_WAITERS;
    pollster::block_on(async {
        let done: Vec<Cell<bool>> = (0..=cap).map(|_| Cell::new(false)).collect();
        // The first cap waits (whose clients, on workerd, may have gone).
        let first: Vec<_> = (0..cap)
            .map(|i| {
                noted(
                    service.call_async("GET", "/api/messages/wait?timeout=60", &alice, None),
                    &done[i],
                )
            })
            .collect();
        let everyone = futures_util::future::join_all(first);
        let newest = async {
            until("every wait registered", || waiting(&service) == cap).await;
            let newest = noted(
                service.call_async("GET", "/api/messages/wait?timeout=60", &alice, None),
                &done[cap],
            );
            let arrival = async {
                // The oldest answered at once; the others still wait.
                settled(&done[0]).await;
                assert!(done[1..].iter().all(|d| !d.get()), "only the oldest ended");
                assert_eq!(waiting(&service), cap);
                deliver(&service, "For the rest", "x").await;
                for d in &done {
                    settled(d).await;
                }
            };
            let (answer, ()) = join!(newest, arrival);
            answer
        };
        let (answers, (status, newest)) = join!(everyone, newest);
        assert_eq!(status, 200, "{newest}");
        assert_eq!(newest["message"]["subject"], "For the rest");
        let (status, oldest) = &answers[0];
        assert_eq!(*status, 200);
        assert_eq!(*oldest, json!({ "message": null, "after": 0 }));
        for (status, answer) in &answers[1..] {
            assert_eq!(*status, 200, "{answer}");
            assert_eq!(answer["message"]["subject"], "For the rest");
        }
    });
}
